#include "agent/daemon.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "agent/delta_rebuild.hpp"
#include "agent/payload_source.hpp"
#include "bundles/hash.hpp"
#include "bundles/messages.hpp"
#include "bundles/trust.hpp"
#include "common/text.hpp"
#include "platform/proc/memory.hpp"
#include "platform/store/failed_bundles.hpp"
#include "platform/store/image_blobs.hpp"
#include "platform/store/rollout_marks.hpp"

namespace sovdev::agent {
namespace {

// A burst of hostile messages reaches the hub's view within this, without a status per message.
constexpr int64_t kRejectReportMs = 10000;
// How often the MQTT client's drop counters are looked at. Its thread throws oversize messages
// away without waking ours, so a flood of nothing else would otherwise wait for the next
// status (an hour) to be seen; one look every 10 s costs an idle agent nothing measurable.
constexpr int64_t kLossCheckMs = 10000;

}  // namespace

Daemon::Daemon(store::Database& db, const TrustPolicy& trust, mqtt::Client& client,
               target::Target& target, DaemonSettings settings)
    : db_(db), trust_(trust), client_(client), target_(target), settings_(std::move(settings)) {
  // One key for both uses: the fetch checks a grant opens with it, the apply opens with it.
  settings_.fetch.agent_key = settings_.agent_key.get();
  status_.set_schema(1);
  status_.set_agent_id(settings_.fetch.agent_id);
  status_.set_channel(settings_.channels.empty() ? "" : settings_.channels.front());
  status_.set_agent_version(settings_.agent_version);
  status_.set_state("idle");
  for (const auto& c : settings_.channels) fresh_[c] = false;
}

Status Daemon::start(int64_t now_ms) {
  last_loss_check_ms_ = now_ms;
  // A rebuild killed half-way leaves its temporary files behind.
  SOVDEV_TRY(remove_stale_rebuild_files(settings_.fetch.work_dir));
  SOVDEV_TRY(remove_stale_delta_files(db_, settings_.fetch.work_dir));
  if (auto swept = store::BundleCache(db_).sweep_payloads(); !swept) {
    spdlog::warn("payload files left over were not checked: {}", swept.error().message);
  } else if (*swept > 0) {
    spdlog::info("removed {} payload files no cached bundle owns", *swept);
  }
  // Image blob files no row owns (a crash between a removal's commit and its unlink).
  if (auto swept = store::ImageBlobs(db_).sweep(); !swept) {
    spdlog::warn("image blob files left over were not checked: {}", swept.error().message);
  } else if (*swept > 0) {
    spdlog::info("removed {} image blob files no row owns", *swept);
  }
  // A mark keeps its prior bundle in the cache: closed first, or the forgetting is refused.
  SOVDEV_TRY(store::RolloutMarks(db_).close_other_channels(settings_.channels, now_ms / 1000));
  SOVDEV_TRY(load_revocations());
  SOVDEV_ASSIGN(auto forgotten, store::BundleCache(db_).forget_other_channels(settings_.channels));
  for (const auto& f : forgotten) {
    spdlog::warn("forgot cached {}: not a channel this agent follows", f);
  }
  const auto& prefix = settings_.fetch.prefix;
  for (const auto& channel : settings_.channels) {
    SOVDEV_TRY(client_.subscribe(prefix + "/catalog/" + channel, 1));
  }
  SOVDEV_TRY(client_.subscribe(prefix + "/agent/" + settings_.fetch.agent_id + "/data", 1));
  // What is applied already, so the first status says so.
  store::ApplyLog log(db_);
  store::BundleCache cache(db_);
  SOVDEV_ASSIGN(auto bundles, cache.list());
  for (const auto& b : bundles) {
    SOVDEV_ASSIGN(auto good, log.last_good(b.stack));
    if (good && good->digest == b.digest) {
      status_.set_stack(b.stack);
      status_.set_applied_version(good->version);
      status_.set_applied_digest(good->digest);
    }
  }
  SOVDEV_TRY(publish_status(now_ms));
  return plan_from_cache(now_ms);
}

Status Daemon::plan_from_cache(int64_t now_ms) {
  // Killed while applying, or restarted without a hub: what the cached catalogs list and the
  // cache holds verified is applied now, without waiting for the broker.
  store::CatalogCache catalogs(db_);
  for (const auto& channel : settings_.channels) {
    SOVDEV_ASSIGN(auto record, catalogs.get(channel));
    if (!record) continue;
    auto catalog = trust_.verify_catalog(record->envelope);
    if (!catalog || catalog->channel() != channel) continue;
    if (!check_catalog_fresh(*catalog, now_ms / 1000)) continue;
    SOVDEV_TRY(plan(*catalog, now_ms));
  }
  return {};
}

void Daemon::check_losses(int64_t now_ms) {
  last_loss_check_ms_ = now_ms;
  const mqtt::Stats stats = client_.stats();
  if (stats.oversize > seen_oversize_) {
    // The limits are the ones cmd_run.cpp gives the client for each topic the agent hears.
    spdlog::warn(
        "ignored: {} messages dropped on arrival for their size (a catalog over the {}-byte "
        "limit, or a data message over the {}-byte limit), {} since start",
        stats.oversize - seen_oversize_, kMaxCatalogBytes, kMaxFetchResponseBytes, stats.oversize);
    rejected_unreported_ = true;
  }
  if (stats.dropped > seen_dropped_) {
    spdlog::warn(
        "{} messages dropped with the receive queue full (a fetch asks again), {} since "
        "start",
        stats.dropped - seen_dropped_, stats.dropped);
    rejected_unreported_ = true;
  }
  seen_oversize_ = stats.oversize;
  seen_dropped_ = stats.dropped;
}

void Daemon::reject(const std::string& what) {
  rejected_++;
  rejected_unreported_ = true;
  status_.set_rejected_messages(rejected_);
  spdlog::warn("ignored: {}", escape_control(what));
}

Status Daemon::flush(int64_t now_ms) {
  if (images_) {
    SOVDEV_TRY(guard_images(images_->flush(now_ms)));
    SOVDEV_TRY(after_images(now_ms));
  }
  if (!fetch_) return {};
  SOVDEV_TRY(guard_fetch(fetch_->flush(now_ms)));
  return after_fetch(now_ms);
}

Status Daemon::handle(const mqtt::Event& event, int64_t now_ms) {
  const bool data = event.kind == mqtt::Event::Kind::message &&
                    event.message.topic ==
                        settings_.fetch.prefix + "/agent/" + settings_.fetch.agent_id + "/data";
  // Only data joins a batch of uncommitted chunks; everything else may end the fetch.
  if (!data) SOVDEV_TRY(flush(now_ms));
  if (event.kind == mqtt::Event::Kind::connected) {
    spdlog::info("connected to the broker");
    if (fetch_) SOVDEV_TRY(guard_fetch(fetch_->on_reconnect(now_ms)));
    if (images_) SOVDEV_TRY(guard_images(images_->on_reconnect(now_ms)));
    return publish_status(now_ms);
  }
  if (event.kind == mqtt::Event::Kind::connection_lost) {
    spdlog::warn("connection to the broker lost: {}", event.reason);
    return {};
  }
  const auto& m = event.message;
  const std::string catalog_head = settings_.fetch.prefix + "/catalog/";
  if (m.topic.compare(0, catalog_head.size(), catalog_head) == 0) {
    return on_catalog(m.topic.substr(catalog_head.size()), m, now_ms);
  }
  if (m.topic == settings_.fetch.prefix + "/agent/" + settings_.fetch.agent_id + "/data") {
    return on_data(m, now_ms);
  }
  reject("message on unexpected topic " + m.topic.substr(0, 128));
  return {};
}

Status Daemon::on_catalog(const std::string& channel, const mqtt::Message& m, int64_t now_ms) {
  if (!fresh_.count(channel)) return {};
  auto catalog = trust_.verify_catalog(m.payload);
  if (!catalog) {
    reject("catalog on " + channel + ": " + catalog.error().message);
    return {};
  }
  if (catalog->channel() != channel) {
    reject("catalog for channel " + catalog->channel() + " published on " + channel);
    return {};
  }
  store::CatalogCache catalogs(db_);
  auto stored = catalogs.put({channel, catalog->serial(), m.payload.str(), now_ms / 1000});
  if (!stored && (stored.error().code == Errc::io || stored.error().code == Errc::store)) {
    // A full disk: the catalog is verified, so it is followed; only a restart without a broker
    // misses it.
    spdlog::warn("catalog {} serial {} not cached: {}", channel, catalog->serial(),
                 stored.error().message);
  } else if (!stored) {
    // An older catalog replayed after a newer one, or two catalogs with one serial.
    reject("catalog " + channel + " serial " + std::to_string(catalog->serial()) + ": " +
           stored.error().message);
    return {};
  }
  if (auto fresh = check_catalog_fresh(*catalog, now_ms / 1000); !fresh) {
    // The cached stack keeps running; only new installs wait for a re-signed catalog.
    status_.set_last_error(fresh.error().message);
    spdlog::warn("{}", fresh.error().message);
    return publish_status(now_ms);
  }
  fresh_[channel] = true;
  return plan(*catalog, now_ms);
}

Status Daemon::plan(const pb::Catalog& catalog, int64_t now_ms) {
  store::BundleCache cache(db_);
  store::ApplyLog log(db_);
  take_revocations(catalog, now_ms);
  windows_[catalog.channel()].assign(catalog.windows().begin(), catalog.windows().end());
  for (const auto& e : catalog.entries()) {
    if (!settings_.stacks.empty() && std::find(settings_.stacks.begin(), settings_.stacks.end(),
                                               e.stack()) == settings_.stacks.end()) {
      continue;
    }
    const auto& arch = settings_.fetch.install.arch;
    if (std::find(e.arch().begin(), e.arch().end(), arch) == e.arch().end()) {
      spdlog::warn("{}@{} is not built for {}: skipped", e.stack(), e.version(), arch);
      continue;
    }
    SOVDEV_ASSIGN(auto good, log.last_good(e.stack()));
    // The entry's version, a rollout's, or the revert to the pre-rollout last good.
    SOVDEV_ASSIGN(const rollout::Decision decision, decide(e, good));
    if (good) {
      // A last good bundle whose payload was dropped as damaged is fetched again, in full.
      SOVDEV_ASSIGN(auto good_info, cache.find(good->digest));
      if (!good_info || good_info->state != store::BundleState::verified) good.reset();
    }
    if (!decision.want) continue;  // every version it names is revoked
    const rollout::Goal& want = *decision.want;
    if (good && good->digest == want.digest) {
      behind_.erase(e.stack());
      drop_window_wait(e.stack(), now_ms);
      if (decision.prefetch) queue_prefetch(e.stack(), *decision.prefetch, good);
      continue;
    }
    if (auto w = window_waits_.find(e.stack()); w != window_waits_.end()) {
      if (w->second.digest == want.digest) continue;  // applied when its window opens
      drop_window_wait(e.stack(), now_ms);
    }
    if (failed_before(want.digest)) {
      // Rolled back from (in this run or an earlier one): wait for a newer one, or `retry`.
      const std::string why = e.stack() + "@" + std::to_string(want.version) +
                              " failed here and is not tried again (sovdev-agent retry clears it)";
      if (behind_[e.stack()] != why) spdlog::warn("{}", why);
      behind_[e.stack()] = why;
      continue;
    }
    behind_.erase(e.stack());
    if (auto r = retries_.find(e.stack()); r != retries_.end()) {
      if (r->second.goal.digest == want.digest) continue;  // tried again when due
      retries_.erase(r);                                   // a newer one replaces it
    }
    SOVDEV_ASSIGN(auto highest, cache.highest_verified(catalog.channel(), e.stack()));
    // Never go down, but for the revert to this agent's own pre-rollout last good.
    if (highest && highest->version > want.version && want.kind != rollout::GoalKind::revert) {
      continue;
    }
    if (fetch_ && fetch_->goal().stack == e.stack()) {
      if (fetch_->goal().digest == want.digest) continue;
      // A newer version was published while fetching: skip the intermediate one.
      fetch_.reset();
    }
    if (images_ && images_->manifest().stack() == e.stack()) {
      if (images_->digest() == want.digest) continue;
      images_.reset();  // the same for its images; what they hold is collected later
    }
    queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                                [&](const FetchGoal& g) { return g.stack == e.stack(); }),
                 queue_.end());
    FetchGoal goal{e.stack(), want.version, want.digest, good};
    queue_.push_back(std::move(goal));
  }
  if (note_unpublished_) {
    note_unpublished_ = false;
    SOVDEV_TRY(publish_status(now_ms));
  }
  return next_fetch(now_ms);
}

