// Small, careful file helpers: every error names the path, writes are atomic and durable.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace sovdev::fs {

// Whether opening a path follows a symbolic link at its last component. `refuse` is for files
// in folders others can write to (the dir target's folder): a planted link must not lead a
// read or a write out of the folder.
enum class Links { follow, refuse };

Expected<std::string> read_file(const std::string& path, size_t max_size,
                                Links links = Links::follow);

// Writes `data` to a temporary file beside `path`, fsyncs it, renames it into place and fsyncs
// the folder: readers see the old file or the new one, never a torn one. See OutputFile for
// targets that are not regular files. 0600 unless asked: bundles, rendered manifests and
// databases may hold Secrets; pass 0644 only for what is public (a trust root, a public key).
Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0600);

// Creates a new file, refusing to replace one (keys must never be overwritten by accident).
Status write_file_exclusive(const std::string& path, std::string_view data, mode_t mode);

// Files below `dir` whose names end in one of `suffixes`, sorted by path; dotfiles skipped.
Expected<std::vector<std::string>> list_files(const std::string& dir,
                                              const std::vector<std::string>& suffixes);

// Creates `dir` and whichever of its parents are missing, each with `mode`. Folders that
// already exist are left exactly as they are: `--state /tmp` must not make /tmp 0700.
Status make_dirs(const std::string& dir, mode_t mode = 0755);

// A file read front to back in pieces.
class InputFile {
 public:
  // Links::refuse also refuses anything but a regular file.
  static Expected<InputFile> open(const std::string& path, Links links = Links::follow);
  InputFile(InputFile&& other) noexcept;
  InputFile& operator=(InputFile&& other) noexcept;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  // Reads up to `n` bytes, fewer only at end of file.
  Expected<std::string_view> read(size_t n);
  uint64_t size() const { return size_; }
  uint64_t offset() const { return offset_; }
  const std::string& path() const { return path_; }

 private:
  InputFile(int fd, std::string path, uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size) {}
  int fd_ = -1;
  std::string path_;
  uint64_t size_ = 0;
  uint64_t offset_ = 0;
  std::string buffer_;
};

// A file written under a temporary name and renamed into place by commit(); dropped (and
// removed) if never committed, so a failed or interrupted write leaves nothing half-written.
//
// A rename replaces only a regular file or nothing. A `path` that is (or links to) a character
// device or a FIFO is written in place (`--out /dev/null` stays the device every program on
// the host writes to), and "-" writes to stdout; there a failed write cannot be undone. A
// folder, a block device or a socket is refused.
class OutputFile {
 public:
  static Expected<OutputFile> create(const std::string& path, mode_t mode = 0600);
  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&& other) noexcept;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile();

  Status write(std::string_view data);
  Status commit();
  uint64_t written() const { return written_; }
  // Where the bytes go until commit(): the path itself when written in place.
  const std::string& temp_path() const { return in_place_ ? path_ : temp_; }
  bool in_place() const { return in_place_; }

 private:
  OutputFile(int fd, std::string path, std::string temp, bool in_place)
      : fd_(fd), path_(std::move(path)), temp_(std::move(temp)), in_place_(in_place) {}
  void discard();
  int fd_ = -1;
  std::string path_;
  std::string temp_;
  bool in_place_ = false;  // a device, a FIFO or stdout: no temporary, no rename
  uint64_t written_ = 0;
};

Error errno_error(std::string_view what, const std::string& path, int err);

// A file only its owner may read, such as a private key: opened without following a symbolic
// link and checked on that one descriptor (a regular file, owned by this user unless root reads
// it, no group or other permission bits), then read whole, at most `max_size` bytes. `what`
// names it in messages ("agent key"). Errc::not_found when there is no such file; Errc::denied
// for a link, another owner or open permissions (the message says the fix).
[[nodiscard]] Expected<std::string> read_private_file(const std::string& path, size_t max_size,
                                                      std::string_view what);

}  // namespace sovdev::fs
