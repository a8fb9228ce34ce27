// The Daemon's part in staged rollouts (docs/design-rollouts.md, "Agent"): which version of
// each entry it runs (rollout::decide), the rollout marks written before a rollout's version is
// applied and used once for a revert, the targets-signed revocation lists, the maintenance
// windows' gate, and what the status says of all that. Part of daemon.hpp.
#include <algorithm>
#include <ctime>

#include <spdlog/spdlog.h>

#include "agent/daemon.hpp"
#include "platform/store/failed_bundles.hpp"
#include "platform/store/rollout_marks.hpp"

namespace sovdev::agent {
namespace {

// A gate that cannot say when it opens is asked again this often.
constexpr int64_t kWindowRecheckMs = 60'000;

// "2026-12-07 14:00 CET": the agent's local time, as the site's people read it.
std::string local_time(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (localtime_r(&t, &tm) == nullptr) return std::to_string(unix_seconds);
  char text[64];
  if (std::strftime(text, sizeof text, "%Y-%m-%d %H:%M %Z", &tm) == 0) {
    return std::to_string(unix_seconds);
  }
  return text;
}

std::string describe_version(const std::string& stack, uint64_t version) {
  return stack + "@" + std::to_string(version);
}

}  // namespace

Expected<rollout::Decision> Daemon::decide(const pb::CatalogEntry& e,
                                           const std::optional<store::LastGood>& good) {
  std::optional<rollout::Held> held;
  std::optional<rollout::OpenMark> mark;
  if (good) {
    held = rollout::Held{good->version, good->digest};
    SOVDEV_ASSIGN(auto open, store::RolloutMarks(db_).find_open(e.stack(), good->digest));
    if (open) {
      mark = rollout::OpenMark{open->rollout_id, open->digest, std::nullopt};
      if (open->prior) mark->prior = rollout::Held{open->prior->version, open->prior->digest};
    }
  }
  const rollout::Inputs in{settings_.labels,
                           settings_.fetch.agent_id,
                           settings_.fetch.install.arch,
                           held,
                           mark,
                           [this](std::string_view d) { return revoked(d); },
                           settings_.prefetch};
  rollout::Decision d = rollout::decide(e, in);
  if (d.want) {
    goals_[e.stack()] = *d.want;
    // Admitted now: a prefetch of this version becomes the real fetch.
    prefetch_.erase(d.want->digest);
  } else {
    goals_.erase(e.stack());
  }
  if (d.note.empty()) {
    revocation_notes_.erase(e.stack());
  } else if (revocation_notes_[e.stack()] != d.note) {
    revocation_notes_[e.stack()] = d.note;
    spdlog::warn("{}", d.note);
    status_.set_last_error(d.note.substr(0, 1000));
    note_unpublished_ = true;
  }
  return d;
}

void Daemon::queue_prefetch(const std::string& stack, const rollout::Goal& goal,
                            const std::optional<store::LastGood>& good) {
  const auto same_stack = [&](const FetchGoal& g) { return g.stack == stack; };
  if ((fetch_ && same_stack(fetch_->goal())) ||
      std::any_of(queue_.begin(), queue_.end(), same_stack) || retries_.count(stack)) {
    return;
  }
  store::BundleCache cache(db_);
  auto cached = cache.find(goal.digest);
  if (!cached) {
    spdlog::warn("prefetch {}: {}", describe_version(stack, goal.version), cached.error().message);
    return;
  }
  if (*cached && (*cached)->state == store::BundleState::verified) return;  // held already
  if (failed_before(goal.digest)) return;
  spdlog::info("prefetching {} (rollout {}): fetched now, applied once a wave admits this agent",
               describe_version(stack, goal.version), goal.rollout_id);
  prefetch_.insert(goal.digest);
  queue_.push_back(FetchGoal{stack, goal.version, goal.digest, good});
}

void Daemon::take_revocations(const pb::Catalog& catalog, int64_t now_ms) {
  if (catalog.revocations().empty()) return;
  auto list = trust_.verify_revocations(catalog.revocations());
  if (!list) {
    reject("revocations in catalog " + catalog.channel() + ": " + list.error().message);
    return;
  }
  if (list->channel() != catalog.channel()) {
    reject("revocations for channel " + list->channel() + " in the catalog of " +
           catalog.channel());
    return;
  }
  const auto held = revocations_.find(catalog.channel());
  if (held != revocations_.end() && held->second.serial() >= list->serial()) return;
  auto kept = store::RevocationCache(db_).put(
      {catalog.channel(), list->serial(), catalog.revocations(), now_ms / 1000});
  if (!kept && kept.error().code == Errc::rollback) {
    reject("revocations " + catalog.channel() + ": " + kept.error().message);
    return;
  }
  // Not kept (a full disk): followed in this run all the same; a revocation only refuses more.
  if (!kept) spdlog::warn("{}", kept.error().message);
  spdlog::info("revocation list {} serial {}: {} versions revoked", catalog.channel(),
               list->serial(), list->revoked_size());
  revocations_[catalog.channel()] = std::move(*list);
}

Status Daemon::load_revocations() {
  store::RevocationCache lists(db_);
  for (const auto& channel : settings_.channels) {
    SOVDEV_ASSIGN(auto record, lists.get(channel));
    if (!record) continue;
    auto list = trust_.verify_revocations(record->envelope);
    // Kept after verifying; a root rotated since may not vouch for it any more.
    if (!list) {
      spdlog::warn("cached revocations of {}: {}", channel, list.error().message);
      continue;
    }
    revocations_[channel] = std::move(*list);
  }
  return {};
}

bool Daemon::revoked(std::string_view digest) const {
  for (const auto& [channel, list] : revocations_) {
    for (const auto& r : list.revoked()) {
      if (r.manifest_digest() == digest) return true;
    }
  }
  return false;
}

Expected<bool> Daemon::before_apply(const pb::BundleManifest& m, const std::string& digest,
                                    int64_t now_ms) {
  const std::string what = describe(m);
  if (revoked(digest)) {
    const std::string why = what + " is revoked: not applied";
    spdlog::error("{}", why);
    status_.set_last_error(why);
    SOVDEV_TRY(set_state("degraded", now_ms));
    return false;
  }
  SOVDEV_ASSIGN(auto good, store::ApplyLog(db_).last_good(m.stack()));
  const auto goal = goals_.find(m.stack());
  const bool for_goal = goal != goals_.end() && goal->second.digest == digest;
  const bool ignore_windows = for_goal && goal->second.ignore_windows;
  if (settings_.window_gate && !(good && good->digest == digest) && !ignore_windows) {
    // The catalog's windows that name this agent; a selector that does not parse names nobody.
    std::vector<pb::MaintenanceWindow> mine;
    for (const auto& [channel, windows] : windows_) {
      for (const auto& w : windows) {
        auto selector = sovdev::rollout::parse_selector(w.selector());
        if (selector && selector->matches(settings_.labels, settings_.fetch.agent_id)) {
          mine.push_back(w);
        }
      }
    }
    const rollout::WindowVerdict verdict = settings_.window_gate->at(now_ms / 1000, mine);
    if (!verdict.open) {
      const int64_t due =
          verdict.opens_at > 0 ? verdict.opens_at * 1000 : now_ms + kWindowRecheckMs;
      const bool again =
          window_waits_.count(m.stack()) && window_waits_.at(m.stack()).digest == digest;
      window_waits_[m.stack()] = {digest, std::max(due, now_ms + 1000)};
      const std::string state =
          "waiting for window (opens " +
          (verdict.opens_at > 0 ? local_time(verdict.opens_at) : std::string("unknown")) + ")";
      if (!again) spdlog::info("{}: fetched, {}", what, state);
      status_.set_window_opens_at(verdict.opens_at);
      status_.set_window_digest(digest);
      status_.set_fetching_version(0);
      SOVDEV_TRY(set_state(state, now_ms));
      return false;
    }
  }
  window_waits_.erase(m.stack());
  status_.set_window_opens_at(0);
  status_.clear_window_digest();
  if (for_goal && goal->second.kind == rollout::GoalKind::rollout) {
    store::RolloutMark mark;
    mark.stack = m.stack();
    mark.rollout_id = goal->second.rollout_id;
    mark.channel = m.channel();
    mark.version = m.version();
    mark.digest = digest;
    if (good && good->digest != digest) mark.prior = *good;
    mark.marked_at = now_ms / 1000;
    // Without the mark there would be no way back if the rollout is aborted: no apply.
    SOVDEV_ASSIGN(const bool recorded, store::RolloutMarks(db_).record(mark));
    if (recorded) {
      spdlog::info("rollout {}: {} marked, pre-rollout last good {}", mark.rollout_id, what,
                   mark.prior ? describe_version(m.stack(), mark.prior->version) : "none");
    }
  }
  return true;
}

Status Daemon::after_apply(const pb::BundleManifest& m, const std::string& digest, int64_t now_ms) {
  store::RolloutMarks marks(db_);
  const auto goal = goals_.find(m.stack());
  if (goal != goals_.end() && goal->second.digest == digest &&
      goal->second.kind == rollout::GoalKind::revert) {
    // Used once: the same rollout in a later catalog cannot send the agent down again.
    SOVDEV_ASSIGN(const bool closed,
                  marks.close(m.stack(), goal->second.rollout_id, "reverted", now_ms / 1000));
    if (closed) {
      spdlog::warn("rollout {}: reverted to {}, the version held before it",
                   goal->second.rollout_id, describe(m));
    }
  }
  SOVDEV_ASSIGN(const int64_t superseded, marks.supersede(m.stack(), digest, now_ms / 1000));
  if (superseded > 0) spdlog::debug("{} rollout marks of {} closed", superseded, m.stack());
  revocation_notes_.erase(m.stack());
  return {};
}

void Daemon::drop_window_wait(const std::string& stack, int64_t now_ms) {
  if (window_waits_.erase(stack) == 0) return;
  status_.set_window_opens_at(0);
  status_.clear_window_digest();
  if (window_waits_.empty() && status_.state().rfind("waiting for window", 0) == 0) {
    (void)set_state(failure_ ? "degraded" : "healthy", now_ms);
  }
}

Status Daemon::run_window_waits(int64_t now_ms) {
  std::vector<std::string> due;
  for (const auto& [stack, wait] : window_waits_) {
    if (wait.due_ms <= now_ms) due.push_back(wait.digest);
  }
  for (const auto& digest : due) SOVDEV_TRY(apply(digest, now_ms));
  return {};
}

Expected<bool> Daemon::held_back_offline(const store::BundleInfo& newest) {
  SOVDEV_ASSIGN(auto record, store::CatalogCache(db_).get(newest.channel));
  if (!record) return false;
  auto catalog = trust_.verify_catalog(record->envelope);
  if (!catalog) return false;
  for (const auto& e : catalog->entries()) {
    if (e.stack() != newest.stack || e.rollout().manifest_digest() != newest.digest) continue;
    SOVDEV_ASSIGN(auto good, store::ApplyLog(db_).last_good(newest.stack));
    SOVDEV_ASSIGN(const rollout::Decision d, decide(e, good));
    if (d.want && d.want->digest == newest.digest) return false;
    spdlog::info("{}@{} is the version of rollout {}, which does not admit this agent: not applied",
                 newest.stack, newest.version, e.rollout().id());
    return true;
  }
  return false;
}

void Daemon::refresh_rollout_status() {
  auto& labels = *status_.mutable_labels();
  labels.clear();
  for (const auto& [key, value] : settings_.labels) labels[key] = value;
  // The newest version that failed here: what the hub's gates count against a rollout.
  status_.clear_failed_digest();
  status_.set_failed_version(0);
  if (auto failed = store::FailedBundles(db_).list(); failed) {
    for (const auto& f : *failed) {
      if (f.version >= status_.failed_version()) {
        status_.set_failed_version(f.version);
        status_.set_failed_digest(f.digest);
      }
    }
  } else {
    spdlog::debug("status: failed bundles: {}", failed.error().message);
  }
  status_.set_rollout_id(0);
  if (!status_.applied_digest().empty()) {
    auto open = store::RolloutMarks(db_).find_open(status_.stack(), status_.applied_digest());
    if (open && *open) status_.set_rollout_id((*open)->rollout_id);
  }
  if (!revocation_notes_.empty() && status_.last_error().empty()) {
    status_.set_last_error(revocation_notes_.begin()->second.substr(0, 1000));
  }
}

}  // namespace sovdev::agent