Status Daemon::next_fetch(int64_t now_ms) {
  while (!fetch_ && !images_ && !queue_.empty()) {
    FetchGoal goal = std::move(queue_.front());
    queue_.pop_front();
    fetch_ = std::make_unique<BundleFetch>(db_, trust_, client_, settings_.fetch, counters_, goal);
    fetch_started_ms_ = now_ms;
    fetch_start_bytes_ = counters_.bytes_received;
    fetch_start_cpu_ = proc::cpu_seconds();
    status_.set_fetching_version(goal.version);
    SOVDEV_TRY(set_state("fetching", now_ms));
    SOVDEV_TRY(guard_fetch(fetch_->start(now_ms)));
    SOVDEV_TRY(after_fetch(now_ms));
  }
  return {};
}

Status Daemon::on_data(const mqtt::Message& m, int64_t now_ms) {
  auto resp = parse_fetch_response(m.payload);
  if (!resp) {
    reject("data message: " + resp.error().message);
    return {};
  }
  const uint64_t ignored = counters_.ignored_responses;
  if (!resp->blob().empty()) {
    // An image blob's answer that comes after its images are held is stale, not hostile.
    if (!images_) return {};
    SOVDEV_TRY(guard_images(images_->on_response(*resp, now_ms)));
    if (counters_.ignored_responses != ignored) reject("data message: " + counters_.last_ignored);
    return after_images(now_ms);
  }
  if (!fetch_ || resp->manifest_digest() != fetch_->goal().digest) return {};  // stale
  SOVDEV_TRY(guard_fetch(fetch_->on_response(*resp, now_ms)));
  // A forged answer (another bundle's manifest, a bad signature) is counted and the fetch
  // goes on: anyone on the broker could otherwise stop it until the next catalog.
  if (counters_.ignored_responses != ignored) reject("data message: " + counters_.last_ignored);
  return after_fetch(now_ms);
}

