// The /metrics page rendered from a hub.db filled through the store API, read the way the
// hub reads it: through a read-only connection of its own.
#include <catch2/catch.hpp>

#include "hub/metrics.hpp"
#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"
#include "tests/hub/exposition_check.hpp"
#include "tests/support/process.hpp"

using namespace sovdev;
using namespace sovdev::hub;
using sovdev::testing::parse_exposition;

namespace {

template <class T>
T must(Expected<T> e) {
  if (!e) FAIL(e.error().message);
  return std::move(e).value();
}

void must(Status s) {
  if (!s) FAIL(s.error().message);
}

store::Database read_only(const std::string& path) {
  store::OpenOptions o;
  o.create = false;
  o.read_only = true;
  return must(store::Database::open(path, o));
}

std::string digest_of(char id) {
  return std::string(31, '\x11') + id;
}

void put_bundle(store::Database& db, const std::string& channel, const std::string& stack,
                uint64_t version, char id) {
  store::HubBundle b;
  b.digest = digest_of(id);
  b.channel = channel;
  b.stack = stack;
  b.version = version;
  b.envelope = "manifest";
  b.chunk_count = 1;
  b.payload_size = 4;
  b.uncompressed_size = 8;
  store::HubBundles bundles(db);
  must(
      bundles.put_bundle(b, [](uint32_t) -> Expected<std::string> { return std::string("data"); }));
}

// The hub's clock when it stores a status: after every time the agents below claim.
constexpr int64_t kHubNow = 1700000500;

void put_status(store::Database& db, const pb::AgentStatus& st, int64_t now = kHubNow) {
  store::FleetStatus fleet(db);
  must(fleet.upsert({st.agent_id(), st.channel(), st.SerializeAsString(), st.updated_at()}, now));
}

pb::AgentStatus agent_a() {
  pb::AgentStatus st;
  st.set_schema(1);
  st.set_agent_id("agent-a");
  st.set_channel("edge");
  st.set_stack("sovdev");
  st.set_applied_version(3);
  st.set_applied_digest(digest_of('b'));  // edge sovdev v3
  st.set_state("healthy");
  st.set_rss_bytes(9 << 20);
  st.set_private_bytes(3 << 20);
  st.set_updated_at(1700000100);
  st.set_rejected_messages(2);
  st.set_dropped_messages(5);
  st.set_oversize_messages(7);
  st.set_agent_version("0.4.0");
  st.set_last_fetch_ms(1500);
  st.set_last_fetch_bytes(123456);
  st.set_last_fetch_delta(true);
  const std::pair<const char*, const char*> services[] = {{"traefik", "healthy"},
                                                          {"postgresql", "external"},
                                                          {"redis", "degraded"},
                                                          {"we\"ird\\name\n", "healthy"},
                                                          {"traefik", "healthy"}};  // twice
  for (const auto& [name, state] : services) {
    auto* s = st.add_services();
    s->set_service(name);
    s->set_state(state);
  }
  return st;
}

pb::AgentStatus agent(const std::string& id, const std::string& channel, const std::string& state) {
  pb::AgentStatus st;
  st.set_schema(1);
  st.set_agent_id(id);
  st.set_channel(channel);
  st.set_stack("sovdev");
  st.set_state(state);
  st.set_updated_at(1700000200);
  return st;
}

}  // namespace

