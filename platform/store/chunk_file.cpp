#include "platform/store/chunk_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace sovdev::store {

Error file_io_error(const char* what, const std::string& path, int err) {
  return make_error(Errc::io, std::string(what) + " " + path + ": " + std::strerror(err));
}

Status sync_folder(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return file_io_error("open folder", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return file_io_error("sync folder", dir, err);
  return {};
}

Expected<ChunkFile> ChunkFile::open(const std::string& path, bool write) {
  const int fd = ::open(path.c_str(), (write ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC, 0600);
  if (fd < 0) return file_io_error("open", path, errno);
  return ChunkFile(fd, path);
}

ChunkFile::ChunkFile(ChunkFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

ChunkFile::~ChunkFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status ChunkFile::write_at(std::uint64_t offset, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return file_io_error("write", path_, n < 0 ? errno : ENOSPC);
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return {};
}

Status ChunkFile::read_at(std::uint64_t offset, std::size_t size, std::string& out) {
  out.resize(size);
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::pread(fd_, out.data() + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return file_io_error("read", path_, errno);
    if (n == 0) {
      return make_error(Errc::store, path_ + " ends at " + std::to_string(offset + got) +
                                         ", before the chunk's end");
    }
    got += static_cast<std::size_t>(n);
  }
  return {};
}

Status ChunkFile::sync() {
  if (::fdatasync(fd_) != 0) return file_io_error("sync", path_, errno);
  return {};
}

Status ChunkFile::start_writeback() {
  if (::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE) != 0) {
    return file_io_error("write back", path_, errno);
  }
  return {};
}

}  // namespace sovdev::store
