#include "hub/secrets/fleet_keys.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "platform/store/transaction.hpp"

namespace sovdev::hub::secrets {
namespace {

constexpr std::string_view kEpochDomain = "sovdev/v1/epoch-key";

std::string epoch_ad(const std::string& channel, uint64_t epoch) {
  return seal::associated_data(kEpochDomain, {channel, std::to_string(epoch)});
}

std::string labels_text(const std::map<std::string, std::string>& labels) {
  return nlohmann::json(labels).dump();
}

std::map<std::string, std::string> labels_of(const std::string& text) {
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  std::map<std::string, std::string> out;
  if (!parsed.is_object()) return out;
  for (const auto& [k, v] : parsed.items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

EnrolledAgent agent_of(const store::Statement& row) {
  EnrolledAgent a;
  a.agent_id = row.text(0);
  a.channel = row.text(1);
  a.public_key = row.blob(2);
  a.labels = labels_of(row.text(3));
  a.added_at = row.int64(4);
  if (!row.is_null(5)) a.rotated_at = row.int64(5);
  return a;
}

constexpr const char* kAgentColumns =
    "agent_id, channel, public_key, labels, added_at, rotated_at FROM enrolled_agents";

}  // namespace

std::string check_agent_id(std::string_view id) {
  const bool ok = !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
  });
  return ok ? std::string() : "an agent id is 1-128 of A-Z, a-z, 0-9, '-', '.' and '_'";
}

Status FleetKeys::require_store_key() const {
  if (key_.key.size() != seal::kKeySize) {
    return make_error(Errc::usage, "changing enrolled agents needs the secret-store key");
  }
  return {};
}

Expected<std::optional<EnrolledAgent>> FleetKeys::find(const std::string& agent_id) {
  SOVDEV_ASSIGN(store::Statement get,
                db_.prepare(std::string("SELECT ") + kAgentColumns + " WHERE agent_id = ?"));
  SOVDEV_TRY(get.bind(1, agent_id));
  SOVDEV_ASSIGN(const bool found, get.step());
  if (!found) return std::optional<EnrolledAgent>();
  return std::optional<EnrolledAgent>(agent_of(get));
}

Status FleetKeys::put_grant(const std::string& channel, uint64_t epoch, const EnrolledAgent& agent,
                            const seal::SecretBytes& key) {
  SOVDEV_ASSIGN(store::Statement put,
                db_.prepare("INSERT OR REPLACE INTO epoch_grants (channel, epoch, agent_id, "
                            "sealed) VALUES (?, ?, ?, ?)"));
  const std::string sealed = seal::seal_to(agent.public_key, key);
  SOVDEV_TRY(put.bind_all(channel, epoch, agent.agent_id, store::Blob{sealed}));
  return put.run();
}

Expected<EpochKey> FleetKeys::open_epoch(const std::string& channel, uint64_t epoch) {
  SOVDEV_ASSIGN(store::Statement get,
                db_.prepare("SELECT key_id, sealed_key, store_key_id FROM channel_epochs WHERE "
                            "channel = ? AND epoch = ?"));
  SOVDEV_TRY(get.bind_all(channel, epoch));
  SOVDEV_ASSIGN(const bool found, get.step());
  const std::string what = "epoch " + std::to_string(epoch) + " of channel " + channel;
  if (!found) return make_error(Errc::not_found, "no " + what);
  if (get.blob(2) != key_.id) {
    return make_error(Errc::signature,
                      what + " was sealed with another secret-store key than the one given");
  }
  SOVDEV_ASSIGN(seal::SecretBytes key,
                seal::decrypt(key_.key, get.blob(1), epoch_ad(channel, epoch), seal::kKeySize));
  if (key.size() != seal::kKeySize || seal::epoch_key_id(channel, epoch, key) != get.blob(0)) {
    return make_error(Errc::signature, what + " does not match its key id (hub.db changed?)");
  }
  return EpochKey{epoch, get.blob(0), std::move(key)};
}

Expected<uint64_t> FleetKeys::next_epoch(const std::string& channel, const std::string& reason,
                                         int64_t now) {
  SOVDEV_ASSIGN(
      store::Statement last,
      db_.prepare("SELECT coalesce(max(epoch), 0) FROM channel_epochs WHERE channel = ?"));
  SOVDEV_TRY(last.bind(1, channel));
  SOVDEV_TRY(last.step());
  const uint64_t epoch = last.uint64(0) + 1;
  const seal::SecretBytes key = seal::random_key();
  const std::string sealed = seal::encrypt(key_.key, key.view(), epoch_ad(channel, epoch));
  SOVDEV_ASSIGN(store::Statement put,
                db_.prepare("INSERT INTO channel_epochs (channel, epoch, key_id, sealed_key, "
                            "store_key_id, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"));
  SOVDEV_TRY(put.bind_all(channel, epoch, store::Blob{seal::epoch_key_id(channel, epoch, key)},
                          store::Blob{sealed}, store::Blob{key_.id}, reason, now));
  SOVDEV_TRY(put.run());
  SOVDEV_ASSIGN(store::Statement members,
                db_.prepare(std::string("SELECT ") + kAgentColumns + " WHERE channel = ?"));
  SOVDEV_TRY(members.bind(1, channel));
  for (;;) {
    SOVDEV_ASSIGN(const bool row, members.step());
    if (!row) break;
    SOVDEV_TRY(put_grant(channel, epoch, agent_of(members), key));
  }
  return epoch;
}

Expected<uint64_t> FleetKeys::add(const EnrolledAgent& agent, int64_t now) {
  SOVDEV_TRY(require_store_key());
  if (auto problem = check_agent_id(agent.agent_id); !problem.empty()) {
    return make_error(Errc::usage, problem);
  }
  if (agent.public_key.size() != seal::kKeySize) {
    return make_error(Errc::invalid, "an agent's public key is 32 bytes");
  }
  return store::transaction(db_, [&]() -> Expected<uint64_t> {
    SOVDEV_ASSIGN(auto existing, find(agent.agent_id));
    if (existing) {
      return make_error(Errc::conflict, "agent " + agent.agent_id + " is enrolled already (in " +
                                            existing->channel +
                                            "): `agents rotate` replaces its key");
    }
    SOVDEV_ASSIGN(store::Statement put,
                  db_.prepare("INSERT INTO enrolled_agents (agent_id, channel, public_key, labels, "
                              "added_at) VALUES (?, ?, ?, ?, ?)"));
    SOVDEV_TRY(put.bind_all(agent.agent_id, agent.channel, store::Blob{agent.public_key},
                            labels_text(agent.labels), now));
    SOVDEV_TRY(put.run());
    SOVDEV_ASSIGN(auto current_epoch, current(agent.channel));
    if (!current_epoch) return next_epoch(agent.channel, "first agent " + agent.agent_id, now);
    SOVDEV_TRY(put_grant(agent.channel, current_epoch->epoch, agent, current_epoch->key));
    return current_epoch->epoch;
  });
}

Expected<uint64_t> FleetKeys::remove(const std::string& agent_id, int64_t now) {
  SOVDEV_TRY(require_store_key());
  return store::transaction(db_, [&]() -> Expected<uint64_t> {
    SOVDEV_ASSIGN(auto existing, find(agent_id));
    if (!existing) return make_error(Errc::not_found, "agent " + agent_id + " is not enrolled");
    SOVDEV_ASSIGN(store::Statement del,
                  db_.prepare("DELETE FROM enrolled_agents WHERE agent_id = ?"));
    SOVDEV_TRY(del.bind(1, agent_id));
    SOVDEV_TRY(del.run());
    return next_epoch(existing->channel, "removed " + agent_id, now);
  });
}

Expected<uint64_t> FleetKeys::rotate(const std::string& agent_id, const std::string& public_key,
                                     int64_t now) {
  SOVDEV_TRY(require_store_key());
  if (public_key.size() != seal::kKeySize) {
    return make_error(Errc::invalid, "an agent's public key is 32 bytes");
  }
  return store::transaction(db_, [&]() -> Expected<uint64_t> {
    SOVDEV_ASSIGN(auto existing, find(agent_id));
    if (!existing) return make_error(Errc::not_found, "agent " + agent_id + " is not enrolled");
    SOVDEV_ASSIGN(store::Statement update,
                  db_.prepare("UPDATE enrolled_agents SET public_key = ?, rotated_at = ? WHERE "
                              "agent_id = ?"));
    SOVDEV_TRY(update.bind_all(store::Blob{public_key}, now, agent_id));
    SOVDEV_TRY(update.run());
    return next_epoch(existing->channel, "rotated " + agent_id, now);
  });
}

Expected<std::vector<EnrolledAgent>> FleetKeys::list() {
  SOVDEV_ASSIGN(store::Statement rows,
                db_.prepare(std::string("SELECT ") + kAgentColumns + " ORDER BY agent_id"));
  std::vector<EnrolledAgent> out;
  for (;;) {
    SOVDEV_ASSIGN(const bool row, rows.step());
    if (!row) break;
    out.push_back(agent_of(rows));
  }
  return out;
}

Expected<std::vector<EpochInfo>> FleetKeys::epochs(const std::string& channel) {
  SOVDEV_ASSIGN(store::Statement rows,
                db_.prepare("SELECT e.channel, e.epoch, e.key_id, e.reason, e.created_at, "
                            "(SELECT count(*) FROM epoch_grants g WHERE g.channel = e.channel "
                            "AND g.epoch = e.epoch) FROM channel_epochs e WHERE ?1 = '' OR "
                            "e.channel = ?1 ORDER BY e.channel, e.epoch"));
  SOVDEV_TRY(rows.bind(1, channel));
  std::vector<EpochInfo> out;
  for (;;) {
    SOVDEV_ASSIGN(const bool row, rows.step());
    if (!row) break;
    out.push_back(
        {rows.text(0), rows.uint64(1), rows.blob(2), rows.text(3), rows.int64(4), rows.uint64(5)});
  }
  return out;
}

Expected<std::optional<EpochKey>> FleetKeys::current(const std::string& channel) {
  SOVDEV_ASSIGN(store::Statement last,
                db_.prepare("SELECT max(epoch) FROM channel_epochs WHERE channel = ?"));
  SOVDEV_TRY(last.bind(1, channel));
  SOVDEV_TRY(last.step());
  if (last.is_null(0)) return std::optional<EpochKey>();
  SOVDEV_ASSIGN(EpochKey key, open_epoch(channel, last.uint64(0)));
  return std::optional<EpochKey>(std::move(key));
}

Expected<std::optional<std::string>> FleetKeys::grant(const std::string& channel, uint64_t epoch,
                                                      const std::string& agent_id) {
  SOVDEV_ASSIGN(store::Statement get,
                db_.prepare("SELECT sealed FROM epoch_grants WHERE channel = ? AND epoch = ? AND "
                            "agent_id = ?"));
  SOVDEV_TRY(get.bind_all(channel, epoch, agent_id));
  SOVDEV_ASSIGN(const bool found, get.step());
  if (!found) return std::optional<std::string>();
  return std::optional<std::string>(get.blob(0));
}

}  // namespace sovdev::hub::secrets
