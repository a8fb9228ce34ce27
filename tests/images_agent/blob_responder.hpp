// Test double of the hub's blob serving (until hub/images/serve_blobs is on main): a thread with
// its own MQTT connection answering FetchRequests for blobs from BlobEncoder output held in
// memory, on the request's response topic. It can misbehave on purpose (a manifest the bundle
// does not name, tampered or foreign chunks), so every check of BlobFetch can be seen to work.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sovdev.pb.h"
#include "tests/support/broker.hpp"

namespace sovdev::testing {

// A blob in the wire form, as the hub would hold it.
struct ServedBlob {
  pb::ImageBlob listing;  // what the signed bundle manifest says of it
  std::string manifest;   // the serialized BlobManifest
  std::vector<std::string> chunks;
  std::string data;  // the blob itself
};

// `size` random bytes (from `seed`) compressed in chunks of `chunk_size`.
ServedBlob make_served_blob(
    size_t size, uint32_t seed, uint32_t chunk_size = 4096,
    const std::string& media_type = "application/vnd.oci.image.layer.v1.tar");
// A served blob whose content is `data` (JSON of an index or a manifest).
ServedBlob served_blob_of(const std::string& data, const std::string& media_type,
                          const std::string& arch);

class BlobResponder {
 public:
  BlobResponder(const Broker& broker, std::string prefix);
  ~BlobResponder();
  BlobResponder(const BlobResponder&) = delete;
  BlobResponder& operator=(const BlobResponder&) = delete;

  void serve(const ServedBlob& blob);  // before start()
  void start();

  // Misbehaviour, set before start().
  // The first answer for a manifest carries this blob's manifest instead.
  const ServedBlob* wrong_manifest_first = nullptr;
  // These chunk indexes go out once with a flipped byte.
  std::set<uint32_t> tamper_once;
  // These chunk indexes go out once as the same index of this other blob.
  const ServedBlob* foreign = nullptr;
  std::set<uint32_t> foreign_once;
  // Answers nothing while set.
  std::atomic<bool> silent{false};

  uint64_t bytes_sent() const { return bytes_sent_.load(); }
  uint64_t chunks_sent() const { return chunks_sent_.load(); }
  uint64_t manifests_sent() const { return manifests_sent_.load(); }
  uint64_t requests() const { return requests_.load(); }

 private:
  void run();

  const Broker& broker_;
  std::string prefix_;
  std::map<std::string, const ServedBlob*> by_wire_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  std::atomic<uint64_t> bytes_sent_{0}, chunks_sent_{0}, manifests_sent_{0}, requests_{0};
};

}  // namespace sovdev::testing
