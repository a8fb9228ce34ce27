#include "hub/secrets/fleet_keys.hpp"

#include <sodium.h>

#include <nlohmann/json.hpp>

#include "bundles/hash.hpp"
#include "bundles/messages.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::hub::secrets {
namespace {

constexpr std::string_view kEpochDomain = "sovdev/v1/epoch-key";
constexpr std::string_view kAgentRowDomain = "sovdev/v1/agent-row-mac";
constexpr std::string_view kEpochRowDomain = "sovdev/v1/epoch-row-mac";
constexpr size_t kMacSize = 32;

// Row MACs (hub migration 005). `serve` can write hub.db but never holds the store key, so a
// row it adds or changes (an agent's public key swapped for its own, a row for an agent of its
// own, an epoch row taken from another channel or epoch) no longer matches its MAC, and the
// offline commands refuse to seal anything to it or build with it. What this does not catch:
// a row deleted (an agent left out of the next epoch's grants; a channel's newest epochs
// deleted, so `build` seals under an older one), or a row replaced by an older copy of itself
// (an agent's key from before a rotation, with the MAC it had then). Grants (epoch_grants)
// carry no MAC: `serve` relays them and the agent checks the key id; `rotate` re-seals the
// older epochs an agent has grant rows for, so a grant row added by `serve` could have an
// older epoch of the agent's own channel re-sealed to the agent's new key.
//
// An epoch row's sealed key is already bound to (channel, epoch) by its AEAD and checked
// against its key id; the MAC refuses a swapped row as a whole, before anything is decrypted.
// Epoch rows from before migration 005 get their MAC the first time they open and check.
//
// The MAC key is a subkey per row kind, BLAKE2b keyed with the store key over a domain tag (the
// store key itself is not used as a MAC key); the MAC is BLAKE2b keyed with the subkey over the
// fields, length-prefixed (seal::associated_data), as they are stored.
std::string row_mac(const StoreKey& store_key, std::string_view domain,
                    std::initializer_list<std::string_view> fields) {
  ensure_sodium();
  unsigned char subkey[kMacSize];
  crypto_generichash(subkey, sizeof subkey, reinterpret_cast<const unsigned char*>(domain.data()),
                     domain.size(), store_key.key.data(), store_key.key.size());
  const std::string message = seal::associated_data(domain, fields);
  std::string mac(kMacSize, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(mac.data()), mac.size(),
                     reinterpret_cast<const unsigned char*>(message.data()), message.size(), subkey,
                     sizeof subkey);
  sodium_memzero(subkey, sizeof subkey);
  return mac;
}

bool same_mac(const std::string& a, const std::string& b) {
  return a.size() == kMacSize && b.size() == kMacSize &&
         sodium_memcmp(a.data(), b.data(), kMacSize) == 0;
}

std::string agent_mac(const StoreKey& store_key, const std::string& agent_id,
                      const std::string& channel, const std::string& public_key,
                      const std::string& labels) {
  return row_mac(store_key, kAgentRowDomain, {agent_id, channel, public_key, labels});
}

std::string epoch_mac(const StoreKey& store_key, const std::string& channel, uint64_t epoch,
                      const std::string& key_id, const std::string& sealed_key) {
  return row_mac(store_key, kEpochRowDomain, {channel, std::to_string(epoch), key_id, sealed_key});
}

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
  if (row.is_null(6)) a.row = RowCheck::no_mac;
  return a;
}

constexpr const char* kAgentColumns =
    "agent_id, channel, public_key, labels, added_at, rotated_at, row_mac FROM enrolled_agents";

// Whether a row read with kAgentColumns matches its MAC; the error says what to do when not.
Status verify_agent_row(const StoreKey& store_key, const store::Statement& row) {
  const std::string id = row.text(0);
  if (row.is_null(6)) {
    return make_error(Errc::signature,
                      "agent " + id +
                          "'s row in hub.db has no MAC (enrolled before hub.db version 5, or "
                          "added outside sovdev-hub agents): check its key, then enrol it again "
                          "with sovdev-hub agents add " +
                          id + " --pub FILE --channel " + row.text(1));
  }
  if (!same_mac(row.blob(6), agent_mac(store_key, id, row.text(1), row.blob(2), row.text(3)))) {
    return make_error(Errc::signature,
                      "agent " + id +
                          "'s row in hub.db was changed outside sovdev-hub agents (its key no "
                          "longer matches its MAC): check the hub, then agents remove " +
                          id + " and add it again");
  }
  return {};
}

}  // namespace

