// The images of one verified bundle (docs/design-images.md, Agent): before the bundle is
// applied, the blobs blobs_for_arch() lists for this agent that agent.db does not hold verified
// are fetched, a few BlobFetch at a time; once all are held, the indexes and image manifests
// are read (bounded JSON) and must name only blobs the signed manifest lists, else the
// bundle's images are refused. Driven like a BundleFetch by the daemon (agent/daemon*.cpp):
// responses whose `blob` is set, flush after a burst, ticks, reconnects.
//
// Quota ([images] quota): before a blob's fetch starts, what the blobs take on disk plus what
// it brings must fit; blobs no kept bundle needs go first (partial ones, then the least recently
// used), kept being the last good and the newest verified bundle of each stack and this one.
// What still does not fit fails with the disk-full error (Errc::io) and the last good version
// keeps running. Free disk space is checked as BundleFetch checks it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/fetch.hpp"
#include "agent/images/blob_fetch.hpp"
#include "sovdev.pb.h"

namespace sovdev::agent::images {

struct ImageSettings {
  uint64_t quota = uint64_t{8} << 30;  // bytes of wire form kept under <state>/images
  uint32_t parallel = 2;               // blobs fetched at once
};

// The bundles whose blobs garbage collection keeps: each stack's last good bundle and its
// newest verified one.
[[nodiscard]] Expected<std::vector<std::string>> kept_bundles(store::Database& db);

// Records the blobs `manifest` needs on this arch (store::ImageBlobs::need) and says whether
// all are held verified. A bundle without images needs none: true.
[[nodiscard]] Expected<bool> images_held(store::Database& db, const pb::BundleManifest& manifest,
                                         std::string_view digest, std::string_view arch,
                                         int64_t now_s);

class ImageSync {
 public:
  enum class Phase { fetching, done, failed };

  ImageSync(store::Database& db, mqtt::Client& client, const FetchSettings& fetch,
            const ImageSettings& images, FetchCounters& counters, pb::BundleManifest manifest,
            std::string digest);
  ImageSync(const ImageSync&) = delete;
  ImageSync& operator=(const ImageSync&) = delete;

  Status start(int64_t now_ms);
  // A response whose `blob` is set (the caller checked it): handed to the fetch of that blob.
  Status on_response(const pb::FetchResponse& response, int64_t now_ms);
  Status flush(int64_t now_ms);
  Status on_tick(int64_t now_ms);
  Status on_reconnect(int64_t now_ms);
  // Storing failed (a full disk): every fetch running drops what it wrote, and this fails.
  Status storage_failed(const Error& error);

  Phase phase() const { return phase_; }
  const std::string& digest() const { return digest_; }
  const pb::BundleManifest& manifest() const { return manifest_; }
  const std::string& error() const { return error_; }
  Errc error_code() const { return error_code_; }
  // image_blobs_needed/held, image_bytes_needed/held.
  void fill_status(pb::AgentStatus& status) const;

 private:
  // Starts fetches until `parallel` run; done (after the JSON check) when none is left.
  Status advance(int64_t now_ms);
  // After a step of the running fetches: failed ones fail this, done ones make room for more.
  Status collect(int64_t now_ms);
  // Makes room under the quota for `bytes` more, collecting what no kept bundle needs.
  Status make_room(uint64_t bytes);
  // The indexes and image manifests name only blobs the signed manifest lists.
  Status check_json();
  Status count_held();
  // Flushes the fetch holding the shared chunk batch first, then the others.
  Status flush_all(int64_t now_ms);
  Status fail(Error error);
  std::string label() const;

  store::Database& db_;
  mqtt::Client& client_;
  const FetchSettings& fetch_;
  const ImageSettings& images_;
  FetchCounters& counters_;
  pb::BundleManifest manifest_;
  std::string digest_;

  Phase phase_ = Phase::fetching;
  std::string error_;
  Errc error_code_ = Errc::internal;
  std::vector<pb::ImageBlob> needed_;  // this arch's, in the manifest's order
  size_t next_ = 0;                    // needed_[next_..] not started yet
  std::vector<std::unique_ptr<BlobFetch>> running_;
  uint32_t blobs_held_ = 0;
  uint64_t bytes_needed_ = 0;
  uint64_t bytes_held_ = 0;
};

}  // namespace sovdev::agent::images
