// The agent's state machine: follows the catalogs of its channels, fetches what is newer
// (one bundle at a time), applies it to the target, and reports its status. Driven by MQTT
// events and ticks from one thread; every transition is committed to SQLite first.
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

  // Every channel's catalog has been seen fresh, and everything it lists is applied.
  bool up_to_date() const;
  // The error that stopped the last fetch or apply, if any.
  const std::optional<Error>& failure() const { return failure_; }
  const pb::AgentStatus& status() const { return status_; }
  uint64_t rejected() const { return rejected_; }
  const FetchCounters& counters() const { return counters_; }

 private:
  Status on_catalog(const std::string& channel, const mqtt::Message& message, int64_t now_ms);
  Status on_data(const mqtt::Message& message, int64_t now_ms);
  Status plan(const pb::Catalog& catalog, int64_t now_ms);
  Status next_fetch(int64_t now_ms);
  Status after_fetch(int64_t now_ms);
  Status apply(const std::string& digest, int64_t now_ms);
  // begin, every record, commit: the target's result or the error that stopped it.
  // The tally counts the objects per service and marks the services whose objects failed.
  Expected<target::ApplyResult> apply_bundle(const store::BundleInfo& info,
                                             const pb::BundleManifest& manifest, uint32_t& objects,
                                             ServiceTally& tally);
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
  Status plan_from_cache(int64_t now_ms);
  Status reconcile(int64_t now_ms);
  Status set_state(const std::string& state, int64_t now_ms);
  Status publish_status(int64_t now_ms);
  void reject(const std::string& what);

  store::Database& db_;
  const TrustPolicy& trust_;
  mqtt::Client& client_;
  target::Target& target_;
  DaemonSettings settings_;
  FetchCounters counters_;

  std::unique_ptr<BundleFetch> fetch_;
  std::deque<FetchGoal> queue_;        // at most one goal per stack
  std::map<std::string, bool> fresh_;  // channel → a fresh catalog was seen
  std::optional<Error> failure_;
  pb::AgentStatus status_;
  int64_t last_status_ms_ = 0;
  int64_t fetch_started_ms_ = 0;
  int64_t last_reconcile_ms_ = 0;  // 0: not yet since start
  std::set<std::string> failed_;   // digests whose apply failed: not tried again until restart
  uint64_t fetch_start_bytes_ = 0;
  uint64_t rejected_ = 0;
  bool rejected_unreported_ = false;  // published at most every kRejectReportMs
  std::map<std::string, std::vector<pb::ServiceHealth>> services_;  // per stack
};

}  // namespace sovdev::agent
