#include "agent/sealed_apply.hpp"

#include <sodium.h>

#include <cstring>

#include "agent/payload_source.hpp"
#include "agent/secret_keys.hpp"
#include "bundles/seal.hpp"

namespace sovdev::agent {
namespace {

// A raw value shorter than this is not cut out of messages: "<sealed>" in place of every "1"
// or "ab" would wreck the message and tell more than it hides. Its base64 form (at least 4
// characters) still is.
constexpr size_t kMinRawScrub = 4;
constexpr const char* kScrubbed = "<sealed>";

std::string version_of(const pb::BundleManifest& m) {
  return m.stack() + "@" + std::to_string(m.version());
}

std::string object_of(const pb::ResourceRecord& r) {
  return r.kind() + " " + (r.namespace_().empty() ? "" : r.namespace_() + "/") + r.name();
}

std::string epoch_of(const sealed::Place& place) {
  return "channel " + place.channel + " epoch " + std::to_string(place.epoch);
}

// What fixes a version whose sealed records do not fit: only the builder can.
constexpr const char* kRebuild =
    "nothing of it was applied; build it again on the provision host (`sovdev-hub build`) and "
    "publish it (`sovdev-hub publish`)";

}  // namespace

Expected<std::shared_ptr<const seal::AgentKey>> shared_agent_key(const std::string& state_dir) {
  SOVDEV_ASSIGN(std::optional<seal::AgentKey> key, load_agent_key(state_dir));
  if (!key) return std::shared_ptr<const seal::AgentKey>();
  return std::shared_ptr<const seal::AgentKey>(
      std::make_shared<const seal::AgentKey>(std::move(*key)));
}

Expected<SealedSecrets> SealedSecrets::open(store::Database& db, const SecretsOpener& who,
                                            const pb::BundleManifest& manifest) {
  SealedSecrets out;
  out.version_ = version_of(manifest);
  out.declared_ = manifest.sealed_objects();
  out.place_ = sealed::place_of(manifest);
  if (out.declared_ == 0) return out;
  if (manifest.secrets_channel().empty() || manifest.secrets_epoch() == 0 ||
      manifest.secrets_key_id().size() != seal::kKeyIdSize) {
    return make_error(Errc::invalid, "its manifest declares " + std::to_string(out.declared_) +
                                         " sealed Secrets but names no epoch key to open them");
  }
  SOVDEV_ASSIGN(out.key_, open_epoch_key(db, who.key, who.agent_id, manifest));
  return out;
}

Status SealedSecrets::admit(const pb::ResourceRecord& r) const {
  if (r.api_version() != "v1" || r.kind() != "Secret") {
    return make_error(Errc::invalid, object_of(r) + " (" + r.api_version() +
                                         ") is sealed, but only v1 Secrets may be");
  }
  if (!key_) {
    return make_error(Errc::invalid, object_of(r) +
                                         " is sealed, but the manifest declares no sealed "
                                         "objects");
  }
  return {};
}

Status SealedSecrets::check(const pb::ResourceRecord& r) {
  if (r.sealed().empty()) return {};
  SOVDEV_TRY(admit(r));
  ++seen_;
  auto opened = sealed::open_record(r, *key_, place_);
  if (!opened) {
    return make_error(Errc::signature,
                      "the sealed values of " + object_of(r) + " do not open with the key of " +
                          epoch_of(place_) +
                          " (changed after sealing, or sealed for another object, version or "
                          "epoch)");
  }
  auto spliced = sealed::splice(r.json(), *opened);
  if (!spliced) return std::move(spliced).error().context(object_of(r));
  sealed::wipe(*spliced);
  // The base64 text is at most the data object's size, the raw values three quarters of it.
  capacity_ += opened->size() * 2;
  return {};
}

Status SealedSecrets::check_count() const {
  if (seen_ == declared_) return {};
  return make_error(Errc::invalid, "its manifest declares " + std::to_string(declared_) +
                                       " sealed Secrets, its payload holds " +
                                       std::to_string(seen_));
}

Status SealedSecrets::reveal(pb::ResourceRecord& r) {
  if (r.sealed().empty()) return {};
  SOVDEV_TRY(admit(r));
  auto opened = sealed::open_record(r, *key_, place_);
  if (!opened) {
    return make_error(Errc::signature, "the sealed values of " + object_of(r) +
                                           " no longer open with the key of " + epoch_of(place_));
  }
  remember(*opened);
  auto spliced = sealed::splice(r.json(), *opened);
  if (!spliced) return std::move(spliced).error().context(object_of(r));
  r.set_json(std::move(*spliced));
  return {};
}

void SealedSecrets::conceal(pb::ResourceRecord& r) {
  if (!r.sealed().empty()) sealed::wipe(*r.mutable_json());
}

// A data object is {"key":"<base64>",...} (sealed::data_object): keys of [-._a-zA-Z0-9], so
// every value follows a `":"` and ends at the next quote. Read in place rather than parsed, so
// no parser's buffers are left holding a value.
void SealedSecrets::remember(const seal::SecretBytes& opened) {
  if (values_.empty() && capacity_ > 0) values_ = seal::SecretBytes(capacity_);
  const std::string_view object = opened.view();
  for (size_t at = object.find("\":\""); at != std::string_view::npos;
       at = object.find("\":\"", at)) {
    const size_t start = at + 3;
    const size_t end = object.find('"', start);
    if (end == std::string_view::npos) break;
    at = end + 1;
    const std::string_view text = object.substr(start, end - start);
    if (text.empty()) continue;  // an empty value hides nothing (and would match everywhere)
    if (used_ + text.size() * 2 > values_.size()) break;  // more than the check pass opened
    std::memcpy(values_.data() + used_, text.data(), text.size());
    spans_.emplace_back(used_, text.size());
    used_ += text.size();
    size_t raw = 0;
    if (sodium_base642bin(values_.data() + used_, values_.size() - used_, text.data(), text.size(),
                          nullptr, &raw, nullptr, sodium_base64_VARIANT_ORIGINAL) == 0 &&
        raw >= kMinRawScrub) {
      spans_.emplace_back(used_, raw);
      used_ += raw;
    }
  }
}

std::string SealedSecrets::scrub(std::string message) const {
  const std::string_view all = values_.view();
  for (const auto& [offset, size] : spans_) {
    const std::string_view value = all.substr(offset, size);
    if (value.empty()) continue;
    for (size_t at = message.find(value); at != std::string::npos;
         at = message.find(value, at + std::strlen(kScrubbed))) {
      message.replace(at, value.size(), kScrubbed);
    }
  }
  return message;
}

VersionCheck check_version(store::Database& db, const SecretsOpener& who,
                           const store::BundleInfo& info, const pb::BundleManifest& manifest) {
  VersionCheck out;
  const std::string version = version_of(manifest);
  auto secrets = SealedSecrets::open(db, who, manifest);
  if (!secrets) {
    const bool refused = secrets.error().code == Errc::invalid;
    out.verdict = refused ? VersionCheck::Verdict::refused : VersionCheck::Verdict::no_key;
    out.error = std::move(secrets).error().context(
        (refused ? "refused " : "cannot open the sealed secrets of ") + version);
    if (refused) out.error.message += std::string("; ") + kRebuild;
    return out;
  }
  out.secrets = std::move(*secrets);
  // The sealed records are checked in the same pass as the payload. The first refusal is kept
  // and the pass goes on to the end: a payload rebuilt from a delta is checked only there, and
  // a damaged payload (the likelier cause of a record that does not open) must win.
  std::optional<Error> refusal;
  auto whole = verify_cached_payload(db, info, manifest, [&](pb::ResourceRecord& r) -> Status {
    if (refusal) return {};
    if (auto fits = out.secrets.check(r); !fits) refusal = std::move(fits).error();
    return {};
  });
  if (!whole) {
    out.verdict = VersionCheck::Verdict::damaged;
    out.error = std::move(whole).error();
    return out;
  }
  if (!refusal) {
    if (auto counted = out.secrets.check_count(); !counted) refusal = std::move(counted).error();
  }
  if (refusal) {
    out.verdict = VersionCheck::Verdict::refused;
    out.error = std::move(*refusal).context("refused " + version);
    out.error.message += std::string("; ") + kRebuild;
  }
  return out;
}

}  // namespace sovdev::agent
