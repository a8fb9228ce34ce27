// `sovdev-hub serve --metrics-listen`, end to end: a real broker, hub and agent; the scrape
// checked by promtool and scraped by a real Prometheus server.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "tests/hub/exposition_check.hpp"
#include "tests/hub/http_client.hpp"
#include "tests/support/broker.hpp"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev::testing;

namespace {

constexpr auto kDeadline = std::chrono::seconds(60);

struct MetricsHub {
  std::unique_ptr<Child> process;
  int port = 0;

  HttpReply get(const std::string& path, const std::string& method = "GET") const {
    return http_request("127.0.0.1", port, method, path);
  }
};

std::vector<std::string> serve_argv(const Fleet& fleet) {
  return {hub_binary(),
          "serve",
          "--db",
          fleet.hub_db,
          "--key",
          fleet.ws.online_key(),
          "--trust",
          fleet.ws.trust,
          "--broker",
          fleet.broker->url(),
          "--username",
          "sovdev-hub",
          "--password-file",
          fleet.password_file("sovdev-hub"),
          "--group",
          "hubs"};
}

// Starts serve with --metrics-listen 127.0.0.1:0 and finds the port in its log.
MetricsHub start_hub(const Fleet& fleet) {
  auto argv = serve_argv(fleet);
  argv.insert(argv.end(), {"--metrics-listen", "127.0.0.1:0"});
  const std::string log = fleet.ws.dir / "hub.log";
  MetricsHub hub{std::make_unique<Child>(argv, log)};
  const std::regex line(R"(metrics on http://127\.0\.0\.1:(\d+)/metrics)");
  std::string port;  // copied out: a match points into the text it searched
  const bool found = wait_until(
      [&] {
        const std::string text = read_text(log);
        std::smatch m;
        if (std::regex_search(text, m, line)) port = m[1].str();
        return !port.empty() || !hub.process->running();
      },
      kDeadline);
  INFO("hub log: " << read_text(log));
  REQUIRE(found);
  REQUIRE(!port.empty());
  hub.port = std::stoi(port);
  return hub;
}

void publish_small_stack(const Fleet& fleet) {
  write_manifest(fleet.ws.dir / "stack/config.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n  namespace: default\n"
                 "data:\n  greeting: hello\n");
  const std::string file = fleet.ws.dir / "kp1.sdb";
  auto built = fleet.ws.build(fleet.ws.dir / "stack", file, 1);
  INFO(built.err);
  REQUIRE(built.exit_code == 0);
  auto published = fleet.publish(file);
  INFO(published.err);
  REQUIRE(published.exit_code == 0);
}

// Prometheus answers its HTTP API as JSON; returns the result vector of an instant query.
nlohmann::json query(int port, const std::string& promql) {
  auto reply = http_request("127.0.0.1", port, "GET", "/api/v1/query?query=" + promql);
  if (reply.status != 200) return nlohmann::json::array();
  auto doc = nlohmann::json::parse(reply.body, nullptr, false);
  if (doc.is_discarded() || doc.value("status", "") != "success") return nlohmann::json::array();
  return doc["data"]["result"];
}

}  // namespace