TEST_CASE("the metrics page shows the fleet, the bundles and the serve loop's figures",
          "[metrics]") {
  sovdev::testing::TempDir dir;
  const std::string path = dir / "hub.db";
  auto db = must(store::open_hub_database(path));
  put_bundle(db, "edge", "sovdev", 1, 'a');
  put_bundle(db, "edge", "sovdev", 3, 'b');
  put_bundle(db, "edge", "other", 5, 'c');
  put_bundle(db, "prod", "sovdev", 2, 'd');
  put_status(db, agent_a());
  auto b = agent("agent-b", "prod", "degraded");
  b.set_environment("production");  // a claim: the published bundle's channel is "prod"
  b.set_applied_digest(digest_of('d'));
  b.set_agent_version("0.4.0 \"rc\"");
  put_status(db, b);
  auto c = agent("agent-c", "edge", "offline");
  (*c.mutable_labels())["site"] = "plant-7";
  (*c.mutable_labels())["region"] = "eu";
  (*c.mutable_labels())["id"] = "agent-a";        // reserved: selectors name the id by it
  (*c.mutable_labels())["bad key!"] = "x";        // not a label key
  (*c.mutable_labels())["hw"] = "rpi 5\nsite=x";  // not a label value
  put_status(db, c);

  metrics::LiveFigures live;
  ServeStats stats;
  stats.requests = 10;
  stats.rejected = 1;
  stats.manifests_sent = 2;
  stats.chunks_sent = 30;
  stats.delta_chunks_sent = 4;
  stats.bytes_sent = 5000000;
  stats.statuses = 7;
  stats.send_failures = 3;
  stats.epoch_keys_sent = 6;
  stats.epoch_keys_refused = 2;
  live.update(stats);
  live.observe_request(std::chrono::microseconds(300));
  live.observe_request(std::chrono::milliseconds(30));

  auto reader = read_only(path);
  const std::string page = must(metrics::render(reader, live.snapshot(), {"9.9.9"}));
  const auto e = parse_exposition(page);
  INFO(page);
  for (const auto& p : e.problems) FAIL_CHECK(p);

  CHECK(e.value(R"(sovdev_hub_epoch_keys_total{result="sent"})") == 6);
  CHECK(e.value(R"(sovdev_hub_epoch_keys_total{result="refused"})") == 2);
  CHECK(e.value(R"(sovdev_agents{state="healthy"})") == 1);
  CHECK(e.value(R"(sovdev_agents{state="degraded"})") == 1);
  CHECK(e.value(R"(sovdev_agents{state="offline"})") == 1);
  CHECK(e.value(R"(sovdev_agents{state="fetching"})") == 0);
  CHECK(e.value(R"(sovdev_agent_info{agent="agent-a",channel="edge",environment="edge",)"
                R"(stack="sovdev",state="healthy",agent_version="0.4.0"})") == 1);
  CHECK(e.value(R"(sovdev_agent_info{agent="agent-b",channel="prod",environment="prod",)"
                R"(stack="sovdev",state="degraded",agent_version="0.4.0 \"rc\""})") == 1);
  CHECK(e.value(R"(sovdev_agent_applied_version{agent="agent-a",channel="edge",stack="sovdev"})") ==
        3);
  // The labels rollouts select by, well formed ones only.
  CHECK(e.value(R"(sovdev_agent_label{agent="agent-c",label="site",value="plant-7"})") == 1);
  CHECK(e.value(R"(sovdev_agent_label{agent="agent-c",label="region",value="eu"})") == 1);
  CHECK(page.find(R"(sovdev_agent_label{agent="agent-c",label="id")") == std::string::npos);
  CHECK(page.find(R"(label="bad key!")") == std::string::npos);
  CHECK(page.find(R"(label="hw")") == std::string::npos);
  CHECK(e.value(R"(sovdev_agent_last_seen_timestamp_seconds{agent="agent-a"})") == kHubNow);
  CHECK(e.value(R"(sovdev_agent_private_memory_bytes{agent="agent-a"})") == 3 << 20);
  CHECK(e.value(R"(sovdev_agent_rss_bytes{agent="agent-a"})") == 9 << 20);
  CHECK(e.value(R"(sovdev_agent_last_fetch_seconds{agent="agent-a"})") == 1.5);
  CHECK(e.value(R"(sovdev_agent_last_fetch_bytes{agent="agent-a"})") == 123456);
  CHECK(e.value(R"(sovdev_agent_last_fetch_delta{agent="agent-a"})") == 1);
  CHECK(e.value(R"(sovdev_agent_last_fetch_delta{agent="agent-b"})") == 0);
  CHECK(e.value(R"(sovdev_agent_rejected_messages{agent="agent-a"})") == 2);
  CHECK(e.value(R"(sovdev_agent_dropped_messages{agent="agent-a"})") == 5);
  CHECK(e.value(R"(sovdev_agent_oversize_messages{agent="agent-a"})") == 7);
  CHECK(
      e.value(R"(sovdev_service_healthy{agent="agent-a",environment="edge",service="traefik"})") ==
      1);
  CHECK(e.value(R"(sovdev_service_healthy{agent="agent-a",environment="edge",)"
                R"(service="postgresql"})") == 1);
  CHECK(e.value(R"(sovdev_service_healthy{agent="agent-a",environment="edge",service="redis"})") ==
        0);
  CHECK(e.has(R"(sovdev_service_healthy{agent="agent-a",environment="edge",)"
              R"(service="we\"ird\\name\n"})"));
  CHECK(e.value(R"(sovdev_bundle_latest_version{channel="edge",stack="sovdev"})") == 3);
  CHECK(e.value(R"(sovdev_bundle_latest_version{channel="edge",stack="other"})") == 5);
  CHECK(e.value(R"(sovdev_bundle_latest_version{channel="prod",stack="sovdev"})") == 2);

  CHECK(e.value("sovdev_hub_up") == 1);
  CHECK(e.value(R"(sovdev_hub_build_info{version="9.9.9"})") == 1);
  CHECK(e.value("sovdev_hub_requests_total") == 10);
  CHECK(e.value("sovdev_hub_manifests_served_total") == 2);
  CHECK(e.value(R"(sovdev_hub_chunks_served_total{kind="full"})") == 30);
  CHECK(e.value(R"(sovdev_hub_chunks_served_total{kind="delta"})") == 4);
  CHECK(e.value("sovdev_hub_bytes_served_total") == 5000000);
  CHECK(e.value("sovdev_hub_rejected_messages_total") == 1);
  CHECK(e.value("sovdev_hub_status_messages_total") == 7);
  CHECK(e.value("sovdev_hub_send_failures_total") == 3);
  CHECK(e.value(R"(sovdev_hub_request_duration_seconds_bucket{le="0.0005"})") == 1);
  CHECK(e.value(R"(sovdev_hub_request_duration_seconds_bucket{le="0.025"})") == 1);
  CHECK(e.value(R"(sovdev_hub_request_duration_seconds_bucket{le="0.05"})") == 2);
  CHECK(e.value("sovdev_hub_request_duration_seconds_count") == 2);
  CHECK(e.value("sovdev_hub_request_duration_seconds_sum") == Approx(0.0303));

  for (const auto& [family, type] : e.types) {
    CHECK(e.helps.count(family) == 1);
    if (type == "counter") CHECK(family.size() > 6);
  }
  CHECK(e.types.at("sovdev_hub_request_duration_seconds") == "histogram");
  CHECK(e.types.at("sovdev_agents") == "gauge");

  // promtool is the reference for the format and its naming rules.
  if (sovdev::testing::run({"/bin/sh", "-c", "command -v promtool"}).exit_code == 0) {
    sovdev::testing::write_text(dir / "page.txt", page);
    auto checked = sovdev::testing::run(
        {"/bin/sh", "-c", "promtool check metrics < '" + (dir / "page.txt") + "'"});
    INFO(checked.out << checked.err);
    CHECK(checked.exit_code == 0);
    CHECK(checked.err.empty());
  }
}

