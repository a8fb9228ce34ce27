// run and sync: the agent as a daemon, and one pass of it for scripts and timers.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <deque>

#include <sqlite3.h>
#include <sys/statvfs.h>

#include <spdlog/spdlog.h>

#include "agent/apply_target.hpp"
#include "agent/commands.hpp"
#include "agent/config.hpp"
#include "agent/daemon.hpp"
#include "agent/rollout/tz_window_gate.hpp"
#include "agent/secret_keys.hpp"
#include "agent/trust_pin.hpp"
#include "bundles/messages.hpp"
#include "bundles/trust.hpp"
#include "platform/fs/files.hpp"
#include "platform/proc/sd_notify.hpp"
#include "platform/proc/signals.hpp"

namespace sovdev::agent {
namespace {

// Windows that were checked at load but no longer parse (tzdata changed under the agent): no
// change of version rather than none of the site's deny windows.
class ClosedGate final : public rollout::WindowGate {
 public:
  rollout::WindowVerdict at(int64_t, const std::vector<pb::MaintenanceWindow>&) const override {
    return {false, 0};
  }
};

struct RunOptions {
  std::string config;
  bool once = false;
  int64_t timeout_s = 600;
};

// The longest the loop sleeps without a deadline asking for it: bounds what a step of the wall
// clock (the daemon's deadlines are wall-clock times) can delay.
constexpr int64_t kMaxWaitMs = 600000;
// After an error the loop keeps running through (a full disk), the daemon's next tick waits
// this long: a failing step is not retried in a busy loop.
constexpr int64_t kErrorPauseMs = 5000;
// Events held while an apply runs: connection events and the newest message per topic (a
// catalog); data answers are dropped (no fetch runs during an apply, so they are stale).
constexpr size_t kHeldTopics = 64;

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Expected<mqtt::Options> client_options(const AgentConfig& c) {
  mqtt::Options o;
  o.servers = c.broker.urls;
  o.client_id = "sovdev-agent-" + c.agent_id;
  o.username = c.broker.username.empty() ? c.agent_id : c.broker.username;
  if (!c.broker.password_file.empty()) {
    SOVDEV_ASSIGN(std::string password, fs::read_file(c.broker.password_file, 4096));
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r'))
      password.pop_back();
    o.password = std::move(password);
  }
  o.tls = {c.broker.ca_file, c.broker.cert_file, c.broker.key_file};
  o.keepalive = c.broker.keepalive;
  // Chunks in flight plus catalogs: nothing more needs to wait between Paho's thread and ours.
  o.queue_capacity = c.sync.window * 2 + 16;
  o.max_pending_publishes = c.sync.window + 8;
  // Each topic the agent hears carries one kind of message with its own cap (the parser's):
  // anything larger is thrown away on arrival and counted (AgentStatus.oversize_messages),
  // before it is copied or queued, so a flood of big messages on a catalog topic cannot take
  // the queue's room from the chunks of a fetch. Catalogs are signed envelopes of at most
  // kMaxCatalogBytes; answers and broadcast chunks are FetchResponses, a chunk or a manifest
  // with its framing (kMaxFetchResponseBytes).
  const std::string& prefix = c.broker.topic_prefix;
  o.topic_limits = {{prefix + "/catalog/+", kMaxCatalogBytes},
                    {prefix + "/agent/" + c.agent_id + "/data", kMaxFetchResponseBytes},
                    {prefix + "/blob/+", kMaxFetchResponseBytes}};
  pb::AgentStatus offline;
  offline.set_schema(1);
  offline.set_agent_id(c.agent_id);
  offline.set_channel(c.channels.empty() ? "" : c.channels.front());
  offline.set_state("offline");
  // The hub counts a wave's agents by their reported labels: an agent gone offline still counts.
  for (const auto& [key, value] : c.labels) (*offline.mutable_labels())[key] = value;
  offline.set_updated_at(static_cast<int64_t>(std::time(nullptr)));
  mqtt::Message will;
  will.topic = c.broker.topic_prefix + "/status/" + c.agent_id;
  will.payload = offline.SerializeAsString();
  will.retained = true;
  o.will = will;
  return o;
}

DaemonSettings daemon_settings(const AgentConfig& c) {
  DaemonSettings s;
  s.fetch.agent_id = c.agent_id;
  s.fetch.prefix = c.broker.topic_prefix;
  s.fetch.window = c.sync.window;
  s.fetch.request_timeout_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(c.sync.request_timeout).count();
  s.fetch.backoff_min_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(c.sync.backoff_min).count();
  s.fetch.backoff_max_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(c.sync.backoff_max).count();
  s.fetch.install = {c.channels.size() == 1 ? c.channels.front() : std::string(), c.arch};
  s.fetch.work_dir = c.state_dir + "/work";
  s.fetch.state_dir = c.state_dir;
  s.channels = c.channels;
  s.stacks = c.stacks;
  s.reconcile_interval_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(c.apply.reconcile_interval).count();
  s.status_interval_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(c.sync.status_interval).count();
  s.agent_version = cli::version_line("sovdev-agent");
  s.target_kind = std::string(target::target_kind_name(c.apply.target.kind));
  s.labels = c.labels;
  s.prefetch = c.rollouts.prefetch;
  s.images.quota = c.images.quota;
  // The maintenance windows (agent/rollout/tz_window_gate.hpp): the config's, checked by
  // load_config already, and the catalog's for this agent. Always set, since the catalog may
  // bring windows to an agent with none of its own.
  if (auto gate = rollout::TzWindowGate::make(c.windows); gate) {
    s.window_gate = std::move(*gate);
  } else {
    spdlog::error("maintenance windows: {}; versions wait until the config is fixed",
                  gate.error().message);
    s.window_gate = std::make_shared<const ClosedGate>();
  }
  return s;
}

// The cache on a disk with no room left. SQLite's WAL mode keeps its index in a shared-memory
// file beside the database, which it must grow before the first read; on a full disk that
// fails and the cache does not even open, and the agent would exit at every restart (a crash
// loop under systemd, the site's stack unwatched). Then the cache is opened again with the
// index in the process's own memory (the unix-excl VFS: other processes cannot read the cache
// while this one runs): reads work, writes fail with "disk full" and are reported, and the
// agent runs from its cache until there is room and it restarts.
Expected<store::Database> open_cache(const std::string& state_dir) {
  auto db = open_state(state_dir, true);
  if (db || (db.error().code != Errc::io && db.error().code != Errc::store)) return db;
  struct statvfs fs {};
  const bool full =
      ::statvfs(state_dir.c_str(), &fs) == 0 && uint64_t{fs.f_bavail} * fs.f_frsize < 1024 * 1024;
  sqlite3_vfs* exclusive = sqlite3_vfs_find("unix-excl");
  if (!full || exclusive == nullptr) return db;
  spdlog::error(
      "{}; the disk of {} is full: running from the cache, which no other process "
      "can read until there is room and the agent restarts",
      db.error().message, state_dir);
  sqlite3_vfs_register(exclusive, 1);
  return open_state(state_dir, true);
}

// What arrives while an apply holds the loop: taken off the client's bounded queue (so a
// burst cannot push a catalog out of it) and handed to the daemon once the apply is over.
class HeldEvents {
 public:
  explicit HeldEvents(std::string data_topic) : data_topic_(std::move(data_topic)) {}
  void hold(mqtt::Event event) {
    if (event.kind == mqtt::Event::Kind::message) {
      if (event.message.topic == data_topic_) return;
      for (auto& e : events_) {
        if (e.kind == mqtt::Event::Kind::message && e.message.topic == event.message.topic) {
          e = std::move(event);  // the newest retained catalog is the one that counts
          return;
        }
      }
      if (events_.size() >= kHeldTopics) return;
    }
    events_.push_back(std::move(event));
  }
  std::optional<mqtt::Event> take() {
    if (events_.empty()) return std::nullopt;
    mqtt::Event e = std::move(events_.front());
    events_.pop_front();
    return e;
  }

