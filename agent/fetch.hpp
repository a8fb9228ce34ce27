// One bundle's transfer from the hub: manifest, then a delta or the chunks it lacks, with at
// most `window` chunks in flight; each chunk verified and committed before more are asked for.
// Everything it has learnt is in SQLite, so a fresh BundleFetch after a crash resumes.
// A bundle with sealed secrets (manifest secrets_epoch > 0) also needs the channel's epoch
// key sealed to this agent: once the payload is verified (or found verified in the cache) the
// fetch asks the hub for it unless agent.db holds it, and keeps only a key that opens with the
// agent's key and is the one the manifest names.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "bundles/manifest_rules.hpp"
#include "bundles/seal.hpp"
#include "bundles/trust.hpp"
#include "platform/mqtt/client.hpp"
#include "platform/store/agent_cache.hpp"
#include "platform/store/transaction.hpp"
#include "sovdev.pb.h"

namespace sovdev::agent {

struct FetchSettings {
  std::string agent_id;
  std::string prefix = "sovdev/v1";
  uint32_t window = 16;
  int64_t request_timeout_ms = 10000;
  int64_t backoff_min_ms = 1000;
  int64_t backoff_max_ms = 300000;
  InstallTarget install;
  std::string work_dir;  // temporary files of delta rebuilds
  // The folder of the cache (agent.db and its payloads): its free space is checked before a
  // payload is fetched into it. Empty: not checked (a cache in memory).
  std::string state_dir;
  // The agent's X25519 key (agent/secret_keys.hpp), or null when it has none: then no epoch
  // key is asked for, as none could be opened.
  const seal::AgentKey* agent_key = nullptr;
  // Requests for an epoch key before the fetch ends without it (each after request_timeout,
  // with the usual backoff).
  uint32_t epoch_key_attempts = 3;
};

struct FetchCounters {
  uint64_t bytes_received = 0;  // payloads of responses: what crossed the wire for us
  uint64_t chunks_received = 0;
  uint64_t bad_chunks = 0;
  uint64_t requests_sent = 0;
  // Answers that were not the bundle asked for (another bundle's manifest, a bad signature):
  // forged or misrouted, ignored so the fetch goes on. The last one's reason, for the log.
  uint64_t ignored_responses = 0;
  std::string last_ignored;
};

struct FetchGoal {
  std::string stack;
  uint64_t version = 0;
  std::string digest;
  std::optional<store::LastGood> base;  // what a delta may start from
};

class BundleFetch {
 public:
  // epoch_key: the payload is whole and verified, the epoch key its manifest names is asked for.
  enum class Phase { manifest, delta_offer, delta_chunks, chunks, epoch_key, done, failed };

  BundleFetch(store::Database& db, const TrustPolicy& trust, mqtt::Client& client,
              const FetchSettings& settings, FetchCounters& counters, FetchGoal goal);
  ~BundleFetch();
  BundleFetch(const BundleFetch&) = delete;
  BundleFetch& operator=(const BundleFetch&) = delete;

  Status start(int64_t now_ms);
  // A response for this bundle (the caller matched the digest). Errors are this bundle's
  // failure; bad chunks are counted and asked for again.
  Status on_response(const pb::FetchResponse& response, int64_t now_ms);
  // Chunks are stored as they arrive but committed here, in one transaction (one fsync) for
  // every chunk received since the last flush, and only then are more asked for. The caller
  // flushes once it has handled the events already queued, so a burst costs one commit.
  Status flush(int64_t now_ms);
  Status on_tick(int64_t now_ms);
  // After a reconnect: what was in flight is asked for again at once.
  Status on_reconnect(int64_t now_ms);

  Phase phase() const { return phase_; }
  const FetchGoal& goal() const { return goal_; }
  const std::string& error() const { return error_; }
  // The class of error(): Errc::io when the disk stopped it (fetched again once there is room).
  Errc error_code() const { return error_code_; }
  // An error storing what arrived (a full disk): the partial payload this fetch wrote is
  // dropped, so the disk gets its room back and the last good bundle keeps working, and the
  // fetch fails with Errc::io ("disk full: needs X, has Y" when that is why).
  Status storage_failed(const Error& error);
  uint32_t progress_permille() const;
  bool used_delta() const { return used_delta_; }
  // How long marking a full payload complete took: its flush to disk, for the log.
  int64_t durable_ms() const { return durable_ms_; }
  // Why the fetch ended done without the epoch key the manifest names: the hub's refusal (it
  // names the `sovdev-hub agents` command that grants one), or no usable answer in
  // epoch_key_attempts requests. Empty when the key is held or none is needed.
  const std::string& epoch_key_refusal() const { return epoch_key_refusal_; }
  // Whether that was the hub's own refusal (an error answer), not silence or a forged answer.
  bool epoch_key_refused() const { return epoch_key_refused_; }

