// The real hub::Server answering image blob requests through a real mosquitto: the BlobManifest,
// the wire chunks (each checked against it, on the agent's topic and broadcast on the blob's),
// and an unknown blob.
#include <catch2/catch.hpp>
#include <chrono>
#include <ctime>
#include <map>
#include <optional>
#include <stdexcept>

#include "bundles/blob_wire.hpp"
#include "bundles/hash.hpp"
#include "common/hex.hpp"
#include "hub/broadcast.hpp"
#include "hub/serve.hpp"
#include "platform/mqtt/client.hpp"
#include "platform/store/hub_images.hpp"
#include "platform/store/hub_store.hpp"
#include "tests/support/broker.hpp"
#include "tests/support/process.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

std::unique_ptr<mqtt::Client> blob_test_client(const Broker& broker, const std::string& user,
                                               const std::string& password) {
  mqtt::Options o;
  o.servers = {broker.url()};
  o.client_id = user + "-blobs";
  o.username = user;
  o.password = password;
  o.queue_capacity = 1000;
  auto c = mqtt::make_paho_client(o);
  auto connected = c->connect();
  if (!connected) throw std::runtime_error("connect " + user + ": " + connected.error().message);
  return c;
}

// Noise, so a few hundred KiB make several chunks of the wire form.
std::string blob_noise(size_t size) {
  std::string out(size, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (auto& c : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x & 0xff);
  }
  return out;
}

// The hub's serve loop and one agent's connection, turned by hand on the test's thread.
struct BlobServeRig {
  std::unique_ptr<Broker> broker = Broker::start();
  TempDir dir;
  store::Database db = [this] {
    auto opened = store::open_hub_database(dir / "hub.db");
    if (!opened) throw std::runtime_error(opened.error().message);
    return std::move(opened).value();
  }();
  std::unique_ptr<mqtt::Client> hub_client = blob_test_client(*broker, "sovdev-hub", "hub-secret");
  std::unique_ptr<mqtt::Client> agent = blob_test_client(*broker, "agent-a", "secret-a");
  std::optional<hub::Server> server;
  std::vector<pb::FetchResponse> on_data, on_blob;
  uint64_t next_id = 1;

  void start() {
    hub::ServeOptions options;
    server.emplace(db, *hub_client, options,
                   [] { return static_cast<int64_t>(std::time(nullptr)); });
    REQUIRE(server->start());
    REQUIRE(agent->subscribe("sovdev/v1/agent/agent-a/data", 1));
  }

  // Hands the hub what it received and collects the agent's answers, until `done` or 10 s.
  template <class Pred>
  bool pump_until(Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      while (auto e = hub_client->next(std::chrono::milliseconds(5))) REQUIRE(server->handle(*e));
      server->poll();
      while (auto e = agent->next(std::chrono::milliseconds(5))) {
        if (e->kind != mqtt::Event::Kind::message) continue;
        pb::FetchResponse resp;
        REQUIRE(resp.ParseFromString(e->message.payload.str()));
        (e->message.topic.find("/blob/") != std::string::npos ? on_blob : on_data).push_back(resp);
      }
      if (done()) return true;
    }
    return false;
  }

  void ask(pb::FetchRequest req) {
    req.set_schema(1);
    req.set_agent_id("agent-a");
    req.set_request_id(next_id++);
    mqtt::Message m;
    m.topic = "sovdev/v1/fetch/agent-a";
    m.payload = req.SerializeAsString();
    m.response_topic = "sovdev/v1/agent/agent-a/data";
    m.correlation_data = "c" + std::to_string(req.request_id());
    REQUIRE(agent->publish(m));
  }
};

pb::ImageBlob listed_as(const store::ImageBlobRow& row) {
  pb::ImageBlob blob;
  blob.set_digest(row.digest);
  blob.set_size(row.size);
  blob.set_media_type(row.media_type);
  blob.set_wire_digest(row.wire_digest);
  blob.set_wire_size(row.wire_size);
  return blob;
}

}  // namespace