std::string check_agent_id(std::string_view id) {
  return valid_agent_id(id) ? std::string()
                            : "an agent id is 1-64 of A-Z, a-z, 0-9, '-', '.' and '_'";
}

std::string check_channel(std::string_view channel) {
  return valid_channel_name(channel) ? std::string()
                                     : "a channel is 1-63 of a-z, 0-9, '-', '.' and '_'";
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
                db_.prepare("SELECT key_id, sealed_key, store_key_id, row_mac FROM "
                            "channel_epochs WHERE channel = ? AND epoch = ?"));
  SOVDEV_TRY(get.bind_all(channel, epoch));
  SOVDEV_ASSIGN(const bool found, get.step());
  const std::string what = "epoch " + std::to_string(epoch) + " of channel " + channel;
  if (!found) return make_error(Errc::not_found, "no " + what);
  if (get.blob(2) != key_.id) {
    return make_error(Errc::signature,
                      what + " was sealed with another secret-store key than the one given");
  }
  const std::string key_id = get.blob(0), sealed_key = get.blob(1);
  const std::string mac = epoch_mac(key_, channel, epoch, key_id, sealed_key);
  const bool legacy = get.is_null(3);
  if (!legacy && !same_mac(get.blob(3), mac)) {
    return make_error(Errc::signature,
                      what +
                          "'s row in hub.db was changed outside sovdev-hub (it no longer "
                          "matches its MAC): check the hub; sovdev-hub agents rotate or "
                          "remove starts a new epoch");
  }
  SOVDEV_ASSIGN(seal::SecretBytes key,
                seal::decrypt(key_.key, sealed_key, epoch_ad(channel, epoch), seal::kKeySize));
  if (key.size() != seal::kKeySize || seal::epoch_key_id(channel, epoch, key) != key_id) {
    return make_error(Errc::signature, what + " does not match its key id (hub.db changed?)");
  }
  if (legacy) {
    // Made before hub.db version 5. Its sealed key opened under the store key with (channel,
    // epoch) as associated data and matches its key id, which is what the MAC would vouch for:
    // it gets its MAC now, once.
    SOVDEV_ASSIGN(store::Statement put,
                  db_.prepare("UPDATE channel_epochs SET row_mac = ? WHERE channel = ? AND epoch "
                              "= ? AND row_mac IS NULL"));
    SOVDEV_TRY(put.bind_all(store::Blob{mac}, channel, epoch));
    SOVDEV_TRY(put.run());
  }
  return EpochKey{epoch, key_id, std::move(key)};
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
  const std::string key_id = seal::epoch_key_id(channel, epoch, key);
  SOVDEV_ASSIGN(store::Statement put,
                db_.prepare("INSERT INTO channel_epochs (channel, epoch, key_id, sealed_key, "
                            "store_key_id, reason, created_at, row_mac) VALUES (?, ?, ?, ?, ?, ?, "
                            "?, ?)"));
  SOVDEV_TRY(put.bind_all(channel, epoch, store::Blob{key_id}, store::Blob{sealed},
                          store::Blob{key_.id}, reason, now,
                          store::Blob{epoch_mac(key_, channel, epoch, key_id, sealed)}));
  SOVDEV_TRY(put.run());
  SOVDEV_ASSIGN(store::Statement members,
                db_.prepare(std::string("SELECT ") + kAgentColumns + " WHERE channel = ?"));
  SOVDEV_TRY(members.bind(1, channel));
  for (;;) {
    SOVDEV_ASSIGN(const bool row, members.step());
    if (!row) break;
    // One row that fails its MAC refuses the whole change (the caller's transaction).
    SOVDEV_TRY(verify_agent_row(key_, members));
    SOVDEV_TRY(put_grant(channel, epoch, agent_of(members), key));
  }
  return epoch;
}

