#include "agent/rollout/decide.hpp"

#include <algorithm>

namespace sovdev::agent::rollout {
namespace {

std::string name(std::string_view stack, uint64_t version) {
  return std::string(stack) + "@" + std::to_string(version);
}

bool built_for(const pb::CatalogRollout& r, std::string_view arch) {
  return arch.empty() || std::find(r.arch().begin(), r.arch().end(), arch) != r.arch().end();
}

Goal rollout_goal(const pb::CatalogRollout& r) {
  return {GoalKind::rollout, r.version(), r.manifest_digest(), r.id(),
          r.ignore_windows() && r.state() == pb::CatalogRollout::RUNNING};
}

}  // namespace

Decision decide(const pb::CatalogEntry& e, const Inputs& in) {
  Decision d;
  const auto revoked = [&](std::string_view digest) { return in.revoked && in.revoked(digest); };
  const bool has_rollout = e.has_rollout() && e.rollout().id() != 0;
  const pb::CatalogRollout& r = e.rollout();
  const auto& good = in.last_good;
  const bool running_revoked = good && revoked(good->digest);

  // The one way down: to the version this agent held before the rollout, by its own mark.
  if (good && in.mark && in.mark->digest == good->digest && in.mark->prior &&
      !revoked(in.mark->prior->digest)) {
    const bool aborted_with_revert = has_rollout && r.id() == in.mark->rollout_id &&
                                     r.state() == pb::CatalogRollout::ABORTED && r.revert() &&
                                     r.manifest_digest() == good->digest;
    if (aborted_with_revert || running_revoked) {
      d.want = Goal{GoalKind::revert, in.mark->prior->version, in.mark->prior->digest,
                    in.mark->rollout_id, false};
      if (running_revoked) {
        d.note = name(e.stack(), good->version) + " is revoked: going back to " +
                 name(e.stack(), in.mark->prior->version) + ", the version held before rollout " +
                 std::to_string(in.mark->rollout_id);
      }
      return d;
    }
  }
  if (running_revoked) {
    d.note = name(e.stack(), good->version) +
             " is revoked, and no rollout mark names a version to go back to: it keeps running "
             "until a newer version is published";
  }
  if (has_rollout && r.version() > e.version() && !revoked(r.manifest_digest()) &&
      built_for(r, in.arch)) {
    if (sovdev::rollout::admits(r, in.labels, in.agent_id) ||
        (good && good->digest == r.manifest_digest())) {
      d.want = rollout_goal(r);
      return d;
    }
  }
  if (revoked(e.manifest_digest())) {
    if (d.note.empty()) {
      d.note = "the catalog lists " + name(e.stack(), e.version()) +
               ", which is revoked: not fetched nor applied";
    }
    return d;
  }
  d.want = Goal{GoalKind::current, e.version(), e.manifest_digest(), 0, false};
  if (in.prefetch && has_rollout && r.state() == pb::CatalogRollout::RUNNING &&
      r.version() > e.version() && !revoked(r.manifest_digest()) && built_for(r, in.arch) && good &&
      good->digest == e.manifest_digest()) {
    d.prefetch = rollout_goal(r);
  }
  return d;
}

}  // namespace sovdev::agent::rollout
