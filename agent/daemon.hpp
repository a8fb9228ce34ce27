// The agent's state machine: follows the catalogs of its channels, fetches what is newer
// (one bundle at a time), applies it to the target, and reports its status. Driven by MQTT
// events and ticks from one thread; every transition is committed to SQLite first.
//
// An apply can take minutes (an exec command, a kube health gate of up to health_timeout).
// It runs on the loop's thread, and the target calls a heartbeat (set_heartbeat) at least every
// second while it waits; the owner's heartbeat feeds the systemd watchdog, sets the systemd
// status, publishes the agent's status when due and takes MQTT events off the bounded queue,
// holding them until the apply returns. Why not a worker thread for the apply: the target, the
// kube inventory and the bundle reader all use this one SQLite connection and the Daemon's own
// state, so a thread needed a second connection and a hand-over of every result, for the same
// effect; and a watchdog fed only by progress still catches a target that hangs inside a call.
//
// A failed apply (refused by the target, or not healthy in time) is recorded in SQLite
// (store::FailedBundles) and never tried again by itself, across restarts too; a newer version
// or `sovdev-agent retry` clears it. A transient error (API server or the agent's own disk not
// available) is not a verdict on the bundle: the same apply is tried again with backoff. A
// fetch stopped by a full disk is tried again the same way, the last good version staying.
//
// A version with sealed Secrets (sealed_apply.hpp) is opened in the check pass before its first
// record goes to the target. An epoch key not at hand is not the bundle's fault either: the
// version waits (its fetch is tried again, which asks the hub for the key) and the last good
// one stays; a sealed record that does not open with the right key fails the bundle.
//
// Staged rollouts (docs/design-rollouts.md, daemon_rollout.cpp): plan() runs, of each entry,
// what agent/rollout/decide.hpp says (the rollout's version when a wave admits the agent, else
// the entry's, or the revert to the agent's own pre-rollout last good), never a revoked
// version; apply() first asks the maintenance windows' gate (agent/rollout/window_gate.hpp)
// and records the rollout mark that makes a later revert possible.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/fetch.hpp"
#include "agent/images/image_sync.hpp"
#include "agent/rollout/decide.hpp"
#include "agent/rollout/window_gate.hpp"
#include "agent/sealed_apply.hpp"
#include "agent/services.hpp"
#include "platform/target/target.hpp"

namespace sovdev::agent {

struct DaemonSettings {
  FetchSettings fetch;
  std::vector<std::string> channels;
  std::vector<std::string> stacks;  // empty: every stack of the channels
  int64_t status_interval_ms = 300000;
  // The last good bundle of every stack is applied again this often (drift correction), and
  // once at start; 0 = never.
  int64_t reconcile_interval_ms = 600000;
  std::string agent_version;
  std::string target_kind;  // dir, kube or exec: what the "kubernetes" service row says
  // When a fetch or an apply is over, the heap's free pages go back to the system
  // (malloc_trim). Only a process holding many agents (the fan-out harness) turns this off:
  // there each trim walks every agent's heap, a cost no real agent pays.
  bool trim_heap_when_idle = true;
  // The agent's X25519 key (<state>/agent.key), loaded once at start: it opens the epoch keys
  // of sealed Secrets. Null when the agent has none; a version that seals anything then waits,
  // its status naming `sovdev-agent keygen`.
  std::shared_ptr<const seal::AgentKey> agent_key;
  // Staged rollouts (docs/design-rollouts.md, daemon_rollout.cpp): the config's labels, which
  // the catalog's selectors match and every status reports; whether a rollout's version is
  // fetched before the agent is admitted; and the maintenance windows' gate (null: always
  // open; see agent/rollout/window_gate.hpp for who builds the real one).
  sovdev::rollout::Labels labels;
  bool prefetch = false;
  std::shared_ptr<const rollout::WindowGate> window_gate;
  // Container images (docs/design-images.md, daemon_images.cpp): the blob store's quota.
  images::ImageSettings images;
};

class Daemon {
 public:
  Daemon(store::Database& db, const TrustPolicy& trust, mqtt::Client& client,
         target::Target& target, DaemonSettings settings);

