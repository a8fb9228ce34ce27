#include "tests/sync/sealed_fleet.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <random>

namespace sovdev::testing {

BrokerOptions broker_users(const std::vector<std::string>& agents) {
  BrokerOptions options;
  options.users = {{"sovdev-hub", "hub-secret"}};
  for (const auto& agent : agents) options.users.push_back({agent, "secret-" + agent});
  return options;
}

std::string unique_value(const std::string& prefix) {
  std::random_device rd;
  std::string out = prefix;
  for (int i = 0; i < 16; ++i) out += "0123456789abcdef"[rd() % 16];
  return out;
}

SealedHub::SealedHub(const Fleet& f) : fleet(f), store_key(f.ws.dir / "secret-store.key") {
  ok(run({hub_binary(), "secret", "init", "--store-key", store_key}), "secret init");
}

std::string SealedHub::ok(const RunResult& r, const std::string& what) const {
  said += r.out + r.err;
  INFO(what << ": " << r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

void SealedHub::set(const std::string& name, const std::string& key,
                    const std::string& value) const {
  ok(run_with_input({hub_binary(), "secret", "set", "--db", fleet.hub_db, "--store-key", store_key,
                     "--env", "edge", name, key},
                    value + "\n"),
     "secret set");
}

void SealedHub::keygen(const std::string& agent, bool force) const {
  std::vector<std::string> argv = {agent_binary(), "keygen", "--state", fleet.agent_state(agent)};
  if (force) argv.push_back("--force");
  ok(run(argv), "keygen " + agent);
}

std::string SealedHub::add(const std::string& agent) const {
  return ok(run({hub_binary(), "agents", "add", agent, "--db", fleet.hub_db, "--store-key",
                 store_key, "--pub", fleet.agent_state(agent) + "/agent.pub", "--channel", "edge"}),
            "agents add " + agent);
}

std::string SealedHub::remove(const std::string& agent) const {
  return ok(run({hub_binary(), "agents", "remove", agent, "--db", fleet.hub_db, "--store-key",
                 store_key}),
            "agents remove " + agent);
}

std::string SealedHub::rotate(const std::string& agent) const {
  return ok(run({hub_binary(), "agents", "rotate", agent, "--db", fleet.hub_db, "--store-key",
                 store_key, "--pub", fleet.agent_state(agent) + "/agent.pub"}),
            "agents rotate " + agent);
}

std::string SealedHub::build(const std::string& source, const std::string& name,
                             uint64_t version) const {
  const std::string file = fleet.ws.dir / (name + ".sdb");
  auto built = fleet.ws.build(
      source, file, version,
      {"--level", "3", "--secrets-env", "edge", "--db", fleet.hub_db, "--store-key", store_key});
  ok(built, "build " + name);
  return file;
}

std::string SealedHub::build_and_publish(const std::string& source, uint64_t version,
                                         bool live) const {
  const std::string file = build(source, "v" + std::to_string(version), version);
  ok(live ? fleet.publish_live(file) : fleet.publish(file), "publish v" + std::to_string(version));
  return file;
}

void write_secret_source(const std::string& dir, const std::string& marker) {
  write_manifest(dir + "/app.yaml",
                 "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n---\n"
                 "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: app\n"
                 "type: Opaque\nstringData:\n  password: ${secret:db/password}\n---\n"
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
                 "  namespace: app\ndata:\n  marker: " +
                     marker + "\n");
}

std::multimap<std::string, nlohmann::json> target_objects(const std::string& dir) {
  std::multimap<std::string, nlohmann::json> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string()[0] == '.' || e.path().extension() != ".json") continue;
    const std::string text = read_text(e.path().string());
    if (text.empty()) continue;  // a pruned object's file, kept empty for k3s
    auto object = nlohmann::json::parse(text);
    object["$file"] = e.path().string();
    out.emplace(object.value("kind", ""), std::move(object));
  }
  return out;
}

std::string target_secret_file(const std::string& dir) {
  for (const auto& [kind, object] : target_objects(dir)) {
    if (kind == "Secret" && object["metadata"].value("name", "") == "db") {
      return object["$file"].get<std::string>();
    }
  }
  return "";
}

nlohmann::json hub_agent_status(const Fleet& fleet, const std::string& agent) {
  auto st = run({hub_binary(), "status", "--db", fleet.hub_db, "--json"});
  auto all = nlohmann::json::parse(st.out, nullptr, false);
  if (!all.is_object() || !all["agents"].is_array()) return nlohmann::json::object();
  for (const auto& a : all["agents"]) {
    if (a.value("agent", "") == agent) return a;
  }
  return nlohmann::json::object();
}

nlohmann::json agent_local_status(const Fleet& fleet, const std::string& agent) {
  auto st = run({agent_binary(), "status", "--state", fleet.agent_state(agent), "--json"});
  INFO(st.err);
  REQUIRE(st.exit_code == 0);
  return nlohmann::json::parse(st.out);
}

uint64_t last_good_version(const Fleet& fleet, const std::string& agent) {
  const nlohmann::json st = agent_local_status(fleet, agent);
  if (!st["stacks"].contains("kp") || st["stacks"]["kp"]["last_good"].is_null()) return 0;
  return st["stacks"]["kp"]["last_good"]["version"].get<uint64_t>();
}

std::vector<std::string> leak_forms(const std::string& value) {
  std::string b64(sodium_base64_encoded_len(value.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(value.data()),
                    value.size(), sodium_base64_VARIANT_ORIGINAL);
  b64.pop_back();  // the NUL
  return {value, b64};
}

}  // namespace sovdev::testing