TEST_CASE("an empty hub still announces every family and counts zero agents per state",
          "[metrics]") {
  sovdev::testing::TempDir dir;
  auto db = must(store::open_hub_database(dir / "hub.db"));
  auto reader = read_only(dir / "hub.db");
  const std::string page = must(metrics::render(reader, metrics::LoopFigures{}, {"1"}));
  const auto e = parse_exposition(page);
  INFO(page);
  CHECK(e.problems.empty());
  for (const char* family : {"sovdev_agents",
                             "sovdev_agent_info",
                             "sovdev_agent_applied_version",
                             "sovdev_agent_last_seen_timestamp_seconds",
                             "sovdev_agent_private_memory_bytes",
                             "sovdev_agent_rss_bytes",
                             "sovdev_agent_last_fetch_seconds",
                             "sovdev_agent_last_fetch_bytes",
                             "sovdev_agent_last_fetch_delta",
                             "sovdev_agent_rejected_messages",
                             "sovdev_agent_dropped_messages",
                             "sovdev_agent_oversize_messages",
                             "sovdev_service_healthy",
                             "sovdev_hub_requests_total",
                             "sovdev_hub_manifests_served_total",
                             "sovdev_hub_chunks_served_total",
                             "sovdev_hub_bytes_served_total",
                             "sovdev_hub_rejected_messages_total",
                             "sovdev_hub_status_messages_total",
                             "sovdev_hub_send_failures_total",
                             "sovdev_hub_request_duration_seconds",
                             "sovdev_bundle_latest_version",
                             "sovdev_hub_up",
                             "sovdev_hub_build_info"}) {
    CHECK(e.types.count(family) == 1);
  }
  CHECK(e.value(R"(sovdev_agents{state="healthy"})") == 0);
  CHECK(e.value(R"(sovdev_hub_request_duration_seconds_bucket{le="+Inf"})") == 0);
}

TEST_CASE("metrics read hub.db while the serve loop holds a write transaction", "[metrics]") {
  sovdev::testing::TempDir dir;
  auto db = must(store::open_hub_database(dir / "hub.db"));
  put_status(db, agent("agent-a", "edge", "healthy"));
  auto reader = read_only(dir / "hub.db");
  // The writer is mid-transaction: WAL lets the reader see the last commit without waiting.
  must(db.exec("BEGIN IMMEDIATE"));
  put_status(db, agent("agent-b", "edge", "fetching"));
  const auto started = std::chrono::steady_clock::now();
  const auto e = parse_exposition(must(metrics::render(reader, metrics::LoopFigures{}, {"1"})));
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));  // no busy wait
  CHECK(e.value(R"(sovdev_agents{state="healthy"})") == 1);
  CHECK(e.value(R"(sovdev_agents{state="fetching"})") == 0);
  must(db.exec("COMMIT"));
  const auto after = parse_exposition(must(metrics::render(reader, metrics::LoopFigures{}, {"1"})));
  CHECK(after.value(R"(sovdev_agents{state="fetching"})") == 1);
}

