#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <random>
#include <regex>
#include <thread>

#include "bundles/sign_objects.hpp"
#include "hub/key_files.hpp"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

struct BigBundle {
  std::string file;
  uint64_t payload = 0;
};

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) n++;
  return n;
}

BigBundle publish_noise(Fleet& fleet, int mib, uint64_t version = 1) {
  write_noise_stack(fleet.ws.dir / "noise", mib, 7);
  BigBundle b{fleet.ws.dir / "noise.sdb", 0};
  REQUIRE(fleet.ws.build(fleet.ws.dir / "noise", b.file, version, {"--level", "1"}).exit_code == 0);
  REQUIRE(fleet.publish(b.file).exit_code == 0);
  b.payload = std::filesystem::file_size(b.file);
  return b;
}

}  // namespace

TEST_CASE(
    "an agent killed with SIGKILL 20 times mid-transfer ends verified without refetching from zero",
    "[sync][crash]") {
  Fleet fleet;
  BigBundle big = publish_noise(fleet, 24);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a", 4);
  fleet.agent_config("agent-b", 4);

  // How long a whole undisturbed transfer takes, measured with another agent.
  const auto t0 = std::chrono::steady_clock::now();
  auto calibration = fleet.sync_once("agent-b");
  REQUIRE(calibration.exit_code == 0);
  const auto full_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();

  WireCounter wire(fleet, "sovdev/v1/agent/agent-a/data");
  WireCounter blob(fleet, "sovdev/v1/blob/+");  // chunks come there once the agent listens
  std::mt19937 rng(std::random_device{}());
  for (int i = 0; i < 20; i++) {
    auto agent = fleet.run_agent("agent-a", "agent-a.log");
    const auto delay =
        std::chrono::milliseconds(rng() % static_cast<uint64_t>(std::max<int64_t>(full_ms, 50)));
    std::this_thread::sleep_for(delay);  // the fault injection point, not synchronisation
    agent->kill_hard();
    agent->wait();
  }
  auto finished = fleet.sync_once("agent-a");
  INFO(finished.out << finished.err);
  REQUIRE(finished.exit_code == 0);
  const uint64_t fetched = wire.bytes() + blob.bytes();
  WARN("20 kills: " << fetched << " bytes fetched for a " << big.payload << "-byte bundle ("
                    << (100 * fetched / big.payload) << " %)");
  CHECK(fetched < big.payload * 12 / 10);
  auto status = run({agent_binary(), "status", "--state", fleet.agent_state("agent-a"), "--json"});
  CHECK_THAT(status.out, Catch::Contains("\"state\": \"verified\""));
}

TEST_CASE(
    "an agent killed with SIGKILL 10 times mid-delta goes on with the delta it was collecting",
    "[sync][crash][delta]") {
  Fleet fleet;
  build_noise_upgrade(fleet);
  REQUIRE(fleet.publish(fleet.ws.dir / "v1.sdb").exit_code == 0);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a", 4);
  fleet.agent_config("agent-b", 4);
  for (const char* agent : {"agent-a", "agent-b"}) {
    REQUIRE(fleet.sync_once(agent).exit_code == 0);
  }
  REQUIRE(fleet.publish_live(fleet.ws.dir / "v2.sdb").exit_code == 0);

  // Another agent makes the hub compute (and cache) the delta, and says how big it is.
  auto calibration = fleet.sync_once("agent-b");
  INFO(calibration.out << calibration.err << read_text(fleet.ws.dir / "hub.log"));
  REQUIRE(calibration.exit_code == 0);
  // "fetched <stack>@2 as a delta in N ms: B bytes received"
  std::smatch said;
  const std::string b_log = calibration.out + calibration.err;
  REQUIRE(std::regex_search(b_log, said, std::regex("as a delta in [0-9]+ ms: ([0-9]+) bytes")));
  const uint64_t delta_bytes = std::stoull(said[1].str());

  WireCounter wire(fleet, "sovdev/v1/agent/agent-a/data");
  WireCounter blob(fleet, "sovdev/v1/blob/+");
  // Each run is killed as soon as the delta file has grown past what the run before left:
  // mid-delta by construction, wherever that falls in its chunks.
  const std::string work = fleet.agent_state("agent-a") + "/work";
  const auto delta_on_disk = [&work] {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(work, ec)) {
      if (e.path().extension() == ".delta") return e.file_size(ec);
    }
    return std::uintmax_t{0};
  };
  std::uintmax_t last = 0;
  int kills = 0;
  std::string logs;
  for (int i = 0; i < 10; i++) {
    const std::string log = "agent-a-" + std::to_string(i) + ".log";
    auto agent = fleet.run_agent("agent-a", log);
    const bool grew =
        wait_until([&] { return delta_on_disk() > last; }, std::chrono::milliseconds(10000));
    agent->kill_hard();
    agent->wait();
    logs += read_text(fleet.ws.dir / log);
    last = delta_on_disk();
    if (!grew || last == 0) break;  // the delta was complete before a look caught it growing
    kills++;
  }
  auto finished = fleet.sync_once("agent-a");
  INFO(finished.out << finished.err << logs);
  REQUIRE(finished.exit_code == 0);
  CHECK_THAT(finished.out, Catch::Contains("v2"));
  const uint64_t fetched = wire.bytes() + blob.bytes();
  const uint64_t full = std::filesystem::file_size(fleet.ws.dir / "v2.sdb");
  const size_t resumed =
      count_of(logs + finished.err + finished.out, "going on with the delta of an earlier run");
  WARN(kills << " kills mid-delta: " << fetched << " bytes fetched; one delta is " << delta_bytes
             << ", the full bundle " << full << "; the delta was taken up again " << resumed
             << " times");
  CHECK(kills >= 2);
  CHECK(resumed >= static_cast<size_t>(kills));
  // What a kill costs is about twice the window (4 chunks of 64 KiB): what was in flight
  // reaches nobody, and the hub sends it again to the next run. Without going on with the
  // delta, the first kill after the delta offer meant the whole payload (the bundle is cached
  // as partial from then on).
  CHECK(fetched < delta_bytes * 11 / 10 + static_cast<uint64_t>(kills) * 2 * 4 * 65536);
  CHECK(fetched < full * 3 / 4);
  CHECK(applied_objects(fleet.agent_dir("agent-a")) ==
        bundle_objects(fleet.ws.dir / "v2.sdb", fleet.ws.trust));
  // Nothing of the delta is left behind in the work folder.
  for (const auto& e :
       std::filesystem::directory_iterator(fleet.agent_state("agent-a") + "/work")) {
    CHECK(e.path().filename().string().find(".delta") == std::string::npos);
  }
}