 private:
  std::string data_topic_;
  std::deque<mqtt::Event> events_;
};

// The line `systemctl status` shows: the link, then what the state machine is doing.
std::string service_status(bool connected, const Daemon& daemon) {
  const auto& s = daemon.status();
  std::string line = connected ? "connected" : "broker not reachable, running from the cache";
  line += "; " + s.state();
  if (!s.stack().empty()) line += ", " + s.stack() + " v" + std::to_string(s.applied_version());
  return line;
}

Status run(const RunOptions& o) {
  proc::install_stop_handlers();
  SOVDEV_ASSIGN(AgentConfig config, load_config(o.config));
  SOVDEV_ASSIGN(store::Database db,
                o.once ? open_state(config.state_dir, true) : open_cache(config.state_dir));
  SOVDEV_ASSIGN(TrustPolicy trust, pinned_trust(db, config.trust_root));
  SOVDEV_ASSIGN(auto target, make_apply_target(db, config.apply));
  SOVDEV_ASSIGN(mqtt::Options options, client_options(config));
  auto client = mqtt::make_paho_client(options);
  auto connected = client->connect();
  bool online = static_cast<bool>(connected);
  if (!connected) {
    // The cache keeps the site running; the client goes on trying in the background.
    spdlog::warn("broker not reachable yet: {}", connected.error().message);
    if (o.once) return std::move(connected).error().context("sync");
  }
  // The X25519 key that opens the sealed epoch keys of bundles with secrets. A key file others
  // may read is not used (and said so) rather than stopping the site's sync: bundles without
  // secrets go on, those with secrets stop with that reason.
  DaemonSettings settings = daemon_settings(config);
  if (auto loaded = shared_agent_key(config.state_dir); !loaded) {
    spdlog::error("{}; bundles with sealed secrets cannot be applied", loaded.error().message);
  } else {
    settings.agent_key = std::move(*loaded);
  }
  Daemon daemon(db, trust, *client, *target, settings);
  // A daemon keeps running through what its steps cannot do (a full disk): it reports it and
  // tries again; only `sync --once` stops at the first error.
  int64_t next_tick = now_ms();
  const auto survive = [&](Status step) -> Status {
    if (step || o.once) return step;
    daemon.note_error(step.error(), now_ms());
    next_tick = now_ms() + kErrorPauseMs;
    return {};
  };
  SOVDEV_TRY(survive(daemon.start(now_ms())));
  // Type=notify under systemd (READY, STATUS, watchdog); does nothing elsewhere.
  proc::ServiceNotifier systemd([](const std::string& w) { spdlog::warn("systemd: {}", w); });
  systemd.ready(service_status(online, daemon));
  const auto track_link = [&online](const mqtt::Event& e) {
    if (e.kind == mqtt::Event::Kind::connected) online = true;
    if (e.kind == mqtt::Event::Kind::connection_lost) online = false;
  };
  // While an apply waits (a command, a health gate), the target beats: the watchdog is fed,
  // the status goes out when due, and events are held for the loop (see daemon.hpp).
  HeldEvents held(settings.fetch.prefix + "/agent/" + settings.fetch.agent_id + "/data");
  auto last_beat = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  daemon.set_heartbeat([&] {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_beat < std::chrono::milliseconds(100)) return;  // per object: cheap
    last_beat = now;
    while (auto event = client->next(std::chrono::milliseconds(0))) {
      track_link(*event);
      held.hold(std::move(*event));
    }
    daemon.heartbeat(now_ms());
    systemd.status(service_status(online, daemon));
    systemd.tick(now);
  });
  const int64_t deadline = now_ms() + o.timeout_s * 1000;
  // The loop sleeps until an event or the nearest deadline (the daemon's next tick, the
  // watchdog, --timeout): an idle agent wakes for its status, its reconcile, systemd and a look
  // at the client's drop counters every 10 s (Daemon::check_losses), and nothing else. A clock
  // step only moves a wake-up; the next turn recomputes it.
  while (!proc::stop_requested()) {
    int64_t now = now_ms();
    int64_t wake = o.once ? std::min(next_tick, deadline) : next_tick;
    if (const auto due = systemd.next_due()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *due - std::chrono::steady_clock::now());
      wake = std::min(wake, now + left.count());
    }
    const auto wait = std::chrono::milliseconds(std::clamp<int64_t>(wake - now, 0, kMaxWaitMs));
    // What an apply held comes first, in order, before anything newer.
    auto event = held.take();
    if (!event) event = client->next(wait);
    if (event) {
      track_link(*event);
      SOVDEV_TRY(survive(daemon.handle(*event, now_ms())));
      // What is queued already joins the same commit: one commit per burst, not per chunk.
      for (uint32_t i = 1; i < config.sync.window; i++) {
        auto more = held.take();
        if (!more) more = client->next(std::chrono::milliseconds(0));
        if (!more) break;
        track_link(*more);
        SOVDEV_TRY(survive(daemon.handle(*more, now_ms())));
      }
      SOVDEV_TRY(survive(daemon.flush(now_ms())));
      // An event can start a fetch or leave a rejection to report: their timers come sooner.
      next_tick = std::min(next_tick, daemon.next_tick_ms(now_ms()));
    }
    now = now_ms();
    if (now >= next_tick) {
      next_tick = now + kErrorPauseMs;  // unless the tick succeeds and says otherwise
      auto ticked = daemon.tick(now);
      if (ticked) next_tick = daemon.next_tick_ms(now_ms());
      SOVDEV_TRY(survive(std::move(ticked)));
    }
    systemd.status(service_status(online, daemon));
    systemd.tick(std::chrono::steady_clock::now());
    if (!o.once) continue;
    if (daemon.settled()) {
      if (auto unmet = daemon.unmet()) return *unmet;
      break;
    }
    if (daemon.failure()) return *daemon.failure();
    if (now >= deadline) {
      return make_error(Errc::unavailable, "not up to date after " + std::to_string(o.timeout_s) +
                                               " s (no catalog, or the hub is not answering)");
    }
  }
  systemd.stopping();
  const auto& c = daemon.counters();
  std::printf("%s: %s, stack %s v%llu, %llu bytes received, %llu rejected messages\n",
              config.agent_id.c_str(), daemon.status().state().c_str(),
              daemon.status().stack().c_str(),
              static_cast<unsigned long long>(daemon.status().applied_version()),
              static_cast<unsigned long long>(c.bytes_received),
              static_cast<unsigned long long>(daemon.rejected()));
  return client->disconnect();
}

}  // namespace