Status FleetKeys::verify_agent(const std::string& agent_id) {
  SOVDEV_ASSIGN(store::Statement get,
                db_.prepare(std::string("SELECT ") + kAgentColumns + " WHERE agent_id = ?"));
  SOVDEV_TRY(get.bind(1, agent_id));
  SOVDEV_ASSIGN(const bool found, get.step());
  if (!found) return make_error(Errc::not_found, "agent " + agent_id + " is not enrolled");
  return verify_agent_row(key_, get);
}

Status FleetKeys::write_agent(const EnrolledAgent& agent, bool replace, int64_t now) {
  const std::string labels = labels_text(agent.labels);
  const std::string mac = agent_mac(key_, agent.agent_id, agent.channel, agent.public_key, labels);
  SOVDEV_ASSIGN(store::Statement put,
                db_.prepare(replace ? "UPDATE enrolled_agents SET channel = ?2, public_key = ?3, "
                                      "labels = ?4, rotated_at = ?5, row_mac = ?6 WHERE agent_id "
                                      "= ?1"
                                    : "INSERT INTO enrolled_agents (agent_id, channel, "
                                      "public_key, labels, added_at, row_mac) VALUES (?1, ?2, "
                                      "?3, ?4, ?5, ?6)"));
  SOVDEV_TRY(put.bind_all(agent.agent_id, agent.channel, store::Blob{agent.public_key}, labels, now,
                          store::Blob{mac}));
  return put.run();
}

Expected<uint64_t> FleetKeys::add(const EnrolledAgent& agent, int64_t now) {
  SOVDEV_TRY(require_store_key());
  // The wire's rules (bundles/messages.hpp): an agent enrolled can also ask for its key.
  if (auto problem = check_agent_id(agent.agent_id); !problem.empty()) {
    return make_error(Errc::usage, problem);
  }
  if (auto problem = check_channel(agent.channel); !problem.empty()) {
    return make_error(Errc::usage, problem);
  }
  if (agent.public_key.size() != seal::kKeySize) {
    return make_error(Errc::invalid, "an agent's public key is 32 bytes");
  }
  return store::transaction(db_, [&]() -> Expected<uint64_t> {
    SOVDEV_ASSIGN(auto existing, find(agent.agent_id));
    bool replace = false;
    if (existing) {
      // A row that fails its MAC (from before version 5, or changed by a taken `serve`) is
      // enrolled again from the operator's key file, in the same channel.
      const bool verified = static_cast<bool>(verify_agent(agent.agent_id));
      if (verified || existing->channel != agent.channel) {
        return make_error(Errc::conflict, "agent " + agent.agent_id + " is enrolled already (in " +
                                              existing->channel +
                                              "): `agents rotate` replaces its key");
      }
      replace = true;
    }
    SOVDEV_TRY(write_agent(agent, replace, now));
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
    // Its channel decides which epochs are re-sealed to the new key: it must be the one the
    // operator enrolled.
    SOVDEV_TRY(verify_agent(agent_id));
    EnrolledAgent rotated = *existing;
    rotated.public_key = public_key;
    SOVDEV_TRY(write_agent(rotated, true, now));
    // The older epochs it held, re-sealed to the new key (replacing the grants to the old
    // one): after `sovdev-agent keygen --force` it can still open the versions built under
    // them, its last good version among them.
    SOVDEV_ASSIGN(store::Statement held,
                  db_.prepare("SELECT epoch FROM epoch_grants WHERE channel = ? AND agent_id = ? "
                              "ORDER BY epoch"));
    SOVDEV_TRY(held.bind_all(existing->channel, agent_id));
    std::vector<uint64_t> epochs;
    for (;;) {
      SOVDEV_ASSIGN(const bool row, held.step());
      if (!row) break;
      epochs.push_back(held.uint64(0));
    }
    for (const uint64_t epoch : epochs) {
      SOVDEV_ASSIGN(const EpochKey old, open_epoch(existing->channel, epoch));
      SOVDEV_TRY(put_grant(existing->channel, epoch, rotated, old.key));
    }
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
    if (key_.key.size() == seal::kKeySize && out.back().row != RowCheck::no_mac) {
      out.back().row = verify_agent_row(key_, rows) ? RowCheck::verified : RowCheck::changed;
    }
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
