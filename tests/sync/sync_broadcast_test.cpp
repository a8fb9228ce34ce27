// Broadcast chunks: agents fetching the same object listen on its blob topic and the hub sends
// each chunk there once for all of them (asked for again later, a chunk goes to the asker's
// data topic); requests without the flag (older agents) are answered on the agent's own data
// topic as before.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "common/hex.hpp"
#include "sovdev.pb.h"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

struct Noise {
  std::string file;
  uint64_t payload = 0;
};

Noise publish_broadcast_noise(Fleet& fleet, int mib) {
  write_noise_stack(fleet.ws.dir / "noise", mib, 11);
  Noise n{fleet.ws.dir / "noise.sdb", 0};
  REQUIRE(fleet.ws.build(fleet.ws.dir / "noise", n.file, 1, {"--level", "1"}).exit_code == 0);
  REQUIRE(fleet.publish(n.file).exit_code == 0);
  n.payload = std::filesystem::file_size(n.file);
  return n;
}

// Every message a client has received so far, by topic.
struct Seen {
  std::map<std::string, std::vector<std::string>> by_topic;
  void drain(mqtt::Client& c) {
    while (auto e = c.next(std::chrono::milliseconds(20))) {
      if (e->kind == mqtt::Event::Kind::message)
        by_topic[e->message.topic].push_back(e->message.payload.str());
    }
  }
};

// Chunk indices among FetchResponses.
std::set<uint32_t> chunk_indices(const std::vector<std::string>& payloads) {
  std::set<uint32_t> out;
  for (const auto& p : payloads) {
    pb::FetchResponse r;
    if (r.ParseFromString(p) && r.has_chunk()) out.insert(r.chunk().index());
  }
  return out;
}

bool verified(const Fleet& fleet, const std::string& agent) {
  auto st = run({agent_binary(), "status", "--state", fleet.agent_state(agent), "--json"});
  return st.out.find("\"state\": \"verified\"") != std::string::npos;
}

}  // namespace

TEST_CASE(
    "two agents fetching one bundle at once both end verified, and the hub publishes fewer chunk "
    "bytes than twice the payload",
    "[sync][broadcast]") {
  Fleet fleet;
  // Both agents are up and waiting for a catalog before the hub starts, so they fetch at the
  // same time; with one chunk in flight a pull takes long enough (~300 round trips) that the
  // scheduler starting one agent's fetch a little later still leaves most of it shared (a
  // 6 MiB pull at window 8 took 55 ms, and a 80 ms late start made it two pulls).
  const Noise noise = publish_broadcast_noise(fleet, 16);
  fleet.agent_config("agent-a", 1);
  fleet.agent_config("agent-b", 1);
  auto watcher = fleet.client("sovdev-hub", "status-watcher");
  REQUIRE(watcher->subscribe("sovdev/v1/status/+", 1));
  auto a = fleet.run_agent("agent-a", "agent-a.log");
  auto b = fleet.run_agent("agent-b", "agent-b.log");
  Seen statuses;
  REQUIRE(wait_until(
      [&] {
        statuses.drain(*watcher);
        return statuses.by_topic.count("sovdev/v1/status/agent-a") &&
               statuses.by_topic.count("sovdev/v1/status/agent-b");
      },
      std::chrono::seconds(30)));
  WireCounter unicast(fleet, "sovdev/v1/agent/+/data");
  WireCounter broadcast(fleet, "sovdev/v1/blob/+");
  auto hub = fleet.serve("hub.log");

  const bool both =
      wait_until([&] { return verified(fleet, "agent-a") && verified(fleet, "agent-b"); },
                 std::chrono::seconds(120));
  INFO("agent a: " << read_text(fleet.ws.dir / "agent-a.log"));
  INFO("agent b: " << read_text(fleet.ws.dir / "agent-b.log"));
  INFO("hub: " << read_text(fleet.ws.dir / "hub.log"));
  REQUIRE(both);
  const uint64_t on_data = unicast.bytes(), on_blob = broadcast.bytes();
  WARN("two agents, " << noise.payload << "-byte bundle: hub published " << on_data
                      << " bytes on data topics and " << on_blob << " on the blob topic");
  CHECK(on_blob > 0);
  CHECK(on_data + on_blob < 2 * noise.payload);
  a->kill_hard();
  b->kill_hard();
}

TEST_CASE("with one transfer slot per stack a second agent waits its turn, and both end verified",
          "[sync][broadcast][pacing]") {
  Fleet fleet;
  publish_broadcast_noise(fleet, 16);
  fleet.agent_config("agent-a", 1);
  fleet.agent_config("agent-b", 1);
  auto a = fleet.run_agent("agent-a", "agent-a.log");
  auto b = fleet.run_agent("agent-b", "agent-b.log");
  auto hub = std::make_unique<Child>(
      std::vector<std::string>{hub_binary(), "serve", "--db", fleet.hub_db, "--key",
                               fleet.ws.online_key(), "--trust", fleet.ws.trust, "--broker",
                               fleet.broker->url(), "--username", "sovdev-hub", "--password-file",
                               fleet.password_file("sovdev-hub"), "--max-transfers-per-stack", "1"},
      fleet.ws.dir / "hub.log");
  const bool both =
      wait_until([&] { return verified(fleet, "agent-a") && verified(fleet, "agent-b"); },
                 std::chrono::seconds(120));
  const std::string hub_log = read_text(fleet.ws.dir / "hub.log");
  INFO("hub: " << hub_log);
  REQUIRE(both);
  CHECK_THAT(hub_log, Catch::Contains("waits for a transfer slot of kp (place 1, 1 served"));
  a->kill_hard();
  b->kill_hard();
}

