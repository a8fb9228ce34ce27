// A file of fixed-size chunks at their offsets, as the agent keeps a bundle's payload
// (payloads/) and an image blob being fetched (images/partial/): written chunk by chunk in any
// order, read back exactly, synced on purpose. The rows that say which chunks are held live in
// agent.db; this only moves bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace sovdev::store {

// Errc::io naming the step, the file and the system's reason.
Error file_io_error(const char* what, const std::string& path, int err);

// fsync of a folder, so a rename or a new file in it survives a power cut.
[[nodiscard]] Status sync_folder(const std::string& dir);

// An open chunk file, closed on every way out.
class ChunkFile {
 public:
  // write: opened read-write, created 0600 if missing; else read-only.
  [[nodiscard]] static Expected<ChunkFile> open(const std::string& path, bool write);
  ChunkFile(ChunkFile&& other) noexcept;
  ChunkFile& operator=(ChunkFile&&) = delete;
  ChunkFile(const ChunkFile&) = delete;
  ~ChunkFile();

  // All of `data` at `offset`; a disk that takes none of it is ENOSPC.
  [[nodiscard]] Status write_at(std::uint64_t offset, std::string_view data);
  // Exactly `size` bytes into `out`; a short file is Errc::store (the cache lost data).
  [[nodiscard]] Status read_at(std::uint64_t offset, std::size_t size, std::string& out);
  [[nodiscard]] Status sync();
  // Starts writing what the file holds to disk without waiting (sync_file_range WRITE).
  [[nodiscard]] Status start_writeback();

 private:
  ChunkFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

}  // namespace sovdev::store