 private:
  Status request_manifest(int64_t now_ms);
  Status on_manifest(const pb::Signed& envelope, int64_t now_ms);
  // What the hub said of a delta: in the manifest's own answer (one-answer exchange), alone
  // as the body (offer-only or older hubs' second answer), a wait, or nothing usable.
  Status on_delta_offer(const pb::FetchResponse& response, int64_t now_ms);
  // Asks for the delta from goal_.base (and the manifest unless `have_manifest`), taking it
  // whole in the answer when it is small.
  void ask_for_delta(pb::FetchRequest& request, bool have_manifest) const;
  // Goes on with a delta an earlier run of the agent was collecting (killed, rebooted): its
  // signed delta manifest was saved beside the delta file, and the chunks the file holds that
  // match their signed hashes are kept. false when there is none to go on with (or it no
  // longer fits: another base, a base no longer cached).
  Expected<bool> resume_delta(int64_t now_ms);
  // Starts collecting the delta described by `delta_` (its chunks listed in missing_).
  Status begin_delta(int64_t now_ms);
  std::string delta_path() const;
  void drop_delta_files();
  Status on_chunk(const pb::FetchResponse& response, int64_t now_ms);
  // Listens on the blob topic of `object` (the payload's digest or the delta's SHA-256) while
  // fetching it, so chunks other agents asked for serve this one too; one topic at a time.
  void listen(std::string_view object);
  void stop_listening();
  // Follows the hub's numbering of broadcast chunks; a gap means some never reached us.
  void follow(const pb::FetchResponse& response);
  Status begin_chunks(int64_t now_ms);
  Status fill_window(int64_t now_ms);
  Status finish_full(int64_t now_ms);
  Status finish_delta(int64_t now_ms);
  // The payload is whole and verified: done, or first the epoch key (fetch_epoch_key.cpp).
  Status payload_verified(int64_t now_ms);
  Status request_epoch_key(int64_t now_ms);
  Status on_epoch_key(const pb::FetchResponse& response, int64_t now_ms);
  Status epoch_key_timeout(int64_t now_ms);
  // Ends the fetch done without the key, keeping why for the daemon (logged once).
  void without_epoch_key(std::string why, bool hub_refused = false);
  Status send(pb::FetchRequest request, int64_t now_ms);
  Status fail(Error error);
  // Fails with "disk full: needs X, has Y" (Errc::io) when the cache's folder has less room
  // than `bytes` more of payload need.
  Status check_room(uint64_t bytes);
  // That error when the folder has less room than `bytes` need (or `anyway`: after ENOSPC).
  std::optional<Error> disk_full(uint64_t bytes, bool anyway) const;
  // Counts a response that is not this bundle's and goes on as if it had not come.
  void ignore(const std::string& why);
  int64_t backoff_ms();

  store::Database& db_;
  const TrustPolicy& trust_;
  mqtt::Client& client_;
  const FetchSettings& settings_;
  FetchCounters& counters_;
  FetchGoal goal_;

  Phase phase_ = Phase::manifest;
  std::string error_;
  Errc error_code_ = Errc::internal;
  pb::BundleManifest manifest_;
  std::string envelope_;
  pb::DeltaManifest delta_;
  bool used_delta_ = false;
  int64_t durable_ms_ = 0;
  std::vector<uint32_t> missing_;          // ascending, not yet received
  std::map<uint32_t, int64_t> in_flight_;  // index → when asked
  // When a chunk this transfer lacked last arrived. A chunk in flight is given up on only once
  // nothing has arrived for request_timeout since it was asked for: on a link slower than a
  // window per timeout (a 16-chunk window is 1 MiB, 4 s at 2 Mbit/s) the last chunks of a
  // window are late, not lost, and asking again would only send them twice.
  int64_t last_arrival_ms_ = 0;
  std::vector<uint32_t> uncommitted_;  // received, stored in batch_, not yet committed
  std::optional<store::Transaction> batch_;
  uint32_t total_chunks_ = 0;
  int64_t waiting_since_ = 0;  // manifest / delta offer asked at
  uint32_t attempts_ = 0;      // consecutive timeouts
  int64_t not_before_ = 0;     // backoff: no request before this time
  uint64_t request_id_ = 0;
  std::string delta_file_;
  std::string listen_topic_;  // the blob topic subscribed to, "" = none (answers come unicast)
  uint64_t stream_ = 0;       // the hub's broadcast stream followed, 0 = position unknown
  uint64_t seen_ = 0;         // its highest number handled (or the position the hub reported)
  std::mt19937 rng_{std::random_device{}()};

  // The hub said it is making the delta: since when (0 = it has not), and when to ask again
  // (0 = not waiting for that).
  int64_t delta_wait_started_ = 0;
  int64_t delta_ask_at_ = 0;

  uint64_t first_epoch_request_ = 0;  // request ids from here on asked for the epoch key
  uint32_t epoch_requests_ = 0;
  uint64_t ignored_before_epoch_ = 0;  // counters_.ignored_responses when the key was asked for
  std::string epoch_key_refusal_;
  bool epoch_key_refused_ = false;
};

// Removes delta files (`<digest hex>.delta` and its `.manifest`) in `work_dir` that no partial
// bundle of the cache can go on with: left by a run killed after its rebuild, or by a fetch
// given up for a newer version. Call it at start-up.
[[nodiscard]] Status remove_stale_delta_files(store::Database& db, const std::string& work_dir);

}  // namespace sovdev::agent