TEST_CASE(
    "metrics take environment, stack and version from the bundle the hub published and last "
    "seen from the hub's clock, whatever the agent claims",
    "[metrics][fleet]") {
  sovdev::testing::TempDir dir;
  auto db = must(store::open_hub_database(dir / "hub.db"));
  put_bundle(db, "edge", "sovdev", 4, 'e');
  // What anyone holding an agent's broker account can put in its status.
  const auto liar = [](const std::string& id, const std::string& digest) {
    auto st = agent(id, "edge", "healthy");
    st.set_environment("prod");
    st.set_stack("kp");
    st.set_applied_version(999);
    st.set_applied_digest(digest);
    st.set_updated_at(1600000000);  // stored as the earlier of its claim and the hub's clock
    auto* svc = st.add_services();
    svc->set_service("postgresql");
    svc->set_state("healthy");
    return st;
  };
  put_status(db, liar("agent-known", digest_of('e')));
  put_status(db, liar("agent-unknown", std::string(32, '\x42')));
  auto none = liar("agent-new", "");
  put_status(db, none);

  auto reader = read_only(dir / "hub.db");
  const std::string page = must(metrics::render(reader, metrics::LoopFigures{}, {"1"}));
  const auto e = parse_exposition(page);
  INFO(page);
  for (const auto& p : e.problems) FAIL_CHECK(p);
  CHECK_THAT(page, !Catch::Contains("999") && !Catch::Contains("prod") &&
                       !Catch::Contains("\"kp\"") && !Catch::Contains("1600000000"));

  CHECK(e.value(R"(sovdev_agent_info{agent="agent-known",channel="edge",environment="edge",)"
                R"(stack="sovdev",state="healthy",agent_version=""})") == 1);
  CHECK(e.value(R"(sovdev_agent_applied_version{agent="agent-known",channel="edge",)"
                R"(stack="sovdev"})") == 4);
  // A digest the hub never published: the same words `sovdev-hub status` shows, version 0.
  CHECK(e.value(R"(sovdev_agent_info{agent="agent-unknown",channel="edge",)"
                R"(environment="unknown bundle",stack="",state="healthy",agent_version=""})") == 1);
  CHECK(e.value(R"(sovdev_agent_applied_version{agent="agent-unknown",channel="edge",)"
                R"(stack=""})") == 0);
  CHECK(e.value(R"(sovdev_agent_info{agent="agent-new",channel="edge",environment="no bundle",)"
                R"(stack="",state="healthy",agent_version=""})") == 1);
  CHECK(e.value(R"(sovdev_service_healthy{agent="agent-unknown",environment="unknown bundle",)"
                R"(service="postgresql"})") == 1);
  for (const char* id : {"agent-known", "agent-unknown", "agent-new"}) {
    CHECK(e.value(std::string(R"(sovdev_agent_last_seen_timestamp_seconds{agent=")") + id +
                  "\"}") == kHubNow);
  }
}

TEST_CASE("every agent-supplied label value is escaped, control characters shown as text",
          "[metrics][fleet]") {
  sovdev::testing::TempDir dir;
  auto db = must(store::open_hub_database(dir / "hub.db"));
  const std::string hostile = "a\x1b]0;t\x07\x1b[2J\"q\"\\b\nc";
  const std::string shown = R"(a\\x1b]0;t\\x07\\x1b[2J\"q\"\\b\nc)";  // as written on the page
  // The serve loop refuses a state outside the known set; hub.db from elsewhere may hold one.
  auto st = agent(hostile, "edge", hostile);
  st.set_agent_version(hostile);
  auto* svc = st.add_services();
  svc->set_service(hostile);
  svc->set_state("healthy");
  put_status(db, st);

  auto reader = read_only(dir / "hub.db");
  const std::string page = must(metrics::render(reader, metrics::LoopFigures{}, {"1"}));
  const auto e = parse_exposition(page);
  INFO(page);
  for (const auto& p : e.problems) FAIL_CHECK(p);
  CHECK(page.find('\x1b') == std::string::npos);
  CHECK(page.find('\x07') == std::string::npos);
  CHECK(e.value(R"(sovdev_agent_info{agent=")" + shown +
                R"(",channel="edge",environment="no bundle",stack="",state=")" + shown +
                R"(",agent_version=")" + shown + "\"}") == 1);
  CHECK(e.value(R"(sovdev_agents{state=")" + shown + "\"}") == 1);
  CHECK(e.value(R"(sovdev_service_healthy{agent=")" + shown +
                R"(",environment="no bundle",service=")" + shown + "\"}") == 1);
  CHECK(e.value(R"(sovdev_agent_rss_bytes{agent=")" + shown + "\"}") == 0);
}