void add_run(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<RunOptions>();
  auto* cmd =
      app.add_subcommand("run", "Run the agent: follow the catalogs, fetch, verify, apply, report");
  cmd->add_option("--config", o->config, "Agent configuration file (TOML)")
      ->required()
      ->check(CLI::ExistingFile);
  commands.push_back({cmd, [o] { return run(*o); }});

  auto s = std::make_shared<RunOptions>();
  s->once = true;
  auto* sync = app.add_subcommand(
      "sync",
      "Fetch and apply what is due, then exit. Exit codes: 0 = up to date (every channel's "
      "catalog seen, every version it lists applied, the last reconcile clean); 13 = broker, "
      "hub or API server not reachable, or not up to date within --timeout; 15 = an apply, "
      "rollback or reconcile failed, or a catalog lists a version that failed here (see "
      "`sovdev-agent retry`); 3 = disk full or state not writable; 4 = bad config; 5 = a "
      "signature does not verify");
  sync->add_option("--config", s->config, "Agent configuration file (TOML)")
      ->required()
      ->check(CLI::ExistingFile);
  sync->add_flag("--once", s->once, "Exit when up to date (the only mode; kept for clarity)");
  sync->add_option("--timeout", s->timeout_s, "Give up after this many seconds")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{86400}));
  commands.push_back({sync, [s] { return run(*s); }});
}

}  // namespace sovdev::agent