  Status start(int64_t now_ms);
  Status handle(const mqtt::Event& event, int64_t now_ms);
  // Commits the chunks handled since the last flush and asks for more (BundleFetch::flush):
  // called after each burst of events.
  Status flush(int64_t now_ms);
  Status tick(int64_t now_ms);
  // When tick() next has work (the owner sleeps until then unless an event comes): the next
  // status, reconcile or report of rejected messages; while a fetch runs, kFetchTickMs on
  // (its request timeouts and backoffs are checked that often).
  int64_t next_tick_ms(int64_t now_ms) const;
  static constexpr int64_t kFetchTickMs = 100;
  // Offline: applies the newest verified bundle of every cached stack that is not its last
  // good one (with the usual rollback), without catalogs or a broker.
  Status apply_cached(int64_t now_ms);

  // The owner's work while an apply waits (see the header comment); also called per object.
  void set_heartbeat(std::function<void()> heartbeat);
  // From inside the heartbeat: publishes the status when it is due, and nothing more (the
  // daemon is in the middle of an apply; events wait for the loop).
  void heartbeat(int64_t now_ms);
  // An error of handle/flush/tick the owner keeps running through (a full disk): reported in
  // the status, and the owner tries again later.
  void note_error(const Error& error, int64_t now_ms);

  // Every channel's catalog has been seen fresh, and everything it lists is applied.
  bool up_to_date() const;
  // Nothing more will happen without a new catalog or the clock: every catalog seen, no fetch,
  // apply or retry pending.
  bool settled() const;
  // Why the agent is not where its catalogs say, for `sync --once`'s exit code: the last apply
  // or reconcile failed (Errc::unhealthy; a transient one keeps its own code), a version waits
  // for its epoch key (open_epoch_key's code), or a catalog lists a version that failed here
  // (Errc::unhealthy). None when nothing is wrong.
  std::optional<Error> unmet() const;
  // The error that stopped the last fetch or apply, if any.
  const std::optional<Error>& failure() const { return failure_; }
  const pb::AgentStatus& status() const { return status_; }
  uint64_t rejected() const { return rejected_; }
  const FetchCounters& counters() const { return counters_; }

 private:
  Status on_catalog(const std::string& channel, const mqtt::Message& message, int64_t now_ms);
  Status on_data(const mqtt::Message& message, int64_t now_ms);
  Status plan(const pb::Catalog& catalog, int64_t now_ms);