TEST_CASE("the hub's /metrics passes promtool and a real Prometheus scrapes it", "[metrics]") {
  Fleet fleet;
  publish_small_stack(fleet);
  auto hub = start_hub(fleet);
  fleet.agent_config("agent-a");
  auto synced = fleet.sync_once("agent-a");
  INFO("agent: " << synced.out << synced.err << "\nhub: " << read_text(fleet.ws.dir / "hub.log"));
  REQUIRE(synced.exit_code == 0);

  // The agent's last status reaches the hub through the broker a moment after it exits.
  Exposition e;
  HttpReply reply;
  const bool reported = wait_until(
      [&] {
        reply = hub.get("/metrics");
        e = parse_exposition(reply.body);
        return e.value(R"(sovdev_agents{state="healthy"})") == 1 &&
               e.value("sovdev_hub_request_duration_seconds_count") ==
                   e.value("sovdev_hub_requests_total");
      },
      kDeadline);
  INFO(reply.body);
  REQUIRE(reported);
  CHECK(reply.status == 200);
  CHECK_THAT(reply.header("Content-Type"), Catch::StartsWith("text/plain; version=0.0.4"));
  for (const auto& p : e.problems) FAIL_CHECK(p);
  CHECK(e.value("sovdev_hub_up") == 1);
  CHECK(e.value("sovdev_hub_requests_total") >= 2);  // the manifest, then the chunks
  CHECK(e.value(R"(sovdev_hub_chunks_served_total{kind="full"})") >= 1);
  CHECK(e.value("sovdev_hub_manifests_served_total") >= 1);
  CHECK(e.value("sovdev_hub_bytes_served_total") > 0);
  CHECK(e.value("sovdev_hub_status_messages_total") >= 1);
  CHECK(e.value(R"(sovdev_bundle_latest_version{channel="edge",stack="kp"})") == 1);
  CHECK(e.value(R"(sovdev_agent_applied_version{agent="agent-a",channel="edge",stack="kp"})") == 1);
  CHECK(e.value(R"(sovdev_agent_private_memory_bytes{agent="agent-a"})") > 0);
  CHECK(e.value(R"(sovdev_agent_last_fetch_bytes{agent="agent-a"})") > 0);
  CHECK(e.value(R"(sovdev_agent_last_seen_timestamp_seconds{agent="agent-a"})") > 1.7e9);

  // promtool: the reference implementation of the format's parser and its lint rules.
  write_text(fleet.ws.dir / "scrape.txt", reply.body);
  auto checked =
      run({"/bin/sh", "-c", "promtool check metrics < '" + (fleet.ws.dir / "scrape.txt") + "'"});
  INFO("promtool: " << checked.out << checked.err);
  CHECK(checked.exit_code == 0);
  CHECK(checked.err.empty());

  // The rest of the HTTP surface.
  CHECK(hub.get("/").status == 404);
  CHECK(hub.get("/metrics/extra").status == 404);
  CHECK(hub.get("/metrics", "POST").status == 405);
  auto head = hub.get("/metrics", "HEAD");
  CHECK(head.status == 200);
  CHECK(head.body.empty());

  if (!std::filesystem::exists("/usr/bin/prometheus")) {
    WARN(
        "skipped the Prometheus scrape: /usr/bin/prometheus is missing (apt-get install "
        "prometheus, or bash scripts/setup.sh)");
    return;
  }
  // A port that was free a moment ago; should another process take it first, Prometheus
  // exits and the next try picks another.
  std::unique_ptr<Child> prometheus;
  int prom_port = 0;
  const std::string prom_log = fleet.ws.dir / "prometheus.log";
  for (int attempt = 0; attempt < 3 && !prometheus; attempt++) {
    prom_port = free_port();
    const std::string dir = fleet.ws.dir / ("prometheus-" + std::to_string(attempt));
    std::filesystem::create_directories(dir + "/data");
    write_text(dir + "/prometheus.yml",
               "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
               "scrape_configs:\n  - job_name: sovdev-hub\n    static_configs:\n"
               "      - targets: ['127.0.0.1:" +
                   std::to_string(hub.port) + "']\n");
    auto child = std::make_unique<Child>(
        std::vector<std::string>{"/usr/bin/prometheus", "--config.file=" + dir + "/prometheus.yml",
                                 "--storage.tsdb.path=" + dir + "/data",
                                 "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
        prom_log);
    const bool ready = wait_until(
        [&] {
          return !child->running() ||
                 http_request("127.0.0.1", prom_port, "GET", "/-/ready").status == 200;
        },
        kDeadline);
    if (ready && child->running()) prometheus = std::move(child);
  }
  INFO("prometheus log: " << read_text(prom_log));
  REQUIRE(prometheus);

  nlohmann::json up;
  const bool scraped = wait_until(
      [&] {
        up = query(prom_port, "sovdev_hub_up");
        return up.size() == 1;
      },
      kDeadline);
  REQUIRE(scraped);
  CHECK(up[0]["value"][1] == "1");
  CHECK(up[0]["metric"]["job"] == "sovdev-hub");
  // Prometheus's own view of the scrape: it succeeded, and the agent's series arrived intact.
  auto health = query(prom_port, "up{job=\"sovdev-hub\"}");
  REQUIRE(health.size() == 1);
  CHECK(health[0]["value"][1] == "1");
  auto info = query(prom_port, "sovdev_agent_info");
  REQUIRE(info.size() == 1);
  CHECK(info[0]["metric"]["agent"] == "agent-a");
  CHECK(info[0]["metric"]["state"] == "healthy");
  CHECK(info[0]["metric"]["stack"] == "kp");
}

TEST_CASE("the metrics endpoint is off unless --metrics-listen is given", "[metrics]") {
  Fleet fleet;
  auto hub = fleet.serve("hub.log");
  const std::string log = fleet.ws.dir / "hub.log";
  REQUIRE(
      wait_until([&] { return read_text(log).find("serving ") != std::string::npos; }, kDeadline));
  CHECK(read_text(log).find("metrics on") == std::string::npos);
}

TEST_CASE("serve refuses a malformed metrics address and a taken port, saying which", "[metrics]") {
  Workspace ws;
  std::vector<std::string> argv = {
      hub_binary(),    "serve",   "--db",   ws.dir / "hub.db", "--key",
      ws.online_key(), "--trust", ws.trust, "--broker",        "tcp://127.0.0.1:1"};
  auto with = [&](const std::string& listen) {
    auto a = argv;
    a.insert(a.end(), {"--metrics-listen", listen});
    return run(a);
  };
  auto bad = with("localhost");
  INFO(bad.err);
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Catch::Contains("--metrics-listen") && Catch::Contains("ADDR:PORT"));

  // A port held by another listener (as another hub or exporter would).
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  auto taken = with("127.0.0.1:" + std::to_string(ntohs(a.sin_port)));
  ::close(fd);
  INFO(taken.err);
  CHECK(taken.exit_code != 0);
  CHECK_THAT(taken.err, Catch::Contains("already in use"));
  CHECK(taken.err.find("broker") == std::string::npos);  // it failed before connecting
}
