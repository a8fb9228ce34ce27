// Small, careful file helpers: every error names the path, writes are atomic and durable.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace sovdev::fs {

Expected<std::string> read_file(const std::string& path, size_t max_size);

// Writes `data` to a temporary file beside `path`, fsyncs it, renames it into place and fsyncs
// the folder: readers see the old file or the new one, never a torn one.
Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644);

// Creates a new file, refusing to replace one (keys must never be overwritten by accident).
Status write_file_exclusive(const std::string& path, std::string_view data, mode_t mode);

// Files below `dir` whose names end in one of `suffixes`, sorted by path; dotfiles skipped.
Expected<std::vector<std::string>> list_files(const std::string& dir,
                                              const std::vector<std::string>& suffixes);

Status make_dirs(const std::string& dir, mode_t mode = 0755);

// A file read front to back in pieces.
class InputFile {
 public:
  static Expected<InputFile> open(const std::string& path);
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
class OutputFile {
 public:
  static Expected<OutputFile> create(const std::string& path, mode_t mode = 0644);
  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&& other) noexcept;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile();

  Status write(std::string_view data);
  Status commit();
  uint64_t written() const { return written_; }
  const std::string& temp_path() const { return temp_; }

 private:
  OutputFile(int fd, std::string path, std::string temp)
      : fd_(fd), path_(std::move(path)), temp_(std::move(temp)) {}
  void discard();
  int fd_ = -1;
  std::string path_;
  std::string temp_;
  uint64_t written_ = 0;
};

Error errno_error(std::string_view what, const std::string& path, int err);

}  // namespace sovdev::fs
