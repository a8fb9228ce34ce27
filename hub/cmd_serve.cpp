// publish and serve: the commands that feed hub.db and answer agents.
#include <chrono>
#include <cstdio>
#include <ctime>

#include <spdlog/spdlog.h>

#include "bundles/manifest_rules.hpp"
#include "common/hex.hpp"
#include "common/text.hpp"
#include "hub/broker_options.hpp"
#include "hub/catalog.hpp"
#include "hub/commands.hpp"
#include "hub/http_endpoint.hpp"
#include "hub/key_files.hpp"
#include "hub/metrics.hpp"
#include "hub/publish.hpp"
#include "hub/serve.hpp"
#include "platform/fs/files.hpp"
#include "platform/proc/sd_notify.hpp"
#include "platform/proc/signals.hpp"
#include "platform/store/hub_store.hpp"

namespace sovdev::hub {
namespace {

int64_t unix_now() {
  return static_cast<int64_t>(std::time(nullptr));
}

struct PublishOptions {
  std::string file;
  std::string db;
  std::vector<std::string> keys;
  std::string trust;
  int64_t ttl = kDefaultCatalogTtl;
  BrokerOptions broker;
  bool hold = false;
};

Status publish(const PublishOptions& o) {
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  PublishRequest req;
  req.file = o.file;
  if (o.trust.empty()) {
    SOVDEV_ASSIGN(req.keys, load_secret_keys(o.keys));
  } else {
    SOVDEV_ASSIGN(req.trust, load_trust_file(o.trust));
    // publish signs the catalog, nothing else: the bundle came signed by the targets keys.
    SOVDEV_ASSIGN(req.keys, load_role_keys(o.keys, *req.trust, TrustRole::online, "publish"));
  }
  req.now = unix_now();
  req.catalog_ttl = o.ttl;
  req.hold = o.hold;
  SOVDEV_ASSIGN(PublishResult r, publish_bundle(db, req));
  std::printf("%s %s\n  digest %s\n  catalog %s serial %llu, expires %s\n",
              r.already_published ? "already published" : "published", describe(r.manifest).c_str(),
              to_hex(r.digest).c_str(), r.catalog.channel.c_str(),
              static_cast<unsigned long long>(r.catalog.serial),
              utc_time(r.catalog.expires_at).c_str());
  if (r.held_at && *r.held_at != r.manifest.version()) {
    std::printf("  %s/%s held at version %llu: roll this one out with sovdev-hub rollout start\n",
                r.manifest.channel().c_str(), r.manifest.stack().c_str(),
                static_cast<unsigned long long>(*r.held_at));
  }
  if (o.broker.urls.empty()) return {};
  SOVDEV_ASSIGN(auto client, connect_broker(o.broker, "sovdev-hub-publish", Purpose::publish));
  mqtt::Message m;
  m.topic = catalog_topic(o.broker.prefix, r.catalog.channel);
  m.payload = r.catalog.envelope;
  m.retained = true;
  SOVDEV_TRY(client->publish(m));
  SOVDEV_TRY(client->disconnect());
  std::printf("  catalog published (retained) on %s\n", m.topic.c_str());
  return {};
}

struct ServeCliOptions {
  std::string db;
  std::vector<std::string> keys;
  std::string trust;
  std::string group = "sovdev-hubs";
  int64_t ttl = kDefaultCatalogTtl;
  BrokerOptions broker;
  std::string metrics_listen;  // empty: no metrics endpoint
  AgentLimitSettings limits;   // per agent (hub/limits.hpp)
  TransferSlotSettings transfers;
  DeltaCache::Limits deltas;
};

// /metrics on its own thread (the endpoint's), reading hub.db through a connection of its own:
// WAL lets it read while the serve loop writes, and SQLite connections are not shared between
// threads. The loop's figures come in through `figures`. The handler runs on that thread only:
// it touches nothing of the loop's but `figures` (locked) and logs with log_from_endpoint.
Expected<std::unique_ptr<HttpEndpoint>> start_metrics(const std::string& listen,
                                                      const std::string& db_path,
                                                      const metrics::LiveFigures& figures) {
  SOVDEV_ASSIGN(store::Database db, store::open_hub_reader(db_path));
  auto shared_db = std::make_shared<store::Database>(std::move(db));
  auto handler = [shared_db, &figures](std::string_view path) -> HttpResponse {
    if (path != "/metrics") return {404, "text/plain; charset=utf-8", "not found: try /metrics\n"};
    auto page = metrics::render(*shared_db, figures.snapshot(), {SOVDEV_VERSION});
    if (!page) {
      log_from_endpoint("error", "metrics: " + page.error().message);
      return {500, "text/plain; charset=utf-8", page.error().message + "\n"};
    }
    return {200, "text/plain; version=0.0.4; charset=utf-8", std::move(*page)};
  };
  return HttpEndpoint::start(listen, std::move(handler));
}

Status serve(const ServeCliOptions& o) {
  proc::install_stop_handlers();
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  // Declared before the endpoint that reads it: the endpoint stops first.
  metrics::LiveFigures figures;
  std::unique_ptr<HttpEndpoint> metrics_endpoint;
  if (!o.metrics_listen.empty()) {
    // Before the broker: a taken port fails the start at once, with nothing half-running.
    auto started = start_metrics(o.metrics_listen, o.db, figures);
    if (!started) return std::move(started).error().context("--metrics-listen");
    metrics_endpoint = std::move(*started);
    // Tests and scripts read the bound port from this line (port 0 picks a free one).
    spdlog::info("metrics on {}/metrics", metrics_endpoint->base_url());
  }
  ServeOptions options;
  options.prefix = o.broker.prefix;
  options.group = o.group;
  options.catalog_ttl = o.ttl;
  options.limits = o.limits;
  options.transfers = o.transfers;
  options.deltas = o.deltas;
  // The serving hub parses every agent's traffic: it holds online keys only, so that taking it
  // can delay or withhold updates but never sign content. Checked before connecting.
  SOVDEV_ASSIGN(TrustPolicy trust, load_trust_file(o.trust));
  SOVDEV_ASSIGN(options.keys, load_role_keys(o.keys, trust, TrustRole::online, "serve"));
  SOVDEV_ASSIGN(auto client, connect_broker(o.broker, "sovdev-hub", Purpose::serve));
  Server server(db, *client, options, unix_now);
  SOVDEV_TRY(server.start());
  spdlog::info("serving {} (group {}), signing as online under trust root v{}", o.db, o.group,
               trust.version());
  // Type=notify under systemd (READY, STATUS, watchdog); does nothing elsewhere.
  proc::ServiceNotifier systemd([](const std::string& w) { spdlog::warn("systemd: {}", w); });
  const std::string serving = "serving " + o.db + " (group " + o.group + ")";
  systemd.ready("connected; " + serving);
  auto last_tick = std::chrono::steady_clock::now();
  while (!proc::stop_requested()) {
    if (auto event = client->next(std::chrono::milliseconds(200))) {
      if (event->kind == mqtt::Event::Kind::connected) systemd.status("connected; " + serving);
      if (event->kind == mqtt::Event::Kind::connection_lost) {
        systemd.status("broker connection lost, reconnecting; " + serving);
      }
      // One message that cannot be handled (a busy or full database) must not stop the hub
      // serving every other agent: the agent asks again after its timeout.
      const uint64_t requests_before = server.stats().requests;
      const auto started = std::chrono::steady_clock::now();
      if (auto handled = server.handle(*event); !handled) {
        spdlog::error("handling a message failed: {}", handled.error().message);
      }
      // The server counts each fetch request it takes: that tells them from status messages.
      if (server.stats().requests != requests_before) {
        figures.observe_request(std::chrono::steady_clock::now() - started);
      }
    }
    // Deltas are made on the server's worker thread: take in what it finished, within a turn.
    server.poll();
    if (std::chrono::steady_clock::now() - last_tick >= std::chrono::seconds(1)) {
      last_tick = std::chrono::steady_clock::now();
      if (auto ticked = server.tick(); !ticked) {
        spdlog::error("catalog renewal failed: {}", ticked.error().message);
      }
    }
    figures.update(server.stats());
    systemd.tick(std::chrono::steady_clock::now());
  }
  systemd.stopping();
  const auto& s = server.stats();
  spdlog::info(
      "stopping: {} requests, {} manifests, {} chunks ({} on broadcast topics, {} asked for "
      "while on their way), {} delta chunks, {} bytes, {} rejected, {} sends failed",
      s.requests, s.manifests_sent, s.chunks_sent, s.chunks_broadcast, s.chunks_on_their_way,
      s.delta_chunks_sent, s.bytes_sent, s.rejected, s.send_failures);
  return client->disconnect();
}

}  // namespace

void add_publish(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<PublishOptions>();
  auto* cmd = app.add_subcommand(
      "publish", "Store a built bundle in hub.db and advance its channel's signed catalog");
  cmd->add_option("file", o->file, "Bundle file (.sdb)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--db", o->db, "Hub database (created if missing)")->required();
  cmd->add_option("--key", o->keys,
                  "Online secret key(s) to sign the catalog (the bundle is already signed by "
                  "its targets keys)")
      ->required();
  cmd->add_option("--trust", o->trust,
                  "Check the bundle's targets signatures and that --key holds the online role "
                  "in this trust root")
      ->check(CLI::ExistingFile);
  cmd->add_option("--catalog-ttl", o->ttl, "Seconds until the catalog expires")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{60}, int64_t{365} * 24 * 3600));
  cmd->add_flag("--hold", o->hold,
                "Keep the stack's agents on the version current before this one (held until "
                "a rollout completes or sovdev-hub rollout release)");
  add_broker_options(cmd, o->broker, false);
  commands.push_back({cmd, [o] { return publish(*o); }});
}