  // ---- staged rollouts, revocations and windows (daemon_rollout.cpp)
  // What plan() runs of an entry (rollout::decide, with agent.db's last good, marks and
  // revocations); records the goal for apply() and puts a revocation note in the status.
  Expected<rollout::Decision> decide(const pb::CatalogEntry& entry,
                                     const std::optional<store::LastGood>& good);
  // Queues the fetch of a rollout's version the agent is not admitted to (never applied).
  void queue_prefetch(const std::string& stack, const rollout::Goal& goal,
                      const std::optional<store::LastGood>& good);
  // The catalog's revocation list, verified against the targets role and kept when newer.
  void take_revocations(const pb::Catalog& catalog, int64_t now_ms);
  Status load_revocations();
  bool revoked(std::string_view digest) const;
  // Before apply() changes a version: a revoked one is refused, a closed window holds it
  // (false: not now), and a rollout's version gets its mark. After it: marks closed.
  Expected<bool> before_apply(const pb::BundleManifest& manifest, const std::string& digest,
                              int64_t now_ms);
  Status after_apply(const pb::BundleManifest& manifest, const std::string& digest, int64_t now_ms);
  // The catalog no longer wants the version that waits for its window.
  void drop_window_wait(const std::string& stack, int64_t now_ms);
  // The windows that are due: their versions are applied now (or wait again).
  Status run_window_waits(int64_t now_ms);
  // Offline apply (apply_cached): whether the newest cached bundle is a rollout's version the
  // cached catalog does not give this agent (prefetched, or reverted from).
  Expected<bool> held_back_offline(const store::BundleInfo& newest);
  // Labels, newest failed version, rollout id: refreshed before each status goes out.
  void refresh_rollout_status();
  Status next_fetch(int64_t now_ms);
  Status after_fetch(int64_t now_ms);
  // ---- container images (daemon_images.cpp)
  // Whether every image blob the version needs on this arch is held verified; if not, their
  // fetch starts (one version's images at a time) and apply() runs again once they are.
  Expected<bool> images_ready(const std::string& digest, const pb::BundleManifest& manifest,
                              int64_t now_ms);
  // After a step of the image sync: applies the version once its images are held, or records
  // why not (a full disk or quota is tried again later; refused images fail the version).
  Status after_images(int64_t now_ms);
  Status guard_images(Status step);
  // A step of the fetch that failed to store what it got (a full disk) fails the fetch rather
  // than the agent: after_fetch() then tries it again later.
  Status guard_fetch(Status step);
  Status apply(const std::string& digest, int64_t now_ms);
  // begin, every record, commit: the target's result or the error that stopped it.
  // The tally counts the objects per service and marks the services whose objects failed.
  // `secrets` (check_version's) opens each sealed record just before the target gets it, and
  // cuts its values out of the target's errors.
  Expected<target::ApplyResult> apply_bundle(const store::BundleInfo& info,
                                             const pb::BundleManifest& manifest,
                                             SealedSecrets& secrets, uint32_t& objects,
                                             ServiceTally& tally);
  // The check pass before the first record goes to the target (sealed_apply.hpp).
  VersionCheck check(const store::BundleInfo& info, const pb::BundleManifest& manifest);
  // After a failed apply of `manifest`: the last good version applied again, if there is one.
  Status roll_back(const pb::BundleManifest& manifest, const std::string& digest,
                   const Error& error, const ServiceTally& tally, int64_t now_ms);
  // A version whose epoch key is not at hand (VersionCheck::no_key): it waits, the last good
  // one stays, and its fetch is tried again with backoff (a fetch asks the hub for the key).
  // Not recorded as a failed bundle.
  Status wait_for_key(const store::BundleInfo& info, const pb::BundleManifest& manifest,
                      Error error, int64_t now_ms);
  // Why a version waits for its epoch key, while its fetch is still to be tried again.
  std::optional<Error> waiting_for_key() const;
  // After a failure the target reported at commit (health, prune): the services of the objects
  // its message names, found by reading the bundle again (nothing is kept per object).
  void blame_named(const store::BundleInfo& info, const pb::BundleManifest& manifest,
                   const std::string& message, ServiceTally& tally);
  // Puts a stack's services, and whether the target was reached, into the status.
  void set_services(const std::string& stack, std::vector<pb::ServiceHealth> services,
                    const Error* target_error);
  // A cached payload failed its check before an apply, reconcile or rollback (nothing reached
  // the target): logged and reported with stack@version, and its digest fetched again.
  Status on_damaged(const store::BundleInfo& info, const pb::BundleManifest& manifest, Error error,
                    int64_t now_ms);
  // The result of a failed apply: a transient error is tried again later (true); anything
  // else is recorded as this bundle's failure (false), kept across restarts.
  bool retry_if_transient(const pb::BundleManifest& manifest, const std::string& digest,
                          const Error& error, int64_t now_ms);
  void record_failed(const pb::BundleManifest& manifest, const std::string& digest,
                     const Error& error, int64_t now_ms);
  // Whether the bundle failed here before (in this run or in the store).
  bool failed_before(const std::string& digest);
  // A fetch tried again later from the start (the disk stopped it, or an epoch key is
  // missing): returns the wait, doubled from the last one for the same bundle.
  int64_t retry_fetch(FetchGoal goal, int64_t now_ms);
  // Starts the applies and fetches whose retry is due.
  Status run_retries(int64_t now_ms);
  // Every stack the cache holds a bundle of.
  static Expected<std::set<std::string>> cached_stacks(store::BundleCache& cache);
  Status plan_from_cache(int64_t now_ms);
  Status reconcile(int64_t now_ms);
  Status set_state(const std::string& state, int64_t now_ms);
  Status publish_status(int64_t now_ms);
  void reject(const std::string& what);
  // Logs what the MQTT client threw away since the last look (oversize, queue full) and has
  // the next status report it soon, as a rejection would.
  void check_losses(int64_t now_ms);