Status Daemon::guard_fetch(Status step) {
  if (step || !fetch_) return step;
  if (step.error().code != Errc::io && step.error().code != Errc::store) return step;
  return fetch_->storage_failed(step.error());
}

Status Daemon::after_fetch(int64_t now_ms) {
  if (!fetch_) return {};
  status_.set_progress_permille(fetch_->progress_permille());
  status_.set_bytes_fetched(counters_.bytes_received);
  if (fetch_->phase() == BundleFetch::Phase::failed && prefetch_.erase(fetch_->goal().digest)) {
    // Only a head start: the agent runs what it ran, and the next plan asks again.
    spdlog::warn("prefetch {}@{}: {}", fetch_->goal().stack, fetch_->goal().version,
                 fetch_->error());
    fetch_.reset();
    status_.set_fetching_version(0);
    SOVDEV_TRY(set_state(failure_ ? "degraded" : "healthy", now_ms));
    return next_fetch(now_ms);
  }
  if (fetch_->phase() == BundleFetch::Phase::failed) {
    failure_ = make_error(fetch_->error_code(), fetch_->error());
    status_.set_last_error(fetch_->error());
    // A full disk is not the bundle's fault: the fetch starts over once there is room.
    if (fetch_->error_code() == Errc::io) {
      const int64_t delay = retry_fetch(fetch_->goal(), now_ms);
      spdlog::warn("fetch {}@{}: {}; the last good version stays applied, trying again in {} s",
                   fetch_->goal().stack, fetch_->goal().version, fetch_->error(), delay / 1000);
    } else {
      retries_.erase(fetch_->goal().stack);
    }
    fetch_.reset();
    SOVDEV_TRY(set_state("degraded", now_ms));
    return next_fetch(now_ms);
  }
  if (fetch_->phase() != BundleFetch::Phase::done) return {};
  const std::string digest = fetch_->goal().digest;
  const uint64_t bytes = counters_.bytes_received - fetch_start_bytes_;
  const auto took = static_cast<uint64_t>(std::max<int64_t>(0, now_ms - fetch_started_ms_));
  status_.set_last_fetch_ms(took);
  status_.set_last_fetch_bytes(bytes);
  status_.set_last_fetch_delta(fetch_->used_delta());
  // The CPU figure is the whole process's (MQTT threads included) over the fetch: what a
  // benchmark needs to tell a slow machine from a slow agent.
  spdlog::info(
      "fetched {}@{}{} in {} ms: {} bytes received, {} ms of it the payload's flush to disk, "
      "{:.2f} CPU-s",
      fetch_->goal().stack, fetch_->goal().version, fetch_->used_delta() ? " as a delta" : "", took,
      bytes, fetch_->durable_ms(), proc::cpu_seconds() - fetch_start_cpu_);
  // The hub's answer to the epoch-key request, kept for the apply's message (and so that
  // `sync --once` stops at a refusal instead of asking until its timeout).
  if (fetch_->epoch_key_refusal().empty()) {
    key_refusals_.erase(fetch_->goal().stack);
  } else {
    key_refusals_[fetch_->goal().stack] = {digest, fetch_->epoch_key_refusal(),
                                           fetch_->epoch_key_refused()};
  }
  const bool prefetched = prefetch_.erase(digest) > 0;
  fetch_.reset();
  if (prefetched) {
    // Held for a rollout that does not admit this agent (yet): never applied from here.
    status_.set_fetching_version(0);
    SOVDEV_TRY(set_state(failure_ ? "degraded" : "healthy", now_ms));
    return next_fetch(now_ms);
  }
  SOVDEV_TRY(apply(digest, now_ms));
  return next_fetch(now_ms);
}