TEST_CASE("a transfer survives a broker restart and the loss of one of two hub replicas",
          "[sync][fault]") {
  Fleet fleet;
  publish_noise(fleet, 16);
  auto hub1 = fleet.serve("hub1.log");
  auto hub2 = fleet.serve("hub2.log");
  // Both replicas up before the transfer: a replica still connecting when the broker restarts
  // gives up (a first connection that fails is an error), and the test would lose its spare.
  for (const char* log : {"hub1.log", "hub2.log"}) {
    INFO(log << ": " << read_text(fleet.ws.dir / log));
    REQUIRE(wait_until(
        [&] {
          return read_text(fleet.ws.dir / log).find("connected to the broker") != std::string::npos;
        },
        std::chrono::seconds(30)));
  }
  fleet.agent_config("agent-a", 4);
  auto agent = fleet.run_agent("agent-a", "agent-a.log");

  // Once some chunks are in, restart the broker; later, kill one replica.
  auto chunks_stored = [&] {
    auto st = run({agent_binary(), "status", "--state", fleet.agent_state("agent-a"), "--json"});
    return st.exit_code == 0 && st.out.find("\"state\": \"partial\"") != std::string::npos;
  };
  REQUIRE(wait_until(chunks_stored, std::chrono::seconds(60)));
  fleet.broker->restart();
  hub1->kill_hard();
  hub1->wait();
  const bool verified = wait_until(
      [&] {
        auto st =
            run({agent_binary(), "status", "--state", fleet.agent_state("agent-a"), "--json"});
        return st.out.find("\"state\": \"verified\"") != std::string::npos;
      },
      std::chrono::seconds(120));
  INFO("agent: " << read_text(fleet.ws.dir / "agent-a.log"));
  INFO("hub 1: " << read_text(fleet.ws.dir / "hub1.log"));
  INFO("hub 2: " << read_text(fleet.ws.dir / "hub2.log"));
  CHECK(verified);
}

