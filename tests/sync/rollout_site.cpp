#include "tests/sync/rollout_site.hpp"

#include <filesystem>
#include <sstream>
#include <stdexcept>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "agent/commands.hpp"
#include "agent/import.hpp"
#include "agent/secret_keys.hpp"
#include "bundles/sign_objects.hpp"
#include "platform/mqtt/offline_client.hpp"
#include "platform/store/agent_cache.hpp"
#include "platform/target/dir.hpp"
#include "platform/target/exec.hpp"
#include "tests/sync/bundle_digest.hpp"
#include "tests/sync/sealed_site.hpp"

namespace sovdev::testing {
namespace {

template <class T>
T site_must(Expected<T> e, const char* what) {
  if (!e) throw std::runtime_error(std::string(what) + ": " + e.error().message);
  return std::move(*e);
}

void site_must(Status s, const char* what) {
  if (!s) throw std::runtime_error(std::string(what) + ": " + s.error().message);
}

}  // namespace

agent::rollout::WindowVerdict FakeGate::at(
    int64_t now, const std::vector<pb::MaintenanceWindow>& windows) const {
  ++asked_;
  last_windows_ = windows;
  if (now >= opens_at_) return {true, 0};
  return {false, opens_at_};
}

RolloutSite::RolloutSite(SiteOptions options)
    : state(ws.dir / "state"),
      applied(ws.dir / "applied"),
      log_(std::make_shared<std::ostringstream>()) {
  std::filesystem::create_directories(state + "/work");
  std::filesystem::create_directories(applied);
  db = std::make_unique<store::Database>(site_must(agent::open_state(state, true), "agent cache"));
  trust = std::make_unique<TrustPolicy>(
      site_must(TrustPolicy::from_initial(read_text(ws.trust)), "trust root"));
  offline = mqtt::make_offline_client();
  previous_logger_ = spdlog::default_logger();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*log_);
  auto logger = std::make_shared<spdlog::logger>("rollout-site", sink);
  logger->set_level(spdlog::level::debug);
  spdlog::set_default_logger(logger);
  restart(std::move(options));
}

RolloutSite::~RolloutSite() {
  daemon.reset();
  spdlog::set_default_logger(previous_logger_);
}

void RolloutSite::restart(SiteOptions options) {
  daemon.reset();
  options_ = std::move(options);
  target::DirOptions dir;
  dir.prune_grace = std::chrono::seconds(0);
  agent::DaemonSettings s;
  s.target_kind = "dir";
  if (options_.exec_command.empty()) {
    target = target::make_dir_target(applied, dir);
  } else {
    target = site_must(target::make_exec_target(options_.exec_command), "exec target");
    s.target_kind = "exec";
  }
  s.fetch.agent_id = options_.agent_id;
  s.fetch.install = {"edge", "amd64"};
  s.fetch.work_dir = state + "/work";
  s.fetch.state_dir = state;
  s.fetch.backoff_min_ms = 1000;
  s.fetch.backoff_max_ms = 4000;
  s.channels = {"edge"};
  s.reconcile_interval_ms = options_.reconcile_ms;
  s.trim_heap_when_idle = false;
  s.labels = options_.labels;
  s.prefetch = options_.prefetch;
  s.window_gate = options_.gate;
  daemon = std::make_unique<agent::Daemon>(*db, *trust, *offline, *target, s);
  site_must(daemon->start(now_ms), "start");
}

std::string RolloutSite::add_version(uint64_t version) {
  const std::string file = write_sealed_bundle(
      ws, "v" + std::to_string(version) + ".sdb", version,
      {{config_map_object("app", "settings", "v" + std::to_string(version)), {}}}, SealPlan{});
  (void)site_must(agent::import_bundle(file, *trust, *db, {{"edge"}, ""}), "import");
  digests_[version] = bundle_digest(file, ws.trust);
  return digests_[version];
}

pb::CatalogEntry RolloutSite::entry(uint64_t version) const {
  pb::CatalogEntry e;
  e.set_stack("kp");
  e.set_version(version);
  e.set_manifest_digest(digests_.at(version));
  e.add_arch("amd64");
  e.add_arch("arm64");
  return e;
}

pb::CatalogRollout RolloutSite::rollout(uint64_t id, uint64_t version,
                                        const std::vector<std::string>& waves,
                                        pb::CatalogRollout::State state_) const {
  pb::CatalogRollout r;
  r.set_id(id);
  r.set_version(version);
  // A version not imported: a digest the hub would have to send.
  r.set_manifest_digest(digests_.count(version) ? digests_.at(version) : std::string(32, '\x42'));
  r.add_arch("amd64");
  for (const auto& w : waves) *r.add_admitted() = site_must(sovdev::rollout::parse_wave(w), "wave");
  r.set_state(state_);
  return r;
}

pb::Catalog RolloutSite::catalog(std::vector<pb::CatalogEntry> entries) {
  pb::Catalog c;
  c.set_schema(1);
  c.set_channel("edge");
  c.set_serial(++serial_);
  c.set_issued_at(now_ms / 1000);
  c.set_expires_at(now_ms / 1000 + 86400);
  for (auto& e : entries) *c.add_entries() = std::move(e);
  return c;
}

void RolloutSite::receive(const pb::Catalog& c, const std::vector<SecretKey>& keys) {
  std::vector<SecretKey> signers = keys;
  if (signers.empty()) {
    signers.push_back(site_must(parse_secret_key(read_text(ws.online_key())), "online key"));
  }
  mqtt::Event event;
  event.message.topic = "sovdev/v1/catalog/edge";
  event.message.payload = sign_catalog(c, signers);
  site_must(daemon->handle(event, now_ms), "handle catalog");
  site_must(daemon->flush(now_ms), "flush");
}

std::string RolloutSite::revocations(uint64_t serial, const std::vector<uint64_t>& versions) const {
  pb::RevocationList list;
  list.set_schema(1);
  list.set_channel("edge");
  list.set_serial(serial);
  list.set_issued_at(now_ms / 1000);
  for (const uint64_t v : versions) {
    auto* r = list.add_revoked();
    r->set_stack("kp");
    r->set_version(v);
    r->set_manifest_digest(digests_.at(v));
    r->set_reason("test");
  }
  return sign_revocations(list,
                          {site_must(parse_secret_key(read_text(ws.key("pub1"))), "targets")});
}

void RolloutSite::tick_at(int64_t ms) {
  now_ms = ms;
  site_must(daemon->tick(now_ms), "tick");
}

std::optional<uint64_t> RolloutSite::last_good() {
  auto good = site_must(store::ApplyLog(*db).last_good("kp"), "last good");
  if (!good) return std::nullopt;
  return good->version;
}

uint64_t RolloutSite::on_target() const {
  for (const auto& e : std::filesystem::directory_iterator(applied)) {
    const std::string name = e.path().filename().string();
    if (name.find("configmap.app.settings") == std::string::npos) continue;
    const std::string text = read_text(e.path().string());
    if (text.empty()) continue;
    const std::string value = nlohmann::json::parse(text)["data"]["value"].get<std::string>();
    return std::stoull(value.substr(1));
  }
  return 0;
}

void RolloutSite::drift() const {
  for (const auto& e : std::filesystem::directory_iterator(applied)) {
    if (e.path().filename().string().find("configmap.app.settings") != std::string::npos) {
      std::filesystem::remove(e.path());
    }
  }
}

std::string RolloutSite::log() const {
  spdlog::default_logger()->flush();
  return log_->str();
}

}  // namespace sovdev::testing
