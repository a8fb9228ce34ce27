// Whole files mapped into memory. Large temporary data (a base record stream, a delta, a rebuilt
// record stream) then lives in file-backed pages the kernel can write back and drop, never in
// the process's private memory. Keep such files on disk, not on tmpfs, where they would be RAM.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace sovdev::fs {

class MappedFile {
 public:
  // Maps an existing file read-only.
  [[nodiscard]] static Expected<MappedFile> open(const std::string& path);
  // Creates a new file of exactly `size` bytes (refusing to replace one) and maps it read-write.
  // Its disk space is reserved up front, so a full disk is an error here rather than a SIGBUS
  // when a page is first written. The file is removed again when this fails.
  [[nodiscard]] static Expected<MappedFile> create(const std::string& path, uint64_t size,
                                                   mode_t mode = 0600);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::string_view view() const { return {data_, size_}; }
  // The bytes to write into; empty for a read-only mapping.
  std::span<char> writable() {
    return writable_ ? std::span<char>(data_, size_) : std::span<char>();
  }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Writes dirty pages to the file (msync): only for content that must survive a crash.
  [[nodiscard]] Status sync();
  // Unmaps now (also done on destruction). The file itself stays.
  void close() noexcept;

 private:
  MappedFile(char* data, size_t size, bool writable, std::string path)
      : data_(data), size_(size), writable_(writable), path_(std::move(path)) {}

  char* data_ = nullptr;  // null for an empty file: mmap cannot map zero bytes
  size_t size_ = 0;
  bool writable_ = false;
  std::string path_;
};

}  // namespace sovdev::fs