TEST_CASE("serve answers a blob's manifest and its chunks, broadcast on the blob's topic",
          "[hub][images]") {
  BlobServeRig rig;
  const std::string layer = blob_noise(300 * 1024);
  store::HubImages images(rig.db);
  auto writer = images.begin(sha256(layer), "application/vnd.oci.image.layer.v1.tar", 1);
  REQUIRE(writer);
  REQUIRE((*writer)->write(layer));
  auto row = (*writer)->commit(layer.size());
  REQUIRE(row);
  REQUIRE(row->chunk_count >= 4);
  rig.start();
  REQUIRE(rig.agent->subscribe(hub::blob_topic("sovdev/v1", row->wire_digest), 1));

  pb::FetchRequest want;
  want.set_blob(row->wire_digest);
  want.set_want_manifest(true);
  want.set_broadcast(true);
  rig.ask(want);
  REQUIRE(rig.pump_until([&] { return !rig.on_data.empty(); }));
  const pb::FetchResponse& first = rig.on_data.front();
  CHECK(first.blob() == row->wire_digest);
  CHECK(first.manifest_digest().empty());
  CHECK(first.body_case() == pb::FetchResponse::BODY_NOT_SET);
  auto manifest = blobwire::parse_blob_manifest(first.blob_manifest(), listed_as(*row));
  REQUIRE(manifest);
  CHECK(first.broadcast_stream() != 0);

  // Every chunk, asked for by a listener: each goes out once, numbered, on the blob topic.
  pb::FetchRequest chunks;
  chunks.set_blob(row->wire_digest);
  chunks.set_broadcast(true);
  chunks.set_broadcast_stream(first.broadcast_stream());
  chunks.set_broadcast_seen(first.broadcast_seq());
  auto* range = chunks.add_chunks();
  range->set_first(0);
  range->set_count(row->chunk_count);
  rig.ask(chunks);
  REQUIRE(rig.pump_until([&] { return rig.on_blob.size() == row->chunk_count; }));
  std::map<uint32_t, std::string> wire;
  uint64_t seq = 0;
  for (const auto& resp : rig.on_blob) {
    REQUIRE(resp.has_chunk());
    CHECK(resp.blob() == row->wire_digest);
    CHECK(resp.broadcast_stream() == first.broadcast_stream());
    CHECK(resp.broadcast_seq() == ++seq);
    CHECK(blobwire::chunk_matches(*manifest, resp.chunk().index(), resp.chunk().data()));
    wire[resp.chunk().index()] = resp.chunk().data();
  }
  REQUIRE(wire.size() == row->chunk_count);
  std::string rebuilt;
  auto decoder = blobwire::BlobDecoder::create(row->digest, row->size, [&](std::string_view b) {
    rebuilt.append(b);
    return Status{};
  });
  REQUIRE(decoder);
  for (const auto& [index, data] : wire) REQUIRE(decoder->write(data));
  REQUIRE(decoder->finish());
  CHECK(rebuilt == layer);

  // Asked again by an agent that did not listen: on its own topic, not broadcast a second time.
  pb::FetchRequest again;
  again.set_blob(row->wire_digest);
  again.add_chunks()->set_first(1);
  again.mutable_chunks(0)->set_count(1);
  rig.ask(again);
  REQUIRE(rig.pump_until([&] { return rig.on_data.size() == 2; }));
  CHECK(rig.on_data[1].chunk().index() == 1);
  CHECK(blobwire::chunk_matches(*manifest, 1, rig.on_data[1].chunk().data()));
  CHECK(rig.on_blob.size() == row->chunk_count);
  CHECK(rig.server->stats().blobs.manifests_sent == 1);
  CHECK(rig.server->stats().blobs.chunks_sent == row->chunk_count + 1);
  CHECK(rig.server->stats().blobs.chunks_broadcast == row->chunk_count);
}

TEST_CASE("serve answers a request for a blob it does not hold with an error naming it",
          "[hub][images]") {
  BlobServeRig rig;
  rig.start();
  const std::string wire_digest = sha256("no such blob manifest");
  pb::FetchRequest want;
  want.set_blob(wire_digest);
  want.set_want_manifest(true);
  rig.ask(want);
  REQUIRE(rig.pump_until([&] { return !rig.on_data.empty(); }));
  CHECK(rig.on_data[0].error() == "unknown blob " + short_hex(wire_digest));
  CHECK(rig.on_data[0].blob() == wire_digest);
  CHECK(rig.server->stats().blobs.unknown == 1);
  CHECK(rig.server->stats().rejected == 0);

  // A blob request that also names a bundle is malformed: refused, never answered.
  want.set_manifest_digest(std::string(32, '\1'));
  rig.ask(want);
  REQUIRE(rig.pump_until([&] { return rig.server->stats().rejected == 1; }));
  CHECK(rig.on_data.size() == 1);
}
