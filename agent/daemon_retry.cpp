// The Daemon's failures and second tries: which apply errors are the bundle's fault (recorded,
// never tried again by itself) and which are the moment's (tried again with backoff), the
// fetches a full disk stopped, and what `sync --once` reports. Part of daemon.hpp.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "agent/daemon.hpp"
#include "bundles/hash.hpp"
#include "platform/store/failed_bundles.hpp"

namespace sovdev::agent {
namespace {

// Not a verdict on the bundle: the API server did not answer (connection refused, timeout,
// 5xx after the client's own retries), or the agent's own disk or cache failed. An exec
// command's exit status cannot tell a refused manifest from an unreachable API server, so
// every exec failure counts as the bundle's, as a failed health gate does.
bool transient(const Error& e, const std::string& target_kind) {
  if (e.code == Errc::io || e.code == Errc::store) return true;
  return e.code == Errc::unavailable && target_kind != "exec";
}

}  // namespace

void Daemon::set_heartbeat(std::function<void()> heartbeat) {
  heartbeat_ = heartbeat;
  target_.set_heartbeat(std::move(heartbeat));
}

void Daemon::heartbeat(int64_t now_ms) {
  if (settings_.status_interval_ms > 0 &&
      now_ms - last_status_ms_ >= settings_.status_interval_ms) {
    (void)publish_status(now_ms);
  }
}

void Daemon::note_error(const Error& error, int64_t now_ms) {
  spdlog::error("{}", error.message);
  status_.set_last_error(error.message.substr(0, 1000));
  if (status_.state() != "degraded") {
    (void)set_state("degraded", now_ms);
  } else {
    (void)publish_status(now_ms);
  }
}

std::optional<Error> Daemon::unmet() const {
  if (failure_) return failure_;
  if (auto waiting = waiting_for_key()) return waiting;
  if (reconcile_error_) {
    if (transient(*reconcile_error_, settings_.target_kind)) return reconcile_error_;
    return Error{Errc::unhealthy, reconcile_error_->message};
  }
  if (!behind_.empty()) return make_error(Errc::unhealthy, behind_.begin()->second);
  // A version held by a closed maintenance window: fetched, applied when it opens.
  if (!window_waits_.empty()) return make_error(Errc::unavailable, status_.state());
  return std::nullopt;
}

bool Daemon::retry_if_transient(const pb::BundleManifest& manifest, const std::string& digest,
                                const Error& error, int64_t now_ms) {
  if (!transient(error, settings_.target_kind)) return false;
  Retry& r = retries_[manifest.stack()];
  const bool again = r.apply && r.goal.digest == digest;
  r.goal = {manifest.stack(), manifest.version(), digest, std::nullopt};
  r.apply = true;
  r.delay_ms = again
                   ? std::min(settings_.fetch.backoff_max_ms, std::max<int64_t>(1, r.delay_ms) * 2)
                   : settings_.fetch.backoff_min_ms;
  r.due_ms = now_ms + r.delay_ms;
  const std::string why = error.message + " (not the bundle's fault: trying again in " +
                          std::to_string(r.delay_ms / 1000) + " s)";
  spdlog::warn("{}", why);
  if (auto logged =
          store::ApplyLog(db_).record(manifest.stack(), manifest.version(), digest, "failed", why);
      !logged) {
    spdlog::warn("{}", logged.error().message);
  }
  failure_ = error;
  status_.set_last_error(why.substr(0, 1000));
  return true;
}

void Daemon::record_failed(const pb::BundleManifest& manifest, const std::string& digest,
                           const Error& error, int64_t now_ms) {
  failure_ = Error{Errc::unhealthy, error.message};
  status_.set_last_error(error.message);
  retries_.erase(manifest.stack());
  auto stored = store::FailedBundles(db_).add(
      {digest, manifest.stack(), manifest.version(), error.message, now_ms / 1000});
  if (!stored) {
    // Kept in memory at least: this run does not try it again.
    spdlog::warn("{}", stored.error().message);
    failed_.insert(digest);
  }
}

bool Daemon::failed_before(const std::string& digest) {
  if (failed_.count(digest)) return true;
  auto found = store::FailedBundles(db_).find(digest);
  if (!found) {
    spdlog::warn("{}", found.error().message);
    return false;
  }
  return found->has_value();
}

int64_t Daemon::retry_fetch(FetchGoal goal, int64_t now_ms) {
  Retry& r = retries_[goal.stack];
  const bool again = !r.apply && r.goal.digest == goal.digest;
  r.delay_ms = again
                   ? std::min(settings_.fetch.backoff_max_ms, std::max<int64_t>(1, r.delay_ms) * 2)
                   : settings_.fetch.backoff_min_ms;
  r.goal = std::move(goal);
  r.apply = false;
  r.due_ms = now_ms + r.delay_ms;
  return r.delay_ms;
}

Status Daemon::run_retries(int64_t now_ms) {
  if (fetch_) return {};
  std::vector<std::string> due;
  for (const auto& [stack, r] : retries_) {
    if (r.due_ms <= now_ms) due.push_back(stack);
  }
  for (const auto& stack : due) {
    auto it = retries_.find(stack);
    if (it == retries_.end()) continue;
    if (it->second.apply) {
      // Success or a failure for good erases the entry, a transient failure doubles the wait;
      // an error that stops apply() itself leaves this: the same wait again.
      it->second.due_ms = now_ms + it->second.delay_ms;
      spdlog::info("applying {}@{} again", stack, it->second.goal.version);
      const std::string digest = it->second.goal.digest;
      SOVDEV_TRY(apply(digest, now_ms));
      continue;
    }
    it->second.due_ms = INT64_MAX;  // fetching; after_fetch reschedules or erases it
    // A fetch: back into the queue; the goal stays listed until it finishes or fails again.
    FetchGoal goal = it->second.goal;
    SOVDEV_ASSIGN(auto good, store::ApplyLog(db_).last_good(stack));
    goal.base = good;
    queue_.push_back(std::move(goal));
  }
  SOVDEV_TRY(next_fetch(now_ms));
  return {};
}

}  // namespace sovdev::agent
