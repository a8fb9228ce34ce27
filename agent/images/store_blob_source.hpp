// The BlobSource the loopback registry reads through (blob_source.hpp), over the agent's blob
// store: agent.db opened read-only in the state folder, so the registry (its own process) never
// writes it, and only blobs whose row says verified, with their file present.
#pragma once

#include <memory>
#include <string>

#include "agent/images/blob_source.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::agent::images {

class StoreBlobSource : public BlobSource {
 public:
  // Over an open agent database (the daemon's, or a test's).
  explicit StoreBlobSource(store::Database& db) : db_(&db) {}
  // Opens <state_dir>/agent.db read-only (Errc::not_found when the agent has not run there).
  [[nodiscard]] static Expected<std::unique_ptr<StoreBlobSource>> open(
      const std::string& state_dir);

  [[nodiscard]] Expected<std::optional<HeldBlob>> find(std::string_view digest) override;

 private:
  explicit StoreBlobSource(std::unique_ptr<store::Database> owned)
      : owned_(std::move(owned)), db_(owned_.get()) {}
  std::unique_ptr<store::Database> owned_;
  store::Database* db_;
};

}  // namespace sovdev::agent::images
