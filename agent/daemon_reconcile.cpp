// The Daemon's drift correction and its answer to a damaged cache: every reconcile applies
// each stack's last good bundle again, after checking its whole payload; a payload that fails
// the check is dropped and fetched again. Part of daemon.hpp.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "agent/daemon.hpp"
#include "agent/payload_source.hpp"

namespace sovdev::agent {

Status Daemon::reconcile(int64_t now_ms) {
  last_reconcile_ms_ = now_ms;
  store::BundleCache cache(db_);
  store::ApplyLog log(db_);
  SOVDEV_ASSIGN(auto stacks, cached_stacks(cache));
  bool clean = true;
  for (const auto& stack : stacks) {
    // A newer version half applied, to be tried again: the last good would undo its progress.
    if (retries_.count(stack) && retries_.at(stack).apply) continue;
    SOVDEV_ASSIGN(auto good, log.last_good(stack));
    if (!good) continue;
    // Never applied again, drift or not; the status says it still runs (daemon_rollout.cpp).
    if (revoked(good->digest)) continue;
    SOVDEV_ASSIGN(auto info, cache.find(good->digest));
    // Not whole: its payload was dropped as damaged and is being fetched again.
    if (!info || info->state != store::BundleState::verified) continue;
    SOVDEV_ASSIGN(pb::BundleManifest manifest, trust_.verify_manifest(info->envelope, nullptr));
    VersionCheck checked = check(*info, manifest);
    if (checked.verdict == VersionCheck::Verdict::damaged) {
      SOVDEV_TRY(on_damaged(*info, manifest, std::move(checked.error), now_ms));
      continue;
    }
    if (checked.verdict != VersionCheck::Verdict::ok) {
      // Nothing reached the target. A missing key is asked for by fetching the version again
      // (applied once it is here), unless another version of the stack is under way.
      Error why = std::move(checked.error).context("reconcile");
      reconcile_error_ = why;
      clean = false;
      if (checked.verdict == VersionCheck::Verdict::no_key && !retries_.count(stack)) {
        SOVDEV_TRY(wait_for_key(*info, manifest, std::move(why), now_ms));
        continue;
      }
      spdlog::error("{}", why.message);
      status_.set_last_error(why.message.substr(0, 1000));
      SOVDEV_TRY(set_state("degraded", now_ms));
      continue;
    }
    uint32_t objects = 0;
    ServiceTally tally;
    auto applied = apply_bundle(*info, manifest, checked.secrets, objects, tally);
    if (status_.environment().empty()) status_.set_environment(manifest.environment());
    set_services(stack, tally.health(), applied ? nullptr : &applied.error());
    if (!applied) {
      // The cluster drifted in a way the last good bundle cannot fix (or the API is down):
      // say so; the next reconcile tries again.
      spdlog::error("reconcile: {}", applied.error().message);
      status_.set_last_error("reconcile: " + applied.error().message);
      reconcile_error_ = applied.error().context("reconcile");
      clean = false;
      if (auto logged = log.record(stack, manifest.version(), good->digest, "failed",
                                   "reconcile: " + applied.error().message);
          !logged) {
        spdlog::warn("{}", logged.error().message);  // a full disk: the status still says it
      }
      SOVDEV_TRY(set_state("degraded", now_ms));
      continue;
    }
    // Every pass says what it found; the apply history (bounded) keeps only the passes that
    // changed something, so a quiet week does not push the real applies out of it.
    const std::string drift = target::drift_summary(*applied, objects);
    spdlog::info("reconcile {}: {}", describe(manifest), drift);
    if ((applied->changes_known && applied->applied > 0) || applied->pruned > 0) {
      SOVDEV_TRY(log.record(stack, manifest.version(), good->digest, "reconciled", drift));
    }
    if (status_.state() == "degraded" && !failure_ && !waiting_for_key()) {
      status_.clear_last_error();
      SOVDEV_TRY(set_state("healthy", now_ms));
    }
  }
  if (clean) reconcile_error_.reset();
  return {};
}

Status Daemon::on_damaged(const store::BundleInfo& info, const pb::BundleManifest& manifest,
                          Error error, int64_t now_ms) {
  spdlog::error("{}", error.message);
  SOVDEV_TRY(store::ApplyLog(db_).record(manifest.stack(), manifest.version(), info.digest,
                                         "damaged", error.message));
  status_.set_last_error(error.message);
  failure_ = std::move(error);
  // Fetched again by its digest (the hub keeps what it published) and applied as any fetch,
  // unless a goal for the stack is under way already.
  const auto same_stack = [&](const FetchGoal& g) { return g.stack == manifest.stack(); };
  if (!(fetch_ && same_stack(fetch_->goal())) &&
      std::none_of(queue_.begin(), queue_.end(), same_stack)) {
    queue_.push_back(FetchGoal{manifest.stack(), manifest.version(), info.digest, std::nullopt});
  }
  SOVDEV_TRY(set_state("degraded", now_ms));
  return next_fetch(now_ms);
}

}  // namespace sovdev::agent
