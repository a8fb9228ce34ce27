#include "tests/sync/sealed_site.hpp"

#include <sodium.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <stdexcept>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "agent/commands.hpp"
#include "agent/import.hpp"
#include "agent/sealed_apply.hpp"
#include "agent/secret_keys.hpp"
#include "bundles/bundle_file.hpp"
#include "bundles/payload.hpp"
#include "bundles/sealed_record.hpp"
#include "bundles/sign_objects.hpp"
#include "platform/mqtt/offline_client.hpp"
#include "platform/store/agent_cache.hpp"
#include "platform/store/epoch_keys.hpp"
#include "platform/store/failed_bundles.hpp"

namespace sovdev::testing {
namespace {

template <class T>
T must(Expected<T> e, const char* what) {
  if (!e) throw std::runtime_error(std::string(what) + ": " + e.error().message);
  return std::move(*e);
}

void must(Status s, const char* what) {
  if (!s) throw std::runtime_error(std::string(what) + ": " + s.error().message);
}

pb::ResourceRecord record_of(const nlohmann::json& o) {
  pb::ResourceRecord r;
  r.set_api_version(o["apiVersion"].get<std::string>());
  r.set_kind(o["kind"].get<std::string>());
  r.set_namespace_(o["metadata"].value("namespace", ""));
  r.set_name(o["metadata"]["name"].get<std::string>());
  r.set_source("test:" + r.name());
  return r;
}

}  // namespace

nlohmann::json secret_object(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"type", "Opaque"}};
}

nlohmann::json config_map_object(const std::string& ns, const std::string& name,
                                 const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"data", {{"value", value}}}};
}

std::string write_sealed_bundle(const Workspace& ws, const std::string& name, uint64_t version,
                                const std::vector<TestObject>& objects, const SealPlan& plan) {
  const SecretKey signer = must(parse_secret_key(read_text(ws.key("pub1"))), "targets key");
  const sealed::Place place{"kp", version, "edge", plan.epoch};
  const seal::SecretBytes* sealing = plan.sealing ? plan.sealing : plan.named;
  PayloadWriter::Options options;
  options.level = 3;
  std::string payload;
  auto writer = must(PayloadWriter::create(options,
                                           [&](std::string_view b) -> Status {
                                             payload.append(b);
                                             return {};
                                           }),
                     "payload writer");
  uint32_t sealed_count = 0;
  for (const auto& o : objects) {
    nlohmann::json object = o.object;
    pb::ResourceRecord r = record_of(object);
    if (!o.sealed.empty()) {
      std::map<std::string, seal::SecretBytes> values;
      for (const auto& [key, value] : o.sealed) {
        object["data"][key] = "";
        values.emplace(key, seal::SecretBytes::copy_of(value));
      }
      r.set_json(object.dump());
      sealed::seal_record(r, sealed::data_object(values), *sealing, place);
      if (plan.tamper && sealed_count == 0) {
        std::string blob = r.sealed();
        blob[blob.size() / 2] = static_cast<char>(blob[blob.size() / 2] ^ 0x01);
        r.set_sealed(blob);
      }
      ++sealed_count;
    } else {
      r.set_json(object.dump());
    }
    must(writer.add(r), "add record");
  }
  const PayloadSummary summary = must(writer.finish(), "finish payload");
  BundleInfo info{"kp", "edge", version, {"amd64", "arm64"}, "test", "", 0};
  pb::BundleManifest m = make_manifest(info, summary, options);
  // A manifest declaring no sealed objects names no epoch either (its shape rules say so).
  const bool declares = static_cast<int32_t>(sealed_count) + plan.declared_off_by > 0;
  if (plan.named && declares) {
    m.set_secrets_channel("edge");
    m.set_secrets_epoch(plan.epoch);
    m.set_secrets_key_id(seal::epoch_key_id("edge", plan.epoch, *plan.named));
  }
  m.set_sealed_objects(
      static_cast<uint32_t>(static_cast<int32_t>(sealed_count) + plan.declared_off_by));
  const SignedManifest signed_manifest = sign_manifest(m, {signer});
  const std::string path = ws.dir / name;
  write_text(path, encode_bundle_header(static_cast<uint32_t>(signed_manifest.envelope.size())) +
                       signed_manifest.envelope + payload);
  return path;
}

