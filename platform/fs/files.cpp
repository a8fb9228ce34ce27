#include "platform/fs/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

namespace sovdev::fs {
namespace {

std::string parent_of(const std::string& path) {
  auto parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Status sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error("open folder", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return errno_error("sync folder", dir, err);
  return {};
}

std::string temp_name(const std::string& path) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto p = std::filesystem::path(path);
  // A dotfile: watchers of the folder (k3s auto-deploy) ignore it until it is renamed.
  return (p.parent_path() /
          ("." + p.filename().string() + ".tmp-" + std::to_string(rng() % 1000000)))
      .string();
}

}  // namespace

Error errno_error(std::string_view what, const std::string& path, int err) {
  if (err == ENOSPC || err == EDQUOT) {
    return make_error(Errc::io,
                      std::string(what) + " " + path + ": disk full: free space and retry");
  }
  return make_error(Errc::io, std::string(what) + " " + path + ": " + std::strerror(err));
}

Expected<std::string> read_file(const std::string& path, size_t max_size, Links links) {
  SOVDEV_ASSIGN(InputFile in, InputFile::open(path, links));
  if (in.size() > max_size) {
    return make_error(Errc::too_large, path + " is " + std::to_string(in.size()) +
                                           " bytes, over the limit of " + std::to_string(max_size));
  }
  std::string out;
  out.reserve(static_cast<size_t>(in.size()));
  for (;;) {
    SOVDEV_ASSIGN(std::string_view piece, in.read(1 << 20));
    if (piece.empty()) break;
    out.append(piece);
    if (out.size() > max_size) return make_error(Errc::too_large, path + " grew while being read");
  }
  return out;
}

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  SOVDEV_ASSIGN(OutputFile out, OutputFile::create(path, mode));
  SOVDEV_TRY(out.write(data));
  return out.commit();
}

Status write_file_exclusive(const std::string& path, std::string_view data, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return make_error(Errc::conflict, path + " already exists: refusing to overwrite it");
    }
    return errno_error("create", path, errno);
  }
  auto written = write_all(fd, data, path);
  if (written && ::fchmod(fd, mode) != 0) written = errno_error("chmod", path, errno);
  if (written && ::fsync(fd) != 0) written = errno_error("sync", path, errno);
  ::close(fd);
  if (!written) {
    ::unlink(path.c_str());
    return written;
  }
  return sync_dir(parent_of(path));
}

Expected<std::vector<std::string>> list_files(const std::string& dir,
                                              const std::vector<std::string>& suffixes) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return make_error(Errc::io, dir + " is not a folder");
  }
  std::vector<std::string> out;
  auto it = std::filesystem::recursive_directory_iterator(
      dir, std::filesystem::directory_options::follow_directory_symlink, ec);
  if (ec) return make_error(Errc::io, "read folder " + dir + ": " + ec.message());
  for (; it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return make_error(Errc::io, "read folder " + dir + ": " + ec.message());
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    for (const auto& s : suffixes) {
      if (name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        out.push_back(it->path().string());
        break;
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status make_dirs(const std::string& dir, mode_t mode) {
  std::filesystem::path target = std::filesystem::path(dir).lexically_normal();
  if (!target.has_filename() && target.has_parent_path() && target != target.root_path()) {
    target = target.parent_path();  // "a/b/" names the folder "a/b"
  }
  std::vector<std::string> missing;  // deepest first
  for (std::filesystem::path p = target; !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) return make_error(Errc::io, p.string() + " is not a folder");
      break;
    }
    if (errno != ENOENT) return errno_error("stat", p.string(), errno);
    missing.push_back(p.string());
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), mode) != 0) {
      const int err = errno;
      struct stat st {};
      // Made by someone else in the meantime: theirs, so its mode stays theirs too.
      if (err == EEXIST && ::stat(it->c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
      return errno_error("create folder", *it, err);
    }
    // Exactly `mode`, whatever the umask: only for a folder made here.
    if (::chmod(it->c_str(), mode) != 0) return errno_error("chmod", *it, errno);
  }
  return {};
}

// ------------------------------------------------------------------------------ InputFile

Expected<InputFile> InputFile::open(const std::string& path, Links links) {
  // Refusing also means not waiting: opening a planted FIFO would block until a writer came.
  // O_NONBLOCK changes nothing for the regular files that pass the check below.
  const int refuse = links == Links::refuse ? O_NOFOLLOW | O_NONBLOCK : 0;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | refuse);
  if (fd < 0) {
    if (errno == ELOOP && links == Links::refuse) {
      return make_error(Errc::io, path + " is a symbolic link: refusing to follow it (remove it)");
    }
    return errno_error("open", path, errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return errno_error("stat", path, err);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return make_error(Errc::io, path + " is a folder, not a file");
  }
  if (links == Links::refuse && !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(Errc::io, path + " is not a regular file: refusing to read it");
  }
  return InputFile(fd, path, static_cast<uint64_t>(st.st_size));
}

