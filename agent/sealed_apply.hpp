// Sealed Secrets at apply time (docs/design-secrets.md, "On the agent"). A version whose
// manifest seals anything is opened in memory only, in two steps:
//  - the check pass, before its first record goes to the target: the epoch key the manifest
//    names is opened from the cache, every sealed record is opened and spliced into its object
//    and the plaintext thrown away at once. A version is applied whole or not at all, so
//    anything that would stop the apply half-way stops it here.
//  - the apply: each sealed record is opened again and spliced into that record's JSON just
//    before the target gets it, and the JSON is wiped right after.
// Plaintext never goes to agent.db, a log, the status or an error message: the values a
// target's error could quote back (an exec command echoing its input) are cut out of it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bundles/seal.hpp"
#include "bundles/sealed_record.hpp"
#include "common/error.hpp"
#include "platform/store/agent_cache.hpp"
#include "sovdev.pb.h"

namespace sovdev::agent {

// The agent's key for DaemonSettings::agent_key: null when it has none yet (the daemon then
// names `sovdev-agent keygen`); a key file others may read is refused (load_agent_key).
[[nodiscard]] Expected<std::shared_ptr<const seal::AgentKey>> shared_agent_key(
    const std::string& state_dir);

// Who opens the epoch keys: the agent's key (null: it has none) and its id, for the hub
// commands the errors name.
struct SecretsOpener {
  const seal::AgentKey* key = nullptr;
  std::string agent_id;
};

// The epoch key of one version while that version is checked and applied, and the values
// opened during its apply (to cut them out of a target's errors). Move-only; everything it
// holds is zeroed when it goes.
class SealedSecrets {
 public:
  SealedSecrets() = default;  // a version that seals nothing

  // The check of one record, during the check pass: a sealed record must be a v1 Secret of a
  // manifest that declares sealed objects, open with the epoch key, and splice into its own
  // object. Errors name the object and never a value.
  [[nodiscard]] Status check(const pb::ResourceRecord& record);
  // After the pass: as many sealed records as the manifest declares.
  [[nodiscard]] Status check_count() const;

  // During the apply: a sealed record's JSON gets its values (the target then has a normal
  // Secret); any other record is left as it is. Call conceal() once the target has it.
  [[nodiscard]] Status reveal(pb::ResourceRecord& record);
  static void conceal(pb::ResourceRecord& record);
  // `message` with every value opened during this apply replaced by "<sealed>".
  std::string scrub(std::string message) const;
  Error scrub(Error error) const {
    error.message = scrub(std::move(error.message));
    return error;
  }

  // The secrets of `manifest`: its epoch key opened from the cache when it seals anything.
  // Errc::invalid when it declares sealed objects but names no epoch key; any other error is
  // open_epoch_key's (the key is not at hand: wait for it).
  [[nodiscard]] static Expected<SealedSecrets> open(store::Database& db, const SecretsOpener& who,
                                                    const pb::BundleManifest& manifest);

 private:
  Status admit(const pb::ResourceRecord& record) const;
  // Keeps the values of an opened data object, to scrub() them out of errors.
  void remember(const seal::SecretBytes& opened);

  std::string version_;  // stack@version, for messages
  uint32_t declared_ = 0;
  uint32_t seen_ = 0;
  sealed::Place place_;
  std::optional<seal::SecretBytes> key_;  // set when the manifest seals anything
  // The values opened during the apply, base64 and raw, in one locked buffer sized by the
  // check pass (one sodium_malloc, not one per value), and where each one lies in it.
  size_t capacity_ = 0;
  seal::SecretBytes values_;
  size_t used_ = 0;
  std::vector<std::pair<size_t, size_t>> spans_;
};

// What the check pass found, and what the daemon does about it.
struct VersionCheck {
  enum class Verdict {
    ok,       // whole, and every sealed Secret opens: apply with `secrets`
    damaged,  // the cached payload failed its check (verify_cached_payload): fetch it again
    no_key,   // the epoch key is not at hand (missing, not this agent's, no agent key): the
              // version waits and the key is asked of the hub; not the bundle's fault
    refused,  // a sealed record that does not open or does not belong: a failed bundle
  };
  Verdict verdict = Verdict::ok;
  Error error;  // why, unless ok; names the version and the command that fixes it
  SealedSecrets secrets;
};

// The pass an apply, a reconcile or a rollback runs before the first record of `info` goes to
// the target: the whole payload read and checked once, every sealed record opened on the way.
VersionCheck check_version(store::Database& db, const SecretsOpener& who,
                           const store::BundleInfo& info, const pb::BundleManifest& manifest);

}  // namespace sovdev::agent