void Daemon::set_services(const std::string& stack, std::vector<pb::ServiceHealth> services,
                          const Error* target_error) {
  services_[stack] = std::move(services);
  status_.clear_services();
  pb::ServiceHealth* platform = status_.add_services();
  platform->set_service("kubernetes");
  const bool unreachable = target_error && (target_error->code == Errc::unavailable ||
                                            target_error->code == Errc::denied);
  platform->set_state(unreachable ? "degraded" : "healthy");
  platform->set_message(unreachable ? target_error->message.substr(0, 300)
                                    : settings_.target_kind + " target reached");
  for (const auto& [name, list] : services_) {
    for (const auto& h : list) {
      if (status_.services_size() < 64) *status_.add_services() = h;
    }
  }
}

Expected<std::set<std::string>> Daemon::cached_stacks(store::BundleCache& cache) {
  SOVDEV_ASSIGN(auto bundles, cache.list());
  std::set<std::string> stacks;
  for (const auto& b : bundles) stacks.insert(b.stack);
  return stacks;
}

Status Daemon::apply_cached(int64_t now_ms) {
  store::BundleCache cache(db_);
  store::ApplyLog log(db_);
  SOVDEV_ASSIGN(auto stacks, cached_stacks(cache));
  for (const auto& stack : stacks) {
    std::optional<store::BundleInfo> newest;  // of the channels followed; the first one wins
    for (const auto& channel : settings_.channels) {
      if (newest) break;
      SOVDEV_ASSIGN(newest, cache.highest_verified(channel, stack));
    }
    if (!newest) continue;
    SOVDEV_ASSIGN(auto good, log.last_good(stack));
    if (good && good->digest == newest->digest) continue;
    SOVDEV_ASSIGN(const bool held_back, held_back_offline(*newest));
    if (held_back) continue;
    SOVDEV_TRY(apply(newest->digest, now_ms));
  }
  return {};
}

