// The Daemon's apply of one version: the check pass (the payload whole, its sealed Secrets
// opening), the records streamed to the target, and on failure the way back to the last good
// version. Part of daemon.hpp.
#include <spdlog/spdlog.h>

#include "agent/daemon.hpp"
#include "agent/payload_source.hpp"
#include "agent/secret_keys.hpp"
#include "common/text.hpp"
#include "platform/store/failed_bundles.hpp"

namespace sovdev::agent {
namespace {

// How errors name an object: "Deployment sovdev/grafana".
std::string object_name(const pb::ResourceRecord& r) {
  return r.kind() + " " + (r.namespace_().empty() ? "" : r.namespace_() + "/") + r.name();
}

bool names_object(const std::string& message, const std::string& name) {
  for (size_t at = message.find(name); at != std::string::npos; at = message.find(name, at + 1)) {
    const size_t end = at + name.size();
    if (end == message.size() || message[end] == ':' || message[end] == ' ' ||
        message[end] == ';') {
      return true;
    }
  }
  return false;
}

}  // namespace

VersionCheck Daemon::check(const store::BundleInfo& info, const pb::BundleManifest& manifest) {
  return check_version(db_, {settings_.agent_key.get(), settings_.fetch.agent_id}, info, manifest);
}

Expected<target::ApplyResult> Daemon::apply_bundle(const store::BundleInfo& info,
                                                   const pb::BundleManifest& manifest,
                                                   SealedSecrets& secrets, uint32_t& objects,
                                                   ServiceTally& tally) {
  objects = 0;
  bool committing = false;
  target_.set_output_in_errors(manifest.sealed_objects() == 0);
  auto applied = [&]() -> Expected<target::ApplyResult> {
    SOVDEV_TRY(
        target_.begin({manifest.stack(), manifest.version(), short_hex(info.digest), info.digest}));
    SOVDEV_TRY(for_each_record(db_, info, manifest, [&](pb::ResourceRecord& r) -> Status {
      objects++;
      if (heartbeat_) heartbeat_();  // a slow API server makes a long apply of many objects
      tally.add(r);
      if (auto opened = secrets.reveal(r); !opened) return opened;
      auto ok = target_.apply(r);
      SealedSecrets::conceal(r);  // the target has its copy: the values go from ours now
      if (ok) return {};
      // A target's error may quote what it was given (an exec command echoing its input).
      Error why = secrets.scrub(std::move(ok).error());
      tally.fail_current(why.message);
      return why;
    }));
    committing = true;
    return target_.commit();
  }();
  if (!applied) {
    target_.abort();
    Error why = secrets.scrub(std::move(applied).error());
    if (committing) blame_named(info, manifest, why.message, tally);
    return std::move(why).context("apply " + describe(manifest));
  }
  return applied;
}

void Daemon::blame_named(const store::BundleInfo& info, const pb::BundleManifest& manifest,
                         const std::string& message, ServiceTally& tally) {
  auto read = for_each_record(db_, info, manifest, [&](pb::ResourceRecord& r) -> Status {
    if (names_object(message, object_name(r))) tally.fail(service_of(r.json()).service, message);
    return {};
  });
  if (!read) spdlog::debug("finding the failed objects' services: {}", read.error().message);
}

Status Daemon::wait_for_key(const store::BundleInfo& info, const pb::BundleManifest& manifest,
                            Error error, int64_t now_ms) {
  const auto before = retries_.find(manifest.stack());
  const bool again = before != retries_.end() && !before->second.apply &&
                     before->second.goal.digest == info.digest;
  SOVDEV_ASSIGN(auto good, store::ApplyLog(db_).last_good(manifest.stack()));
  const int64_t delay =
      retry_fetch({manifest.stack(), manifest.version(), info.digest, good}, now_ms);
  // Without its own key the agent cannot be sent one: only `keygen` and a restart help.
  if (error.code == Errc::denied) {
    error.message += "; then restart the agent (it reads its key at start)";
  } else if (const auto refused = key_refusals_.find(manifest.stack());
             refused != key_refusals_.end() && refused->second.digest == info.digest) {
    // What `sync --once` exits with: the hub's refusal (denied), or no usable answer.
    error.code = refused->second.by_hub ? Errc::denied : Errc::unavailable;
    error.message += (refused->second.by_hub ? "; the hub says: " : "; ") + refused->second.why;
  } else {
    error.message += "; asking the hub for it";
    if (error.code == Errc::not_found) {
      error.message += ". If this agent is not enrolled, run on the hub `" +
                       enrol_command(settings_.fetch.agent_id, manifest.secrets_channel()) + "`";
    }
  }
  error.message += " (the last good version stays applied; trying again in " +
                   std::to_string(delay / 1000) + " s)";
  spdlog::warn("{}", error.message);
  if (!again) {
    if (auto logged = store::ApplyLog(db_).record(manifest.stack(), manifest.version(), info.digest,
                                                  "waiting", error.message);
        !logged) {
      spdlog::warn("{}", logged.error().message);
    }
  }
  status_.set_last_error(error.message.substr(0, 1000));
  waiting_[manifest.stack()] = {info.digest, std::move(error)};
  return set_state("degraded", now_ms);
}

std::optional<Error> Daemon::waiting_for_key() const {
  for (const auto& [stack, wait] : waiting_) {
    const auto r = retries_.find(stack);
    if (r != retries_.end() && !r->second.apply && r->second.goal.digest == wait.first) {
      return wait.second;
    }
  }
  return std::nullopt;
}

Status Daemon::apply(const std::string& digest, int64_t now_ms) {
  store::BundleCache cache(db_);
  store::ApplyLog log(db_);
  SOVDEV_ASSIGN(auto info, cache.find(digest));
  if (!info) return make_error(Errc::store, "fetched bundle missing from the cache");
  SOVDEV_ASSIGN(pb::BundleManifest manifest, trust_.verify_manifest(info->envelope, nullptr));
  // Its images first: applied once every blob it needs is held (daemon_images.cpp).
  SOVDEV_ASSIGN(const bool images_held, images_ready(digest, manifest, now_ms));
  if (!images_held) return {};
  // Revoked, or held by a closed maintenance window: not now (daemon_rollout.cpp).
  SOVDEV_ASSIGN(const bool go, before_apply(manifest, digest, now_ms));
  if (!go) return {};
  VersionCheck checked = check(*info, manifest);
  switch (checked.verdict) {
    case VersionCheck::Verdict::ok: break;
    case VersionCheck::Verdict::damaged:
      return on_damaged(*info, manifest, std::move(checked.error), now_ms);
    case VersionCheck::Verdict::no_key:
      return wait_for_key(*info, manifest, std::move(checked.error), now_ms);
    case VersionCheck::Verdict::refused:
      // Nothing reached the target: the last good version is still what runs.
      spdlog::error("{}", checked.error.message);
      if (auto logged = log.record(manifest.stack(), manifest.version(), digest, "failed",
                                   checked.error.message);
          !logged) {
        spdlog::warn("{}", logged.error().message);
      }
      record_failed(manifest, digest, checked.error, now_ms);
      return set_state("degraded", now_ms);
  }
  SOVDEV_TRY(set_state("applying", now_ms));
  uint32_t objects = 0;
  ServiceTally tally;
  auto applied = apply_bundle(*info, manifest, checked.secrets, objects, tally);
  last_reconcile_ms_ = now_ms;
  if (!applied) {
    const Error error = std::move(applied).error();
    spdlog::error("{}", error.message);
    set_services(manifest.stack(), tally.health(), &error);
    if (retry_if_transient(manifest, digest, error, now_ms)) return set_state("degraded", now_ms);
    if (auto logged =
            log.record(manifest.stack(), manifest.version(), digest, "failed", error.message);
        !logged) {
      spdlog::warn("{}", logged.error().message);
    }
    record_failed(manifest, digest, error, now_ms);
    return roll_back(manifest, digest, error, tally, now_ms);
  }
  SOVDEV_TRY(log.record(manifest.stack(), manifest.version(), digest, "applied",
                        std::to_string(applied->applied) + " written, " +
                            std::to_string(applied->unchanged) + " unchanged, " +
                            std::to_string(applied->pruned) + " pruned"));
  SOVDEV_TRY(log.set_last_good(manifest.stack(), manifest.version(), digest));
  // The target has it: a store error here must not make the apply look failed.
  if (auto marked = after_apply(manifest, digest, now_ms); !marked) {
    spdlog::warn("{}", marked.error().message);
  }
  retries_.erase(manifest.stack());
  behind_.erase(manifest.stack());
  waiting_.erase(manifest.stack());
  reconcile_error_.reset();
  // What failed before this version is history: the catalog will never list it again.
  if (auto cleared = store::FailedBundles(db_).clear_below(manifest.stack(), manifest.version());
      !cleared) {
    spdlog::warn("{}", cleared.error().message);
  }
  spdlog::info("applied {}: {} objects ({} written, {} pruned)", describe(manifest), objects,
               applied->applied, applied->pruned);
  failure_.reset();
  status_.set_stack(manifest.stack());
  status_.set_applied_version(manifest.version());
  status_.set_applied_digest(digest);
  status_.set_resources_total(objects);
  status_.set_resources_ready(objects);
  status_.set_environment(manifest.environment());
  set_services(manifest.stack(), tally.health(), nullptr);
  status_.set_fetching_version(0);
  status_.set_progress_permille(1000);
  status_.clear_last_error();
  return set_state("healthy", now_ms);
}

Status Daemon::roll_back(const pb::BundleManifest& manifest, const std::string& digest,
                         const Error& error, const ServiceTally& tally, int64_t now_ms) {
  // Back to the last good bundle, from the cache: the site keeps running what worked.
  store::BundleCache cache(db_);
  store::ApplyLog log(db_);
  SOVDEV_ASSIGN(auto good, log.last_good(manifest.stack()));
  if (!good || good->digest == digest) return set_state("degraded", now_ms);
  if (revoked(good->digest)) {
    const std::string why = error.message + "; not rolling back to " + manifest.stack() + "@" +
                            std::to_string(good->version) + ": it is revoked";
    spdlog::error("{}", why);
    status_.set_last_error(why.substr(0, 1000));
    return set_state("degraded", now_ms);
  }
  SOVDEV_ASSIGN(auto good_info, cache.find(good->digest));
  if (!good_info) return set_state("degraded", now_ms);
  SOVDEV_ASSIGN(pb::BundleManifest good_manifest,
                trust_.verify_manifest(good_info->envelope, nullptr));
  VersionCheck checked = check(*good_info, good_manifest);
  if (checked.verdict != VersionCheck::Verdict::ok) {
    Error why = std::move(checked.error);
    why.message = error.message + "; rolling back: " + why.message;
    switch (checked.verdict) {
      case VersionCheck::Verdict::damaged:
        return on_damaged(*good_info, good_manifest, std::move(why), now_ms);
      case VersionCheck::Verdict::no_key:
        // Applied once the key is here, as any fetched version is.
        return wait_for_key(*good_info, good_manifest, std::move(why), now_ms);
      default:
        spdlog::error("{}", why.message);
        status_.set_last_error(why.message.substr(0, 1000));
        return set_state("degraded", now_ms);
    }
  }
  uint32_t good_objects = 0;
  ServiceTally good_tally;
  auto restored =
      apply_bundle(*good_info, good_manifest, checked.secrets, good_objects, good_tally);
  if (!restored) {
    const std::string why = error.message + "; rolling back to " + describe(good_manifest) +
                            " failed too: " + restored.error().message;
    status_.set_last_error(why);
    SOVDEV_TRY(log.record(good_manifest.stack(), good_manifest.version(), good->digest, "failed",
                          restored.error().message));
    return set_state("degraded", now_ms);
  }
  SOVDEV_TRY(log.record(
      good_manifest.stack(), good_manifest.version(), good->digest, "rolled_back",
      "rolled back from version " + std::to_string(manifest.version()) + ": " + error.message));
  spdlog::warn("rolled back to {}", describe(good_manifest));
  // What runs is the last good version; the services the failed one broke say why.
  set_services(manifest.stack(), tally.failures_over(good_tally.health()), &error);
  return set_state("rolled_back", now_ms);
}

}  // namespace sovdev::agent
