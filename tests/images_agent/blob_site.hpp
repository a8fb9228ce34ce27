// A site for BlobFetch tests: a real broker, the hub double, an agent.db in a temporary folder
// and the agent's MQTT connection.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "agent/images/blob_fetch.hpp"
#include "platform/store/agent_cache.hpp"
#include "platform/store/image_blobs.hpp"
#include "tests/images_agent/blob_loop.hpp"
#include "tests/images_agent/blob_responder.hpp"
#include "tests/support/broker.hpp"
#include "tests/support/process.hpp"

namespace sovdev::testing {

struct BlobSite {
  std::unique_ptr<Broker> broker = Broker::start();
  TempDir dir;
  std::optional<store::Database> db;
  std::unique_ptr<mqtt::Client> client;
  agent::FetchSettings settings;
  agent::FetchCounters counters;
  BlobResponder hub{*broker, "sovdev/v1"};

  BlobSite();
  // Records that bundle `bundle` (a 32-byte digest) needs the blob.
  void need(const ServedBlob& blob, const std::string& bundle);
  // Fetches the blob with a fresh BlobFetch: "" when verified, else why not.
  std::string fetch(const ServedBlob& blob);
  // The blob's file decoded, or "" when it is not held verified.
  std::string held(const ServedBlob& blob);
};

store::ImageBlobMeta meta_of(const pb::ImageBlob& blob);
std::string bundle_digest(int n);

}  // namespace sovdev::testing