TEST_CASE(
    "a request without the broadcast flag is answered on the agent's data topic, one with it on "
    "the bundle's blob topic, and a chunk broadcast before goes to the asker alone",
    "[sync][broadcast]") {
  Fleet fleet;
  publish_broadcast_noise(fleet, 1);
  auto watcher = fleet.client("sovdev-hub", "watcher");
  REQUIRE(watcher->subscribe("sovdev/v1/catalog/edge", 1));
  REQUIRE(watcher->subscribe("sovdev/v1/agent/agent-a/data", 1));
  REQUIRE(watcher->subscribe("sovdev/v1/blob/+", 1));
  auto hub = fleet.serve("hub.log");
  Seen seen;
  REQUIRE(wait_until(
      [&] {
        seen.drain(*watcher);
        return seen.by_topic.count("sovdev/v1/catalog/edge") > 0;
      },
      std::chrono::seconds(30)));
  pb::Signed envelope;
  pb::Catalog catalog;
  REQUIRE(envelope.ParseFromString(seen.by_topic["sovdev/v1/catalog/edge"].front()));
  REQUIRE(catalog.ParseFromString(envelope.body()));
  REQUIRE(catalog.entries_size() == 1);
  const std::string digest = catalog.entries(0).manifest_digest();
  const std::string blob = "sovdev/v1/blob/" + to_hex(digest);
  const std::string data = "sovdev/v1/agent/agent-a/data";

  auto agent = fleet.client("agent-a", "agent-a-by-hand");
  uint64_t id = 0;
  auto ask = [&](uint32_t chunk, bool flag) {
    pb::FetchRequest req;
    req.set_schema(1);
    req.set_agent_id("agent-a");
    req.set_request_id(++id);
    req.set_manifest_digest(digest);
    auto* range = req.add_chunks();
    range->set_first(chunk);
    range->set_count(1);
    req.set_broadcast(flag);
    mqtt::Message m;
    m.topic = "sovdev/v1/fetch/agent-a";
    m.payload = req.SerializeAsString();
    m.response_topic = data;
    REQUIRE(agent->publish(m));
  };
  auto arrived = [&](const std::string& topic, uint32_t chunk) {
    return wait_until(
        [&] {
          seen.drain(*watcher);
          return chunk_indices(seen.by_topic[topic]).count(chunk) > 0;
        },
        std::chrono::seconds(30));
  };
  ask(0, false);  // as an agent from before the flag existed asks
  REQUIRE(arrived(data, 0));
  ask(1, true);
  REQUIRE(arrived(blob, 1));
  // The hub answers in order: once chunk 2 is in, everything for the first two requests is.
  ask(2, false);
  REQUIRE(arrived(data, 2));
  CHECK(chunk_indices(seen.by_topic[data]) == std::set<uint32_t>{0, 2});
  CHECK(chunk_indices(seen.by_topic[blob]) == std::set<uint32_t>{1});

  // Chunk 1 asked for again, as by an agent that started listening after its broadcast: it
  // goes to the asker alone, and the blob topic carries it once. Chunk 3, never sent, is
  // still broadcast.
  ask(1, true);
  REQUIRE(arrived(data, 1));
  ask(3, true);
  REQUIRE(arrived(blob, 3));
  seen.drain(*watcher);
  CHECK(chunk_indices(seen.by_topic[data]) == std::set<uint32_t>{0, 1, 2});
  CHECK(seen.by_topic[blob].size() == 2);  // chunks 1 and 3, once each
}

TEST_CASE(
    "an agent ignores broadcast chunks for another bundle and forged ones for its own, and still "
    "ends verified",
    "[sync][broadcast]") {
  Fleet fleet;
  publish_broadcast_noise(fleet, 8);
  fleet.agent_config("agent-a", 2);
  auto hub = fleet.serve("hub.log");
  auto watcher = fleet.client("sovdev-hub", "watcher");
  REQUIRE(watcher->subscribe("sovdev/v1/blob/+", 0));
  auto agent = fleet.run_agent("agent-a", "agent-a.log");
  // The first broadcast chunk names the blob topic the agent listens on.
  std::string topic, digest;
  REQUIRE(wait_until(
      [&] {
        while (auto e = watcher->next(std::chrono::milliseconds(20))) {
          pb::FetchResponse r;
          if (e->kind == mqtt::Event::Kind::message &&
              r.ParseFromString(e->message.payload.str())) {
            topic = e->message.topic;
            digest = r.manifest_digest();
          }
        }
        return !topic.empty();
      },
      std::chrono::seconds(60)));
  auto evil = fleet.client("sovdev-hub", "evil");
  for (uint32_t i = 0; i < 64; i++) {
    pb::FetchResponse forged;
    forged.set_schema(1);
    // Half for a bundle the agent is not fetching, half for its own with the wrong bytes.
    forged.set_manifest_digest(i % 2 ? std::string(32, '\x42') : digest);
    forged.mutable_chunk()->set_index(i);
    forged.mutable_chunk()->set_data(std::string(65536, 'z'));
    forged.set_broadcast_stream(7);
    forged.set_broadcast_seq(i + 1);
    mqtt::Message m;
    m.topic = topic;
    m.payload = forged.SerializeAsString();
    m.qos = 0;
    (void)evil->publish(m);
  }
  const bool done =
      wait_until([&] { return verified(fleet, "agent-a"); }, std::chrono::seconds(120));
  INFO("agent: " << read_text(fleet.ws.dir / "agent-a.log"));
  REQUIRE(done);
  auto status = run({agent_binary(), "status", "--state", fleet.agent_state("agent-a"), "--json"});
  // One bundle in the cache, verified against its signed hashes, whatever came on the topic.
  CHECK_THAT(status.out, !Catch::Contains("partial"));
  CHECK_THAT(status.out, Catch::Contains("\"newest_verified\": 1"));
  agent->kill_hard();
}