Status Daemon::set_state(const std::string& state, int64_t now_ms) {
  if (status_.state() == state) return {};
  status_.set_state(state);
  // The work of a fetch or an apply is over: its buffers go back to the system, so the
  // status reports (and the site pays) what the agent costs while it waits.
  if (state == "healthy" || state == "degraded" || state == "rolled_back") {
    db_.release_memory();
    if (settings_.trim_heap_when_idle) proc::release_free_memory();
  }
  return publish_status(now_ms);
}

Status Daemon::publish_status(int64_t now_ms) {
  refresh_rollout_status();
  const auto memory = proc::read_memory();
  status_.set_rss_bytes(memory.rss_bytes);
  status_.set_private_bytes(memory.anon_bytes);
  status_.set_updated_at(now_ms / 1000);
  status_.set_rejected_messages(rejected_);
  const mqtt::Stats stats = client_.stats();
  status_.set_dropped_messages(stats.dropped);
  status_.set_oversize_messages(stats.oversize);
  rejected_unreported_ = false;
  mqtt::Message m;
  m.topic = settings_.fetch.prefix + "/status/" + settings_.fetch.agent_id;
  m.payload = status_.SerializeAsString();
  m.retained = true;
  last_status_ms_ = now_ms;
  auto sent = client_.publish(m);
  if (!sent) spdlog::debug("status not sent: {}", sent.error().message);
  return {};
}

