#include "hub/rollout/operations.hpp"

#include <algorithm>
#include <set>

#include "bundles/rollout_rules.hpp"
#include "bundles/sign_objects.hpp"
#include "bundles/trust.hpp"
#include "hub/catalog.hpp"
#include "hub/rollout/engine.hpp"
#include "hub/rollout/options.hpp"
#include "platform/store/hub_store.hpp"
#include "platform/store/transaction.hpp"
#include "platform/windows/windows.hpp"

namespace sovdev::hub::rollout {
namespace {

using store::RolloutRow;
using store::RolloutState;

std::string name_of(const std::string& channel, const std::string& stack) {
  return channel + "/" + stack;
}

// The published bundle of a stack's version, or Errc::not_found naming what is published.
Expected<store::VersionEntry> published(store::Database& db, const std::string& channel,
                                        const std::string& stack, std::uint64_t version) {
  SOVDEV_ASSIGN(auto versions, store::HubBundles(db).versions(channel, stack));
  for (const auto& v : versions) {
    if (v.version == version) return v;
  }
  std::string have = versions.empty() ? std::string("none") : std::string();
  for (const auto& v : versions) have += (have.empty() ? "" : ", ") + std::to_string(v.version);
  return make_error(Errc::not_found, name_of(channel, stack) + "@" + std::to_string(version) +
                                         " is not published (published: " + have +
                                         "): publish it first");
}

Expected<std::vector<pb::RolloutWave>> parse_waves(const std::vector<std::string>& given) {
  if (given.empty()) {
    return make_error(Errc::usage, "give at least one --wave NAME:SELECTOR[:PERCENT]");
  }
  std::vector<pb::RolloutWave> waves;
  std::set<std::string> names;
  for (const auto& text : given) {
    auto wave = sovdev::rollout::parse_wave(text);
    if (!wave) return std::move(wave).error().context("--wave " + text);
    if (!names.insert(wave->name()).second) {
      return make_error(Errc::usage, "--wave " + text + ": another wave is named " + wave->name());
    }
    waves.push_back(std::move(*wave));
  }
  return waves;
}

Status check_fits(store::Database& db, const std::string& channel, const std::string& what) {
  SOVDEV_ASSIGN(const pb::Catalog content, catalog_content(db, channel));
  return check_catalog_fits(content, what);
}

// The agents parse a window with the same code (platform/windows): one it cannot read holds
// back their new versions, so the hub never hands out one that does not parse.
Status check_window(const store::HubWindow& w) {
  SOVDEV_TRY(sovdev::rollout::parse_selector(w.selector));
  auto parsed = windows::parse_window(w.deny ? "deny" : "allow", w.schedule, w.duration, w.zone);
  if (!parsed) return make_error(Errc::usage, parsed.error().message);
  return {};
}

}  // namespace

Expected<std::optional<std::uint64_t>> current_version(store::Database& db,
                                                       const std::string& channel,
                                                       const std::string& stack) {
  SOVDEV_ASSIGN(auto hold, store::StackHolds(db).get(channel, stack));
  if (hold) return std::optional<std::uint64_t>(hold->version);
  SOVDEV_ASSIGN(auto newest, store::HubBundles(db).latest(channel, stack));
  if (!newest) return std::optional<std::uint64_t>();
  return std::optional<std::uint64_t>(newest->version);
}

Expected<std::optional<std::uint64_t>> hold_current(store::Database& db, const std::string& channel,
                                                    const std::string& stack, std::int64_t now) {
  return store::transaction(db, [&]() -> Expected<std::optional<std::uint64_t>> {
    SOVDEV_ASSIGN(auto current, current_version(db, channel, stack));
    if (current) SOVDEV_TRY(store::StackHolds(db).set({channel, stack, *current, now}));
    return current;
  });
}

Expected<store::RolloutRow> start_rollout(store::Database& db, const StartRequest& req,
                                          std::int64_t now) {
  RolloutRow row;
  row.channel = req.channel;
  row.stack = req.stack;
  row.version = req.version;
  SOVDEV_ASSIGN(const auto waves, parse_waves(req.waves));
  for (const auto& w : waves) row.waves.push_back({w.name(), w.selector(), w.percent()});
  SOVDEV_ASSIGN(row.success_permille, parse_percent(req.success));
  if (req.within.empty()) return make_error(Errc::usage, "--within is required (e.g. 30m)");
  SOVDEV_ASSIGN(row.within_seconds, parse_duration(req.within));
  if (req.abort_failed.empty()) {
    return make_error(Errc::usage, "--abort-failed is required (e.g. 10% or 3)");
  }
  SOVDEV_ASSIGN(const AbortThreshold threshold, parse_abort_threshold(req.abort_failed));
  row.abort_count = threshold.count;
  row.abort_permille = threshold.permille;
  if (!req.pause_between.empty()) {
    SOVDEV_ASSIGN(row.pause_between, parse_duration(req.pause_between));
  }
  row.rollback_on_abort = req.rollback_on_abort;
  row.ignore_windows = req.ignore_windows;
  row.state = RolloutState::running;
  row.wave_opened_at = now;
  row.created_at = now;
  row.updated_at = now;
  const std::string what =
      "start a rollout of " + name_of(req.channel, req.stack) + "@" + std::to_string(req.version);
  auto started = store::transaction(db, [&]() -> Expected<RolloutRow> {
    SOVDEV_ASSIGN(const store::VersionEntry target,
                  published(db, req.channel, req.stack, req.version));
    row.digest = target.digest;
    SOVDEV_ASSIGN(auto current, current_version(db, req.channel, req.stack));
    if (!current || *current >= req.version) {
      SOVDEV_ASSIGN(auto hold, store::StackHolds(db).get(req.channel, req.stack));
      return make_error(
          Errc::rollback,
          "version " + std::to_string(req.version) + " is already current" +
              (hold ? " (held at " + std::to_string(hold->version) + ")"
                    : " (the newest published, no hold)") +
              ": a rollout needs a version above the current one; publish it with --hold to "
              "keep agents on the one before");
    }
    SOVDEV_ASSIGN(const store::VersionEntry base, published(db, req.channel, req.stack, *current));
    row.base_version = base.version;
    row.base_digest = base.digest;
    SOVDEV_ASSIGN(row.id, store::Rollouts(db).insert(row));
    SOVDEV_TRY(store::StackHolds(db).set({req.channel, req.stack, base.version, now}));
    SOVDEV_TRY(check_fits(db, req.channel, "this rollout"));
    return row;
  });
  if (!started) return std::move(started).error().context(what);
  return started;
}

Expected<store::RolloutRow> change_rollout(store::Database& db, std::uint64_t id, Change change,
                                           std::int64_t now) {
  return store::transaction(db, [&]() -> Expected<RolloutRow> {
    store::Rollouts rollouts(db);
    SOVDEV_ASSIGN(auto found, rollouts.find(id));
    if (!found) {
      return make_error(Errc::not_found, "no rollout " + std::to_string(id) +
                                             " (sovdev-hub rollout list shows them)");
    }
    RolloutRow row = std::move(*found);
    switch (change) {
      case Change::pause: SOVDEV_TRY(pause(row, now)); break;
      case Change::resume: SOVDEV_TRY(resume(row, now)); break;
      case Change::abort: SOVDEV_TRY(abort(row, "aborted by the operator", now)); break;
    }
    SOVDEV_TRY(rollouts.update_progress(row));
    return row;
  });
}

Expected<std::uint64_t> release_hold(store::Database& db, const std::string& channel,
                                     const std::string& stack) {
  return store::transaction(db, [&]() -> Expected<std::uint64_t> {
    SOVDEV_ASSIGN(auto rollout, store::Rollouts(db).newest(channel, stack));
    if (rollout &&
        (rollout->state == RolloutState::running || rollout->state == RolloutState::paused)) {
      return make_error(Errc::conflict, "rollout " + std::to_string(rollout->id) + " of " +
                                            name_of(channel, stack) + " is " +
                                            store::rollout_state_name(rollout->state) +
                                            ": abort it first (sovdev-hub rollout abort " +
                                            std::to_string(rollout->id) + ")");
    }
    store::StackHolds holds(db);
    SOVDEV_ASSIGN(auto hold, holds.get(channel, stack));
    if (!hold) return make_error(Errc::not_found, name_of(channel, stack) + " is not held");
    SOVDEV_TRY(holds.release(channel, stack));
    return hold->version;
  });
}

Expected<pb::RevocationList> stored_revocations(store::Database& db, const std::string& channel) {
  pb::RevocationList list;
  SOVDEV_ASSIGN(auto stored, store::RevocationLists(db).newest(channel));
  if (!stored) {
    list.set_schema(1);
    list.set_channel(channel);
    return list;
  }
  SOVDEV_ASSIGN(const pb::Signed envelope,
                parse_signed(stored->envelope, kTypeRevocations, kMaxCatalogBytes));
  if (!list.ParseFromString(envelope.body())) {
    return make_error(Errc::store, "the stored revocation list of " + channel + " (serial " +
                                       std::to_string(stored->serial) + ") does not parse");
  }
  return list;
}

Expected<pb::RevocationList> revoke_version(store::Database& db, const RevokeRequest& req,
                                            std::int64_t now) {
  if (req.reason.empty()) return make_error(Errc::usage, "--reason is required");
  const std::string what =
      "revoke " + name_of(req.channel, req.stack) + "@" + std::to_string(req.version);
  auto signed_list = store::transaction(db, [&]() -> Expected<pb::RevocationList> {
    SOVDEV_ASSIGN(const store::VersionEntry entry,
                  published(db, req.channel, req.stack, req.version));
    SOVDEV_ASSIGN(pb::RevocationList list, stored_revocations(db, req.channel));
    for (const auto& r : list.revoked()) {
      if (r.manifest_digest() == entry.digest) {
        return make_error(Errc::conflict, "it is revoked already (serial " +
                                              std::to_string(list.serial()) + "): " + r.reason());
      }
    }
    list.set_schema(1);
    list.set_channel(req.channel);
    list.set_serial(list.serial() + 1);
    list.set_issued_at(now);
    pb::RevokedVersion* revoked = list.add_revoked();
    revoked->set_stack(req.stack);
    revoked->set_version(req.version);
    revoked->set_manifest_digest(entry.digest);
    revoked->set_reason(req.reason);
    const std::string envelope = sign_revocations(list, req.keys);
    SOVDEV_TRY(store::RevocationLists(db).put({req.channel, list.serial(), now, envelope}));
    SOVDEV_TRY(check_fits(db, req.channel, "this revocation"));
    return list;
  });
  if (!signed_list) return std::move(signed_list).error().context(what);
  return signed_list;
}

Expected<std::uint64_t> add_window(store::Database& db, store::HubWindow window, std::int64_t now) {
  SOVDEV_TRY(check_window(window));
  // The canonical text: what the agents' parser reads back, whatever spacing was typed.
  SOVDEV_ASSIGN(const auto selector, sovdev::rollout::parse_selector(window.selector));
  window.selector = selector.text();
  window.created_at = now;
  return store::transaction(db, [&]() -> Expected<std::uint64_t> {
    SOVDEV_ASSIGN(const std::uint64_t id, store::HubWindows(db).add(window));
    std::vector<std::string> channels{window.channel};
    if (window.channel.empty()) {
      SOVDEV_ASSIGN(channels, store::HubBundles(db).channels());
    }
    for (const auto& channel : channels) SOVDEV_TRY(check_fits(db, channel, "this window"));
    return id;
  });
}

}  // namespace sovdev::hub::rollout
