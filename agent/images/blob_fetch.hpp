// One image blob's transfer from the hub (docs/design-images.md), like BundleFetch's payload:
// FetchRequest{blob = wire digest, want_manifest} → the BlobManifest, checked against the
// signed ImageBlob (parse_blob_manifest); then the chunks it lacks, at most `window` in
// flight, each checked on arrival (chunk_matches) and committed in one transaction per burst
// before more are asked for; broadcast chunks heard on <prefix>/blob/<wire digest hex>. Once
// every chunk is held the file is decoded once (BlobDecoder: size and digest): only then is
// the blob verified, renamed to blobs/<digest hex>.zst. Everything learnt is in agent.db and
// the partial file, so a fresh BlobFetch after a crash resumes. No deltas yet: blob_base is
// never set.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/fetch.hpp"
#include "agent/images/chunk_window.hpp"
#include "platform/mqtt/client.hpp"
#include "platform/store/image_blobs.hpp"
#include "platform/store/transaction.hpp"
#include "sovdev.pb.h"

namespace sovdev::agent::images {

class BlobFetch {
 public:
  enum class Phase { manifest, chunks, done, failed };

  // `blob` is the signed listing's; agent.db must hold its row (store::ImageBlobs::need).
  // `label` names what needs it in the log ("stack@version").
  BlobFetch(store::Database& db, mqtt::Client& client, const FetchSettings& settings,
            FetchCounters& counters, pb::ImageBlob blob, std::string label);
  ~BlobFetch();
  BlobFetch(const BlobFetch&) = delete;
  BlobFetch& operator=(const BlobFetch&) = delete;

  Status start(int64_t now_ms);
  // A response whose `blob` is this blob's wire digest (the caller matched it).
  Status on_response(const pb::FetchResponse& response, int64_t now_ms);
  // Commits the chunks stored since the last flush (one transaction) and asks for more.
  Status flush(int64_t now_ms);
  Status on_tick(int64_t now_ms);
  Status on_reconnect(int64_t now_ms);
  // Storing failed (a full disk): the partial file goes, the fetch fails with Errc::io.
  Status storage_failed(const Error& error);

  Phase phase() const { return phase_; }
  // Whether this fetch opened the chunk batch (one transaction) others on the connection
  // join: several blobs fetched at once share it, and its owner must flush first.
  bool holds_batch() const { return batch_.has_value(); }
  const pb::ImageBlob& blob() const { return blob_; }
  const std::string& error() const { return error_; }
  Errc error_code() const { return error_code_; }
  uint32_t progress_permille() const;

 private:
  Status request_manifest(int64_t now_ms);
  Status on_manifest(const std::string& bytes, const pb::FetchResponse& response, int64_t now_ms);
  Status begin_chunks(int64_t now_ms);
  Status fill_window(int64_t now_ms);
  Status on_chunk(const pb::FetchResponse& response, int64_t now_ms);
  // Every chunk held: decodes the file once, and keeps it only when it is the signed blob.
  Status finish(int64_t now_ms);
  // Whether the file at `path` is the blob's zstd stream (decodes to its size and digest).
  Status check_file(const std::string& path) const;
  void listen();
  void stop_listening();
  Status send(pb::FetchRequest request, int64_t now_ms);
  Status fail(Error error);
  std::optional<Error> disk_full(uint64_t bytes, bool anyway) const;
  void ignore(const std::string& why);
  std::string what() const;

  store::Database& db_;
  mqtt::Client& client_;
  const FetchSettings& settings_;
  FetchCounters& counters_;
  pb::ImageBlob blob_;
  std::string label_;

  Phase phase_ = Phase::manifest;
  std::string error_;
  Errc error_code_ = Errc::internal;
  pb::BlobManifest manifest_;
  ChunkWindow window_;
  std::vector<uint32_t> uncommitted_;
  std::optional<store::Transaction> batch_;
  int64_t waiting_since_ = 0;  // the manifest asked at
  uint64_t request_id_ = 0;
  std::string listen_topic_;
};

}  // namespace sovdev::agent::images
