// Issue #19 §3 against a real broker and `sovdev-hub serve`: one agent abusing its own fetch
// topic, as shown in the issue, and what the hub's memory, wire and /metrics show.
#include <catch2/catch.hpp>

#include <regex>

#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"
#include "tests/hub/exposition_check.hpp"
#include "tests/hub/http_client.hpp"
#include "tests/support/sanitizer.hpp"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

constexpr auto kAbuseDeadline = std::chrono::seconds(60);
constexpr uint64_t kMiB = 1024 * 1024;

struct AbuseHub {
  std::unique_ptr<Child> process;
  int port = 0;
  std::string log;

  double metric(const std::string& series) const {
    const auto reply = http_request("127.0.0.1", port, "GET", "/metrics");
    if (reply.status != 200) return -1;
    const auto e = parse_exposition(reply.body);
    return e.has(series) ? e.value(series) : -1;
  }
  // VmRSS of the hub process, from /proc.
  uint64_t rss() const {
    const std::string status = read_text("/proc/" + std::to_string(process->pid()) + "/status");
    std::smatch m;
    static const std::regex line(R"(VmRSS:\s+(\d+) kB)");
    return std::regex_search(status, m, line) ? std::stoull(m[1].str()) * 1024 : 0;
  }
};

AbuseHub start_abuse_hub(const Fleet& fleet) {
  AbuseHub hub;
  hub.log = fleet.ws.dir / "hub.log";
  hub.process = std::make_unique<Child>(
      std::vector<std::string>{hub_binary(), "serve", "--db", fleet.hub_db, "--key",
                               fleet.ws.online_key(), "--trust", fleet.ws.trust, "--broker",
                               fleet.broker->url(), "--username", "sovdev-hub", "--password-file",
                               fleet.password_file("sovdev-hub"), "--group", "hubs",
                               "--metrics-listen", "127.0.0.1:0"},
      hub.log);
  const std::regex line(R"(metrics on http://127\.0\.0\.1:(\d+)/metrics)");
  std::string port;
  REQUIRE(wait_until(
      [&] {
        const std::string text = read_text(hub.log);
        std::smatch m;
        if (std::regex_search(text, m, line)) port = m[1].str();
        return !port.empty() || !hub.process->running();
      },
      kAbuseDeadline));
  INFO(read_text(hub.log));
  REQUIRE(!port.empty());
  hub.port = std::stoi(port);
  // Serving once its subscriptions are in: the catalog it publishes comes after them.
  REQUIRE(wait_until([&] { return read_text(hub.log).find("serving ") != std::string::npos; },
                     kAbuseDeadline));
  return hub;
}

void published(mqtt::Client& client, const mqtt::Message& m) {
  const uint64_t before = client.stats().published;
  REQUIRE(client.publish(m));
  REQUIRE(wait_until(
      [&] {
        (void)client.next(std::chrono::milliseconds(5));
        return client.stats().published > before;
      },
      kAbuseDeadline));
}

}  // namespace

TEST_CASE("a hub flooded with oversize fetch requests drops them on arrival and stays small",
          "[abuse]") {
  // The issue's figure: 400 × 1.1 MB on one agent's fetch topic took the hub from 20 to 473 MB.
  Fleet fleet;
  auto hub = start_abuse_hub(fleet);
  const uint64_t idle = hub.rss();
  auto agent = fleet.client("agent-a", "sovdev-agent-agent-a");
  mqtt::Message flood;
  flood.topic = "sovdev/v1/fetch/agent-a";
  flood.payload = std::string(1100 * 1000, 'f');
  constexpr int kFlood = 400;
  uint64_t peak = 0;
  for (int i = 0; i < kFlood; i++) {
    published(*agent, flood);
    if (i % 50 == 0) peak = std::max(peak, hub.rss());
  }
  REQUIRE(wait_until(
      [&] {
        return hub.metric(R"(sovdev_hub_dropped_messages_total{reason="oversize"})") >= kFlood;
      },
      kAbuseDeadline));
  peak = std::max(peak, hub.rss());
  const double queue_peak = hub.metric("sovdev_hub_queue_bytes_peak");
  WARN("hub RSS idle " << idle / kMiB << " MiB, peak during the flood " << peak / kMiB
                       << " MiB; queue peak " << queue_peak << " bytes");
  CHECK(hub.metric(R"(sovdev_hub_dropped_messages_total{reason="oversize"})") == kFlood);
  CHECK(queue_peak < 64 * 1024);
  if (kMemoryBarsApply) CHECK(peak < idle + 32 * kMiB);
  CHECK(hub.process->running());
}

TEST_CASE(
    "an agent repeating a 256-chunk request with nobody reading is served each chunk a "
    "bounded number of times",
    "[abuse]") {
  // The issue's figure: 20 such requests made the hub serve 333 MB.
  Fleet fleet;
  write_noise_stack(fleet.ws.dir / "stack", 22, 5);
  const std::string file = fleet.ws.dir / "big.sdb";
  auto built = fleet.ws.build(fleet.ws.dir / "stack", file, 1, {"--level", "1"});
  INFO(built.err);
  REQUIRE(built.exit_code == 0);
  REQUIRE(fleet.publish(file).exit_code == 0);
  store::HubBundle bundle;
  {
    auto db = store::open_hub_database(fleet.hub_db);
    REQUIRE(db);
    store::HubBundles bundles(*db);
    auto newest = bundles.newest_per_stack("edge");
    REQUIRE(newest);
    REQUIRE(newest->size() == 1);
    bundle = newest->front();
  }
  const uint32_t chunks = std::min<uint32_t>(bundle.chunk_count, 256);
  REQUIRE(chunks >= 200);
  auto hub = start_abuse_hub(fleet);
  auto agent = fleet.client("agent-a", "sovdev-agent-agent-a");  // never reads its data topic

  constexpr int kRepeats = 20;
  for (int r = 0; r < kRepeats; r++) {
    pb::FetchRequest req;
    req.set_schema(1);
    req.set_agent_id("agent-a");
    req.set_request_id(static_cast<uint64_t>(r + 1));
    req.set_manifest_digest(bundle.digest);
    auto* range = req.add_chunks();
    range->set_first(0);
    range->set_count(chunks);
    mqtt::Message m;
    m.topic = "sovdev/v1/fetch/agent-a";
    m.payload = req.SerializeAsString();
    m.response_topic = "sovdev/v1/agent/agent-a/data";
    published(*agent, m);
  }
  REQUIRE(wait_until([&] { return hub.metric("sovdev_hub_requests_total") >= kRepeats; },
                     kAbuseDeadline));
  const double served = hub.metric(R"(sovdev_hub_chunks_served_total{kind="full"})");
  const double refused = hub.metric(R"(sovdev_hub_refused_total{what="chunks"})");
  const double bytes = hub.metric("sovdev_hub_bytes_served_total");
  WARN("20 requests for " << chunks << " chunks: " << served << " chunks served (" << bytes / kMiB
                          << " MiB), " << refused << " refused; unbounded: " << kRepeats * chunks
                          << " chunks");
  CHECK(served <= 3.0 * chunks);
  CHECK(refused >= (kRepeats - 3.0) * chunks);
  CHECK(bytes <= 3.0 * static_cast<double>(bundle.payload_size) + kMiB);
}