  store::Database& db_;
  const TrustPolicy& trust_;
  mqtt::Client& client_;
  target::Target& target_;
  DaemonSettings settings_;
  FetchCounters counters_;

  std::unique_ptr<BundleFetch> fetch_;
  // The images of a verified version being fetched before its apply; null when none.
  std::unique_ptr<images::ImageSync> images_;
  std::deque<FetchGoal> queue_;        // at most one goal per stack
  std::map<std::string, bool> fresh_;  // channel → a fresh catalog was seen
  std::optional<Error> failure_;
  pb::AgentStatus status_;
  int64_t last_status_ms_ = 0;
  int64_t fetch_started_ms_ = 0;
  int64_t last_reconcile_ms_ = 0;  // 0: not yet since start
  // Digests whose apply failed, as recorded in store::FailedBundles; kept here too so a full
  // disk that keeps the record from being written does not start the same apply over.
  std::set<std::string> failed_;
  struct Retry {
    FetchGoal goal;        // the bundle: fetched again (fetch) or applied again (apply)
    bool apply = false;    // apply the cached bundle again, rather than fetch it
    int64_t due_ms = 0;    // INT64_MAX while the attempt runs
    int64_t delay_ms = 0;  // the last wait; doubled after each failed attempt
  };
  std::map<std::string, Retry> retries_;       // per stack: a transient apply error or a full disk
  std::map<std::string, std::string> behind_;  // stack → why its listed version is not applied
  std::optional<Error> reconcile_error_;       // the last reconcile's, until one succeeds
  // stack → the digest waiting for its epoch key and why (see waiting_for_key). Not a failure:
  // `sync --once` goes on while the key is asked for.
  std::map<std::string, std::pair<std::string, Error>> waiting_;
  // stack → the digest whose epoch key the last fetch did not get, why, and whether the hub
  // itself refused (else it did not answer, or only forged answers came).
  struct KeyRefusal {
    std::string digest, why;
    bool by_hub = false;
  };
  std::map<std::string, KeyRefusal> key_refusals_;
  std::function<void()> heartbeat_;
  uint64_t fetch_start_bytes_ = 0;
  double fetch_start_cpu_ = 0;  // the process's CPU seconds when the fetch started
  uint64_t rejected_ = 0;
  bool rejected_unreported_ = false;  // published at most every kRejectReportMs
  // The client's drop counters at the last look (check_losses), and when that was.
  uint64_t seen_dropped_ = 0;
  uint64_t seen_oversize_ = 0;
  int64_t last_loss_check_ms_ = 0;
  std::map<std::string, std::vector<pb::ServiceHealth>> services_;  // per stack
  std::map<std::string, rollout::Goal> goals_;  // stack → what plan() last chose to run
  std::set<std::string> prefetch_;  // digests fetched for a rollout not admitting the agent
  std::map<std::string, pb::RevocationList> revocations_;  // channel → its newest list
  // The catalog's maintenance windows per channel, as last received (matched at apply time).
  std::map<std::string, std::vector<pb::MaintenanceWindow>> windows_;
  struct WindowWait {
    std::string digest;  // fetched, waiting for the window to open
    int64_t due_ms = 0;  // when to ask the gate again
  };
  std::map<std::string, WindowWait> window_waits_;       // per stack
  std::map<std::string, std::string> revocation_notes_;  // stack → why it runs what it runs
  // A new note of decide() (a revoked version listed): the status goes out at the end of plan(),
  // so the fleet view says why the agent stays where it is.
  bool note_unpublished_ = false;
};

}  // namespace sovdev::agent
