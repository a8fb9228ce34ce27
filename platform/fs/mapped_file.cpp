#include "platform/fs/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <limits>
#include <utility>

#include "platform/fs/files.hpp"
#include "platform/fs/unique_fd.hpp"

namespace sovdev::fs {
namespace {

Expected<char*> map(int fd, size_t size, bool writable, const std::string& path) {
  if (size == 0) return static_cast<char*>(nullptr);
  const int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  void* data = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) return errno_error("map", path, errno);
  return static_cast<char*>(data);
}

}  // namespace

Expected<MappedFile> MappedFile::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno_error("open", path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("stat", path, errno);
  if (!S_ISREG(st.st_mode)) return make_error(Errc::io, path + " is not a regular file");
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > std::numeric_limits<size_t>::max()) {
    return make_error(Errc::too_large, path + " is too large to map on this machine");
  }
  SOVDEV_ASSIGN(char* data, map(fd.get(), static_cast<size_t>(size), false, path));
  return MappedFile(data, static_cast<size_t>(size), false, path);
}

Expected<MappedFile> MappedFile::create(const std::string& path, uint64_t size, mode_t mode) {
  if (size > std::numeric_limits<size_t>::max() ||
      size > static_cast<uint64_t>(std::numeric_limits<off_t>::max())) {
    return make_error(Errc::too_large, path + ": " + std::to_string(size) +
                                           " bytes are too many to map on this machine");
  }
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (fd.get() < 0) {
    if (errno == EEXIST) {
      return make_error(Errc::conflict, path + " already exists: refusing to overwrite it");
    }
    return errno_error("create", path, errno);
  }
  auto made = [&]() -> Expected<MappedFile> {
    if (size > 0) {
      // Returns the error number rather than setting errno.
      const int err = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(size));
      if (err != 0) return errno_error("reserve " + std::to_string(size) + " bytes for", path, err);
    }
    SOVDEV_ASSIGN(char* data, map(fd.get(), static_cast<size_t>(size), true, path));
    return MappedFile(data, static_cast<size_t>(size), true, path);
  }();
  if (!made) ::unlink(path.c_str());
  return made;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      writable_(other.writable_),
      path_(std::move(other.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    close();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    writable_ = other.writable_;
    path_ = std::move(other.path_);
  }
  return *this;
}

MappedFile::~MappedFile() {
  close();
}

void MappedFile::close() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

Status MappedFile::sync() {
  if (data_ == nullptr || !writable_) return {};
  if (::msync(data_, size_, MS_SYNC) != 0) return errno_error("sync", path_, errno);
  return {};
}

}  // namespace sovdev::fs