SealedSite::SealedSite()
    : state(ws.dir / "state"),
      agent(seal::generate_agent_key("site-a")),
      log_(std::make_shared<std::ostringstream>()) {
  std::filesystem::create_directories(state + "/work");
  const std::string key_file = agent::agent_key_path(state);
  write_text(key_file, seal::encode_agent_secret(agent));
  ::chmod(key_file.c_str(), 0600);
  db = std::make_unique<store::Database>(must(agent::open_state(state, true), "agent cache"));
  trust = std::make_unique<TrustPolicy>(
      must(TrustPolicy::from_initial(read_text(ws.trust)), "trust root"));
  offline = mqtt::make_offline_client();
  previous_logger_ = spdlog::default_logger();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*log_);
  auto logger = std::make_shared<spdlog::logger>("sealed-site", sink);
  logger->set_level(spdlog::level::debug);
  spdlog::set_default_logger(logger);
}

SealedSite::~SealedSite() {
  daemon.reset();
  spdlog::set_default_logger(previous_logger_);
}

void SealedSite::use(std::unique_ptr<target::Target> t, const std::string& kind,
                     int64_t reconcile_ms) {
  daemon.reset();
  target = std::move(t);
  agent::DaemonSettings settings;
  settings.target_kind = kind;
  settings.fetch.agent_id = "site-a";
  settings.fetch.install = {"edge", ""};
  settings.fetch.work_dir = state + "/work";
  settings.fetch.backoff_min_ms = 1000;
  settings.fetch.backoff_max_ms = 4000;
  settings.channels = {"edge"};
  settings.reconcile_interval_ms = reconcile_ms;
  settings.trim_heap_when_idle = false;
  settings.agent_key = must(agent::shared_agent_key(state), "agent key");
  daemon = std::make_unique<agent::Daemon>(*db, *trust, *offline, *target, settings);
}

void SealedSite::import(const std::string& bundle) {
  (void)must(agent::import_bundle(bundle, *trust, *db, {{"edge"}, ""}), "import");
}

void SealedSite::give_key(uint64_t epoch, const seal::SecretBytes& key, const seal::AgentKey* to) {
  const seal::AgentKey& whom = to ? *to : agent;
  must(store::EpochKeyCache(*db).put("edge", epoch, seal::seal_to(whom.public_key, key), 1),
       "cache epoch key");
}

void SealedSite::apply_cached() {
  must(daemon->apply_cached(now_ms), "apply_cached");
}

void SealedSite::tick_after(int64_t ms) {
  now_ms += ms;
  must(daemon->tick(now_ms), "tick");
}

std::optional<uint64_t> SealedSite::last_good() {
  auto good = must(store::ApplyLog(*db).last_good("kp"), "last good");
  if (!good) return std::nullopt;
  return good->version;
}

bool SealedSite::failed_recorded(uint64_t version) {
  auto stmt = must(db->prepare("SELECT count(*) FROM failed_bundles WHERE version = ?"), "query");
  must(stmt.bind_all(version), "bind");
  (void)must(stmt.step(), "step");
  return stmt.text(0) != "0";
}

std::string SealedSite::everything_kept_or_said() {
  std::string out;
  std::vector<std::string> tables;
  {
    auto list = must(db->prepare("SELECT name FROM sqlite_master WHERE type = 'table'"), "tables");
    while (must(list.step(), "step")) tables.push_back(list.text(0));
  }
  for (const auto& table : tables) {
    auto rows = must(db->prepare("SELECT * FROM \"" + table + "\""), "rows");
    sqlite3_stmt* s = rows.handle();
    while (must(rows.step(), "step")) {
      for (int c = 0; c < sqlite3_column_count(s); ++c) out += rows.blob(c) + "\n";
    }
  }
  out += read_database_files(state + "/agent.db");
  for (const auto& e : std::filesystem::recursive_directory_iterator(state)) {
    if (e.is_regular_file()) out += read_text(e.path().string());
  }
  if (daemon) out += daemon->status().SerializeAsString();
  spdlog::default_logger()->flush();
  out += log_->str();
  return out;
}

std::string base64_of(const std::string& value) {
  std::string out(sodium_base64_encoded_len(value.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(value.data()),
                    value.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);
  return out;
}

std::vector<std::string> forms_of(const std::string& value) {
  return {value, base64_of(value)};
}

}  // namespace sovdev::testing
