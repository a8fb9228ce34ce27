#include "agent/secret_keys.hpp"

#include <sodium.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "platform/fs/files.hpp"
#include "platform/store/epoch_keys.hpp"

namespace sovdev::agent {
namespace {

constexpr size_t kMaxKeyFile = 1024;

std::string manifest_epoch_name(const pb::BundleManifest& m) {
  return "channel " + m.secrets_channel() + " epoch " + std::to_string(m.secrets_epoch());
}

}  // namespace

std::string agent_key_path(const std::string& state_dir) {
  return state_dir + "/agent.key";
}

std::string agent_public_path(const std::string& state_dir) {
  return state_dir + "/agent.pub";
}

Expected<std::optional<seal::AgentKey>> load_agent_key(const std::string& state_dir) {
  const std::string path = agent_key_path(state_dir);
  // Opened without following a link and checked on its descriptor: what is checked is read.
  auto read = fs::read_private_file(path, kMaxKeyFile, "agent key");
  if (!read) {
    if (read.error().code == Errc::not_found) return std::optional<seal::AgentKey>();
    return std::move(read).error();
  }
  std::string text = std::move(*read);
  auto key = seal::parse_agent_secret(text);
  sodium_memzero(text.data(), text.size());
  if (!key) return std::move(key).error().context("agent key " + path);
  return std::optional<seal::AgentKey>(std::move(*key));
}

std::string enrol_command(const std::string& agent_id, const std::string& channel) {
  return "sovdev-hub agents add " + agent_id + " --pub agent.pub --channel " + channel;
}

Expected<seal::SecretBytes> open_epoch_key(store::Database& db, const seal::AgentKey* self,
                                           const std::string& agent_id,
                                           const pb::BundleManifest& m) {
  if (self == nullptr) {
    return make_error(Errc::denied, "this agent has no key to open the sealed secrets of " +
                                        manifest_epoch_name(m) +
                                        ": run `sovdev-agent keygen`, then on the "
                                        "hub `" +
                                        enrol_command(agent_id, m.secrets_channel()) + "`");
  }
  store::EpochKeyCache cache(db);
  SOVDEV_ASSIGN(auto sealed, cache.find(m.secrets_channel(), m.secrets_epoch()));
  if (!sealed) {
    return make_error(Errc::not_found, "no key for " + manifest_epoch_name(m) + " yet");
  }
  auto key = seal::open_sealed(*sealed, *self);
  const bool ours =
      key && seal::epoch_key_id(m.secrets_channel(), m.secrets_epoch(), *key) == m.secrets_key_id();
  if (ours) return std::move(*key);
  if (!key) {
    // Only keys that opened were cached: this agent's key changed since. The entry is kept (the
    // old agent.key put back opens it again); the next fetch asks the hub for one sealed to the
    // new key, which replaces it.
    return make_error(Errc::signature,
                      "the key cached for " + manifest_epoch_name(m) +
                          " does not open with this agent's key (agent.key replaced since it was "
                          "sent?); asking the hub for one sealed to the new key. If this agent's "
                          "key changed, run on the hub `sovdev-hub agents rotate " +
                          agent_id + " --pub agent.pub`");
  }
  if (auto dropped = cache.drop(m.secrets_channel(), m.secrets_epoch()); !dropped) {
    return std::move(dropped).error().context("drop the epoch key that does not open");
  }
  return make_error(Errc::signature,
                    "the key sent for " + manifest_epoch_name(m) +
                        " is another key than the bundle names (a forged or stale grant)"
                        "; dropped, to be asked for again. If this agent's key changed, run on the "
                        "hub `sovdev-hub agents rotate " +
                        agent_id + " --pub agent.pub`");
}

}  // namespace sovdev::agent