Status Daemon::tick(int64_t now_ms) {
  if (fetch_) {
    SOVDEV_TRY(guard_fetch(fetch_->on_tick(now_ms)));
    SOVDEV_TRY(after_fetch(now_ms));
  }
  if (images_) {
    SOVDEV_TRY(guard_images(images_->on_tick(now_ms)));
    SOVDEV_TRY(after_images(now_ms));
  }
  SOVDEV_TRY(run_retries(now_ms));
  SOVDEV_TRY(run_window_waits(now_ms));
  if (now_ms - last_loss_check_ms_ >= kLossCheckMs) check_losses(now_ms);
  const int64_t interval = settings_.reconcile_interval_ms;
  if (interval > 0 && !fetch_ && !images_ && queue_.empty() &&
      (last_reconcile_ms_ == 0 || now_ms - last_reconcile_ms_ >= interval)) {
    // The cached catalogs first: what `sovdev-agent retry` cleared is tried again now.
    if (last_reconcile_ms_ != 0) SOVDEV_TRY(plan_from_cache(now_ms));
    if (!fetch_ && queue_.empty()) SOVDEV_TRY(reconcile(now_ms));
    last_reconcile_ms_ = now_ms;
  }
  const int64_t since = now_ms - last_status_ms_;
  if (since >= settings_.status_interval_ms || (rejected_unreported_ && since >= kRejectReportMs)) {
    SOVDEV_TRY(publish_status(now_ms));
  }
  return {};
}

int64_t Daemon::next_tick_ms(int64_t now_ms) const {
  if (fetch_ || images_ || !queue_.empty()) return now_ms + kFetchTickMs;
  int64_t due =
      settings_.status_interval_ms > 0 ? last_status_ms_ + settings_.status_interval_ms : INT64_MAX;
  for (const auto& [stack, r] : retries_) due = std::min(due, r.due_ms);
  for (const auto& [stack, w] : window_waits_) due = std::min(due, w.due_ms);
  if (rejected_unreported_) due = std::min(due, last_status_ms_ + kRejectReportMs);
  due = std::min(due, last_loss_check_ms_ + kLossCheckMs);
  if (settings_.reconcile_interval_ms > 0) {
    due = std::min(due, last_reconcile_ms_ == 0
                            ? now_ms
                            : last_reconcile_ms_ + settings_.reconcile_interval_ms);
  }
  return due;
}

bool Daemon::up_to_date() const {
  return settled() && !unmet();
}

bool Daemon::settled() const {
  if (fetch_ || images_ || !queue_.empty()) return false;
  // A version waiting for a key the hub refused to send stays waiting (the daemon asks again
  // with backoff); nothing more will happen without the operator.
  const bool all_refused = std::all_of(retries_.begin(), retries_.end(), [&](const auto& kv) {
    const auto w = waiting_.find(kv.first);
    const auto r = key_refusals_.find(kv.first);
    return !kv.second.apply && w != waiting_.end() && w->second.first == kv.second.goal.digest &&
           r != key_refusals_.end() && r->second.digest == kv.second.goal.digest;
  });
  if (!all_refused) return false;
  return std::all_of(fresh_.begin(), fresh_.end(), [](const auto& kv) { return kv.second; });
}

}  // namespace sovdev::agent
