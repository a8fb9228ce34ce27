#include "tests/images_agent/blob_site.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "agent/images/store_blob_source.hpp"
#include "bundles/blob_wire.hpp"

namespace sovdev::testing {

BlobSite::BlobSite() {
  auto opened = store::open_agent_database(dir / "agent.db");
  if (!opened) throw std::runtime_error(opened.error().message);
  db.emplace(std::move(*opened));
  mqtt::Options o;
  o.servers = {broker->url()};
  o.client_id = "edge-1";
  o.username = "agent-a";
  o.password = "secret-a";
  client = mqtt::make_paho_client(o);
  if (!client->connect()) throw std::runtime_error("agent connect");
  settings.agent_id = "edge-1";
  settings.state_dir = dir.path();
  settings.request_timeout_ms = 500;
  settings.backoff_min_ms = 50;
  settings.backoff_max_ms = 500;
  if (!client->subscribe(settings.prefix + "/agent/edge-1/data", 1)) {
    throw std::runtime_error("agent subscribe");
  }
}

store::ImageBlobMeta meta_of(const pb::ImageBlob& blob) {
  return {blob.digest(), blob.wire_digest(), blob.media_type(), blob.size(), blob.wire_size()};
}

std::string bundle_digest(int n) {
  return std::string(31, '\x5b') + static_cast<char>(n);
}

void BlobSite::need(const ServedBlob& blob, const std::string& bundle) {
  if (!store::ImageBlobs(*db).need(bundle, {meta_of(blob.listing)}, 1000)) {
    throw std::runtime_error("need");
  }
}

std::string BlobSite::fetch(const ServedBlob& blob) {
  agent::images::BlobFetch fetch(*db, *client, settings, counters, blob.listing, "test@1");
  return run_blob_fetch(fetch, *client, settings, std::chrono::seconds(60));
}

std::string BlobSite::held(const ServedBlob& blob) {
  agent::images::StoreBlobSource source(*db);
  auto found = source.find(blob.listing.digest());
  if (!found || !*found) return "";
  std::ifstream in((*found)->path, std::ios::binary);
  std::ostringstream wire;
  wire << in.rdbuf();
  std::string out;
  auto decoder = blobwire::BlobDecoder::create(blob.listing.digest(), blob.listing.size(),
                                               [&](std::string_view b) -> Status {
                                                 out.append(b);
                                                 return {};
                                               });
  if (!decoder || !decoder->write(wire.str()) || !decoder->finish()) return "";
  return out;
}

}  // namespace sovdev::testing