// What one agent may make the hub do (issue #19 §3); the defaults sit well above a full-speed
// sync. Over a limit the agent gets nothing and asks again after its timeout; /metrics counts
// it (sovdev_hub_throttled_total, sovdev_hub_refused_total).
void add_limit_options(CLI::App* cmd, AgentLimitSettings& l, DeltaCache::Limits& d) {
  cmd->add_option("--agent-request-rate", l.requests_per_second,
                  "Fetch requests a second one agent may send (bursts of 4x)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000000u))
      ->each([&l](const std::string&) { l.request_burst = l.requests_per_second * 4; });
  cmd->add_option("--agent-byte-rate", l.bytes_per_second,
                  "Chunk bytes a second served to one agent, once its burst is spent")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  cmd->add_option("--agent-byte-burst", l.byte_burst,
                  "Chunk bytes served to one agent at full speed before --agent-byte-rate holds")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  cmd->add_option("--chunk-serves", l.serves_per_chunk,
                  "Times one chunk is served to one agent within a minute")
      ->capture_default_str()
      ->check(CLI::Range(1, 255));
  cmd->add_option("--agent-new-deltas", d.new_pairs,
                  "New delta pairs one agent may have made at once; one more each 5 minutes")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000000u));
}

void add_serve(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<ServeCliOptions>();
  auto* cmd = app.add_subcommand(
      "serve", "Answer agents' fetch requests over MQTT, keep catalogs fresh, record agent status");
  cmd->add_option("--db", o->db, "Hub database")->required();
  cmd->add_option("--key", o->keys,
                  "Online secret key(s): sign catalogs and delta manifests. A targets or root "
                  "key is refused: the hub must not be able to sign content")
      ->required();
  cmd->add_option("--trust", o->trust, "The trust root agents pin; --key must be online keys of it")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--group", o->group,
                  "Shared-subscription group: replicas in one group split the load")
      ->capture_default_str();
  cmd->add_option("--catalog-ttl", o->ttl, "Seconds a catalog stays valid; renewed at half")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{60}, int64_t{365} * 24 * 3600));
  add_broker_options(cmd, o->broker, true);
  cmd->add_option("--metrics-listen", o->metrics_listen,
                  "Serve Prometheus metrics at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9469 or "
                  "[::1]:9469; port 0 picks a free one and logs it); off when not given");
  add_limit_options(cmd, o->limits, o->deltas);
  cmd->add_option("--max-transfers-per-stack", o->transfers.per_stack,
                  "Agents served a full transfer (not a delta) of one stack at once; the others "
                  "wait their turn in the order they asked (0: no bound)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 100000u));
  commands.push_back({cmd, [o] { return serve(*o); }});
}

}  // namespace sovdev::hub