InputFile::InputFile(InputFile&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      path_(std::move(o.path_)),
      size_(o.size_),
      offset_(o.offset_),
      buffer_(std::move(o.buffer_)) {}

InputFile& InputFile::operator=(InputFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    path_ = std::move(o.path_);
    size_ = o.size_;
    offset_ = o.offset_;
    buffer_ = std::move(o.buffer_);
  }
  return *this;
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

Expected<std::string_view> InputFile::read(size_t n) {
  buffer_.resize(n);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd_, buffer_.data() + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno_error("read", path_, errno);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  offset_ += got;
  return std::string_view(buffer_.data(), got);
}

// ------------------------------------------------------------------------------ OutputFile

Expected<OutputFile> OutputFile::create(const std::string& path, mode_t mode) {
  if (path == "-") {
    const int fd = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return errno_error("write to", "stdout", errno);
    return OutputFile(fd, path, "", true);
  }
  // Renaming over anything but a regular file would replace it: `--out /dev/null` run as root
  // once left a regular file where the device was, and broke every program that writes there.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode)) {
      return make_error(Errc::io, path + " is a folder: give the name of a file to write");
    }
    if (!S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode)) {
      return make_error(Errc::io, path +
                                      " is a block device or a socket: refusing to write there "
                                      "(give a regular file, a character device, a FIFO or - "
                                      "for stdout)");
    }
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return errno_error("open", path, errno);
    return OutputFile(fd, path, "", true);
  }
  const std::string temp = temp_name(path);
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return errno_error("create", temp, errno);
  return OutputFile(fd, path, temp, false);
}

OutputFile::OutputFile(OutputFile&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      path_(std::move(o.path_)),
      temp_(std::move(o.temp_)),
      in_place_(o.in_place_),
      written_(o.written_) {}

OutputFile& OutputFile::operator=(OutputFile&& o) noexcept {
  if (this != &o) {
    discard();
    fd_ = std::exchange(o.fd_, -1);
    path_ = std::move(o.path_);
    temp_ = std::move(o.temp_);
    in_place_ = o.in_place_;
    written_ = o.written_;
  }
  return *this;
}

OutputFile::~OutputFile() {
  discard();
}

void OutputFile::discard() {
  if (fd_ >= 0) {
    ::close(fd_);
    if (!in_place_) ::unlink(temp_.c_str());
    fd_ = -1;
  }
}

Status OutputFile::write(std::string_view data) {
  if (fd_ < 0) return make_error(Errc::internal, "write to a closed file " + path_);
  SOVDEV_TRY(write_all(fd_, data, temp_path()));
  written_ += data.size();
  return {};
}

Status OutputFile::commit() {
  if (fd_ < 0) return make_error(Errc::internal, "commit of a closed file " + path_);
  if (in_place_) {
    // A device, a FIFO or stdout: nothing to sync or rename (fsync fails on pipes).
    if (::close(std::exchange(fd_, -1)) != 0) return errno_error("close", path_, errno);
    return {};
  }
  if (::fsync(fd_) != 0) return errno_error("sync", temp_, errno);
  if (::close(std::exchange(fd_, -1)) != 0) {
    ::unlink(temp_.c_str());
    return errno_error("close", temp_, errno);
  }
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp_.c_str());
    return errno_error("rename into", path_, err);
  }
  return sync_dir(parent_of(path_));
}

Expected<std::string> read_private_file(const std::string& path, size_t max_size,
                                        std::string_view what) {
  const std::string named = std::string(what) + " " + path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return make_error(Errc::not_found, named + ": not found");
    if (err == ELOOP) {
      return make_error(Errc::denied, named + " is a symbolic link: give the key file itself");
    }
    return errno_error("open the " + std::string(what), path, err);
  }
  struct Closer {
    int held;
    ~Closer() { ::close(held); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_error("stat the " + std::string(what), path, errno);
  if (!S_ISREG(st.st_mode)) return make_error(Errc::denied, named + " is not a regular file");
  // Root may read a key another user keeps (an operator's sudo); anyone else only their own.
  const uid_t self = ::geteuid();
  if (self != 0 && st.st_uid != self) {
    return make_error(Errc::denied, named + " belongs to uid " + std::to_string(st.st_uid) +
                                        ", not to this user (uid " + std::to_string(self) +
                                        "): run as its owner, or chown it to this user");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(Errc::denied, named + " may be read or changed by others (mode " + mode +
                                        "): chmod 600 it");
  }
  std::string text(max_size + 1, '\0');
  size_t used = 0;
  while (used < text.size()) {
    const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      std::fill(text.begin(), text.end(), '\0');
      return errno_error("read the " + std::string(what), path, err);
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > max_size) {
    std::fill(text.begin(), text.end(), '\0');
    return make_error(Errc::invalid,
                      named + ": over " + std::to_string(max_size) + " bytes, not a key file");
  }
  text.resize(used);
  return text;
}

}  // namespace sovdev::fs
