// `sovdev-hub agents`: the agents enrolled for secrets and their channels' epochs
// (docs/design-secrets.md).
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/hex.hpp"
#include "common/text.hpp"
#include "hub/commands.hpp"
#include "hub/secrets/fleet_keys.hpp"
#include "platform/fs/files.hpp"
#include "platform/store/hub_store.hpp"

namespace sovdev::hub {
namespace {

using secrets::FleetKeys;

struct AgentsOptions {
  std::string db, store_key, agent_id, pub, channel;
  std::vector<std::string> labels;
  bool as_json = false;
};

Expected<std::string> read_public(const std::string& path) {
  SOVDEV_ASSIGN(const std::string text, fs::read_file(path, 1024));
  auto key = seal::parse_agent_public(text);
  if (!key) return std::move(key).error().context(path);
  return key->public_key;
}

Expected<std::map<std::string, std::string>> parse_labels(const std::vector<std::string>& given) {
  std::map<std::string, std::string> out;
  for (const auto& label : given) {
    const auto eq = label.find('=');
    if (eq == 0 || eq == std::string::npos || label.size() > 256) {
      return make_error(Errc::usage, "a label is key=value: " + label);
    }
    out[label.substr(0, eq)] = label.substr(eq + 1);
  }
  return out;
}

// Runs `change` with the hub database and the store key open.
template <class F>
Status with_keys(const AgentsOptions& o, F change) {
  SOVDEV_ASSIGN(const std::string path, secrets::store_key_path(o.store_key));
  SOVDEV_ASSIGN(const secrets::StoreKey key, secrets::load_store_key(path));
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  FleetKeys keys(db, key);
  return change(keys);
}

Status add(const AgentsOptions& o) {
  SOVDEV_ASSIGN(const std::string pub, read_public(o.pub));
  SOVDEV_ASSIGN(auto labels, parse_labels(o.labels));
  return with_keys(o, [&](FleetKeys& keys) -> Status {
    secrets::EnrolledAgent agent{o.agent_id, o.channel, pub, std::move(labels), 0, {}};
    SOVDEV_ASSIGN(const uint64_t epoch, keys.add(agent, std::time(nullptr)));
    std::printf("enrolled %s in channel %s (key %s): granted epoch %llu\n", o.agent_id.c_str(),
                o.channel.c_str(), to_hex(pub).substr(0, 16).c_str(),
                static_cast<unsigned long long>(epoch));
    return {};
  });
}

Status remove(const AgentsOptions& o) {
  return with_keys(o, [&](FleetKeys& keys) -> Status {
    SOVDEV_ASSIGN(const uint64_t epoch, keys.remove(o.agent_id, std::time(nullptr)));
    std::printf(
        "removed %s: its channel is at epoch %llu now; versions built from here on are closed to "
        "it (it keeps what it could read before: rotate the values it saw)\n",
        o.agent_id.c_str(), static_cast<unsigned long long>(epoch));
    return {};
  });
}

Status rotate(const AgentsOptions& o) {
  SOVDEV_ASSIGN(const std::string pub, read_public(o.pub));
  return with_keys(o, [&](FleetKeys& keys) -> Status {
    SOVDEV_ASSIGN(const uint64_t epoch, keys.rotate(o.agent_id, pub, std::time(nullptr)));
    std::printf("rotated %s to key %s: its channel is at epoch %llu now\n", o.agent_id.c_str(),
                to_hex(pub).substr(0, 16).c_str(), static_cast<unsigned long long>(epoch));
    return {};
  });
}

const char* row_text(secrets::RowCheck check) {
  switch (check) {
    case secrets::RowCheck::verified: return "verified";
    case secrets::RowCheck::no_mac: return "no MAC (check its key, then agents add it again)";
    case secrets::RowCheck::changed:
      return "CHANGED outside sovdev-hub agents (check the hub, then agents remove and add it)";
    case secrets::RowCheck::not_checked: break;
  }
  return "not checked (give --store-key)";
}

Status list(const AgentsOptions& o) {
  // Read-only: a listing never creates or changes hub.db (a mistyped --db is an error).
  SOVDEV_ASSIGN(store::Database db, store::open_hub_reader(o.db));
  // With the store key, each row's MAC is checked; without, only a missing one shows.
  secrets::StoreKey key;
  if (!o.store_key.empty()) {
    SOVDEV_ASSIGN(key, secrets::load_store_key(o.store_key));
  }
  FleetKeys keys(db, key);
  SOVDEV_ASSIGN(const auto agents, keys.list());
  SOVDEV_ASSIGN(const auto epochs, keys.epochs(""));
  if (o.as_json) {
    nlohmann::json out{{"agents", nlohmann::json::array()}, {"epochs", nlohmann::json::array()}};
    for (const auto& a : agents) {
      out["agents"].push_back({{"id", a.agent_id},
                               {"channel", a.channel},
                               {"public_key", to_hex(a.public_key)},
                               {"labels", a.labels},
                               {"row", row_text(a.row)},
                               {"added", utc_time(a.added_at)},
                               {"rotated", a.rotated_at ? nlohmann::json(utc_time(*a.rotated_at))
                                                        : nlohmann::json(nullptr)}});
    }
    for (const auto& e : epochs) {
      out["epochs"].push_back({{"channel", e.channel},
                               {"epoch", e.epoch},
                               {"key_id", to_hex(e.key_id)},
                               {"reason", e.reason},
                               {"grants", e.grants},
                               {"created", utc_time(e.created_at)}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return {};
  }
  if (agents.empty()) std::printf("no agents enrolled\n");
  for (const auto& a : agents) {
    std::string labels;
    for (const auto& [k, v] : a.labels) labels += (labels.empty() ? "" : ",") + k + "=" + v;
    const bool flagged = a.row == secrets::RowCheck::no_mac || a.row == secrets::RowCheck::changed;
    std::printf("%-20s %-10s key %s  %s%s%s\n", escape_control(a.agent_id).c_str(),
                escape_control(a.channel).c_str(), to_hex(a.public_key).substr(0, 16).c_str(),
                escape_control(labels).c_str(), flagged ? "  row: " : "",
                flagged ? row_text(a.row) : "");
  }
  for (const auto& e : epochs) {
    std::printf("channel %s epoch %llu: %llu agent(s), %s, %s\n", e.channel.c_str(),
                static_cast<unsigned long long>(e.epoch), static_cast<unsigned long long>(e.grants),
                escape_control(e.reason).c_str(), utc_time(e.created_at).c_str());
  }
  return {};
}

}  // namespace

void add_agents(CLI::App& app, cli::Commands& commands) {
  auto* agents = app.add_subcommand(
      "agents", "Agents enrolled for secrets (their X25519 keys) and their channels' epochs");
  agents->require_subcommand(1);
  const auto db = [](CLI::App* cmd, AgentsOptions& o, bool needs_key) {
    cmd->add_option("--db", o.db, "Hub database")->required();
    if (needs_key) {
      cmd->add_option("--store-key", o.store_key,
                      "Secret-store key file (default $CREDENTIALS_DIRECTORY/secret-store.key)");
    }
  };
  const auto id = [](CLI::App* cmd, AgentsOptions& o) {
    cmd->add_option("id", o.agent_id, "Agent id (its `agent_id`)")
        ->required()
        ->check(CLI::Validator([](std::string& v) { return secrets::check_agent_id(v); }, "", ""));
  };

  auto add_o = std::make_shared<AgentsOptions>();
  auto* add_cmd = agents->add_subcommand(
      "add", "Enrol an agent: its channel's current epoch key is sealed to it");
  db(add_cmd, *add_o, true);
  id(add_cmd, *add_o);
  add_cmd->add_option("--pub", add_o->pub, "The agent's public key file (sovdev-agent keygen)")
      ->required();
  add_cmd->add_option("--channel", add_o->channel, "The channel it follows")
      ->required()
      ->check(CLI::Validator([](std::string& v) { return secrets::check_channel(v); }, "", ""));
  add_cmd->add_option("--label", add_o->labels, "key=value (repeatable)");
  commands.push_back({add_cmd, [add_o] { return add(*add_o); }});

  auto rm_o = std::make_shared<AgentsOptions>();
  auto* rm_cmd = agents->add_subcommand(
      "remove", "Remove an agent: its channel starts a new epoch, closed to it");
  db(rm_cmd, *rm_o, true);
  id(rm_cmd, *rm_o);
  commands.push_back({rm_cmd, [rm_o] { return remove(*rm_o); }});

  auto rot_o = std::make_shared<AgentsOptions>();
  auto* rot_cmd = agents->add_subcommand(
      "rotate", "Replace an agent's key: its channel starts a new epoch, for the new key");
  db(rot_cmd, *rot_o, true);
  id(rot_cmd, *rot_o);
  rot_cmd->add_option("--pub", rot_o->pub, "The agent's new public key file")->required();
  commands.push_back({rot_cmd, [rot_o] { return rotate(*rot_o); }});

  auto ls_o = std::make_shared<AgentsOptions>();
  auto* ls_cmd = agents->add_subcommand("list", "Enrolled agents and the channels' epochs");
  db(ls_cmd, *ls_o, false);
  ls_cmd->add_option("--store-key", ls_o->store_key,
                     "Secret-store key file: check each agent row's MAC (hub.db changed by "
                     "another process)");
  ls_cmd->add_flag("--json", ls_o->as_json, "Print JSON");
  commands.push_back({ls_cmd, [ls_o] { return list(*ls_o); }});
}

}  // namespace sovdev::hub