TEST_CASE("hostile traffic on every topic is ignored and counted, and the cache does not change",
          "[sync][hostile]") {
  Fleet fleet;
  REQUIRE(fleet.ws.build(edge_stack("v1"), fleet.ws.dir / "v1.sdb", 1).exit_code == 0);
  REQUIRE(fleet.publish(fleet.ws.dir / "v1.sdb").exit_code == 0);
  auto hub = fleet.serve("hub.log");
  fleet.agent_config("agent-a");
  REQUIRE(fleet.sync_once("agent-a").exit_code == 0);

  auto agent = fleet.run_agent("agent-a", "agent-a.log");
  REQUIRE(wait_until(
      [&] {
        return read_text(fleet.ws.dir / "agent-a.log").find("connected to the broker") !=
               std::string::npos;
      },
      std::chrono::seconds(20)));
  auto evil = fleet.client("sovdev-hub", "evil");
  auto send = [&](const std::string& topic, const std::string& payload) {
    mqtt::Message m;
    m.topic = topic;
    m.payload = payload;
    // The broker may refuse oversized ones itself (and drop the sender): what gets through
    // must be ignored.
    (void)evil->publish(m);
  };
  // "connected" comes before the subscriptions are in place (seconds apart under ASan): garbage
  // on the catalog topic until the agent says it saw some, so nothing below is sent too early.
  REQUIRE(wait_until(
      [&] {
        send("sovdev/v1/catalog/edge", "garbage");
        return read_text(fleet.ws.dir / "agent-a.log").find("not a valid envelope") !=
               std::string::npos;
      },
      std::chrono::seconds(20)));
  // A catalog signed by an unknown key, then an old catalog replayed after a newer one.
  pb::Catalog forged;
  forged.set_schema(1);
  forged.set_channel("edge");
  forged.set_serial(999);
  forged.set_expires_at(4102444800);
  send("sovdev/v1/catalog/edge", sign_catalog(forged, {generate_key("intruder")}));
  pb::Catalog old;
  old.set_schema(1);
  old.set_channel("edge");
  old.set_serial(0);
  old.set_expires_at(4102444800);
  auto pub = hub::load_secret_key(fleet.ws.online_key());
  REQUIRE(pub);
  send("sovdev/v1/catalog/edge", sign_catalog(old, {*pub}));
  // Garbage and oversized messages on the agent's topics; the largest last.
  send("sovdev/v1/catalog/edge", "garbage");
  send("sovdev/v1/agent/agent-a/data", "\x0a\xff\xff\xff\x0f");
  send("sovdev/v1/catalog/edge", std::string(200000, 'x'));
  send("sovdev/v1/agent/agent-a/data", std::string(2 << 20, 'y'));
  const bool counted = wait_until(
      [&] {
        return read_text(fleet.ws.dir / "agent-a.log").find("over the 65536-byte limit") !=
               std::string::npos;
      },
      std::chrono::seconds(20));
  // The hub's fleet view hears of the rejections without waiting for the hourly status.
  const bool reported = wait_until(
      [&] {
        auto st = run({hub_binary(), "status", "--db", fleet.hub_db, "--json"});
        auto all = nlohmann::json::parse(st.out, nullptr, false);
        if (!all.is_object()) return false;
        for (const auto& a : all["agents"]) {
          if (a["agent"] == "agent-a" && a["rejected_messages"].get<int>() >= 4) return true;
        }
        return false;
      },
      std::chrono::seconds(30));
  agent->kill_hard();
  agent->wait();
  CHECK(counted);
  CHECK(reported);
  const std::string log = read_text(fleet.ws.dir / "agent-a.log");
  CHECK_THAT(log, Catch::Contains("unknown key"));
  CHECK_THAT(log, Catch::Contains("serial 0"));  // the replayed old catalog
  CHECK_THAT(log, Catch::Contains("not a valid envelope"));
  // Still on version 1, nothing new cached.
  auto status = run({agent_binary(), "status", "--state", fleet.agent_state("agent-a"), "--json"});
  CHECK_THAT(status.out, Catch::Contains("\"newest_verified\": 1"));
  CHECK_THAT(status.out, !Catch::Contains("partial"));
}

TEST_CASE("an agent cannot publish another agent's status", "[sync][acl]") {
  Fleet fleet;
  auto watcher = fleet.client("sovdev-hub", "watcher");
  REQUIRE(watcher->subscribe("sovdev/v1/status/#", 1));
  auto a = fleet.client("agent-a", "agent-a-client");
  mqtt::Message forged;
  forged.topic = "sovdev/v1/status/agent-b";
  forged.payload = "forged";
  (void)a->publish(forged);  // refused by the broker, silently or with a reason code
  mqtt::Message own;
  own.topic = "sovdev/v1/status/agent-a";
  own.payload = "mine";
  REQUIRE(a->publish(own));
  bool saw_own = false, saw_forged = false;
  wait_until(
      [&] {
        while (auto e = watcher->next(std::chrono::milliseconds(20))) {
          if (e->kind != mqtt::Event::Kind::message) continue;
          saw_own = saw_own || e->message.topic == own.topic;
          saw_forged = saw_forged || e->message.topic == forged.topic;
        }
        return saw_own;
      },
      std::chrono::seconds(10));
  CHECK(saw_own);
  CHECK_FALSE(saw_forged);
}
