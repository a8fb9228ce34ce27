#include "agent/fetch.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "agent/delta_rebuild.hpp"
#include "agent/payload_source.hpp"
#include "bundles/delta.hpp"
#include "bundles/hash.hpp"
#include "bundles/messages.hpp"
#include "bundles/verify.hpp"
#include "common/hex.hpp"
#include "common/text.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::agent {
namespace {

Status write_at(const std::string& path, uint64_t offset, std::string_view data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return fs::errno_error("open", path, errno);
  const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
  const int err = errno;
  ::close(fd);
  if (n < 0 || static_cast<size_t>(n) != data.size()) return fs::errno_error("write", path, err);
  return {};
}

// Chunk batches commit without an fsync (synchronous NORMAL) and let the WAL grow to 64 MiB
// before a checkpoint (each checkpoint fsyncs the database: 16 of them in a 64 MiB pull at
// SQLite's default of 1000 pages); every other transaction of the agent keeps FULL and the
// default. The first FULL commit after a batch flushes the WAL, and checkpoints it.
Status chunk_durability(store::Database& db, bool batch) {
  SOVDEV_TRY(db.exec_cached(batch ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL"));
  return db.exec_cached(batch ? "PRAGMA wal_autocheckpoint = 16384"
                              : "PRAGMA wal_autocheckpoint = 1000");
}

// Room for the chunks' rows, the WAL and the bundle's row beside its payload: a little more
// than the payload itself.
uint64_t with_overhead(uint64_t payload) {
  return payload + payload / 64 + 128 * 1024;
}

}  // namespace

BundleFetch::BundleFetch(store::Database& db, const TrustPolicy& trust, mqtt::Client& client,
                         const FetchSettings& settings, FetchCounters& counters, FetchGoal goal)
    : db_(db),
      trust_(trust),
      client_(client),
      settings_(settings),
      counters_(counters),
      goal_(std::move(goal)) {}

BundleFetch::~BundleFetch() {
  stop_listening();
  if (batch_) {
    batch_.reset();  // rolled back: those chunks are fetched again
    (void)chunk_durability(db_, false);
  }
}

void BundleFetch::listen(std::string_view object) {
  // Named as the hub names it (hub/broadcast.cpp).
  const std::string topic = settings_.prefix + "/blob/" + to_hex(object);
  if (topic == listen_topic_) return;
  stop_listening();
  // Broadcast chunks are FetchResponses like those on the data topic, and are handed over as
  // such; whoever asked for them, each is checked against the signed hashes before it is kept.
  auto subscribed =
      client_.subscribe_as(topic, 0, settings_.prefix + "/agent/" + settings_.agent_id + "/data");
  if (!subscribed) {
    spdlog::warn("fetch {}@{}: {}; asking for answers on the data topic only", goal_.stack,
                 goal_.version, subscribed.error().message);
    return;
  }
  listen_topic_ = topic;
}

void BundleFetch::stop_listening() {
  stream_ = 0;
  seen_ = 0;
  if (listen_topic_.empty()) return;
  if (auto gone = client_.unsubscribe(listen_topic_); !gone) {
    spdlog::debug("{}", gone.error().message);
  }
  listen_topic_.clear();
}

void BundleFetch::follow(const pb::FetchResponse& resp) {
  const uint64_t seq = resp.broadcast_seq();
  if (seq == 0 || listen_topic_.empty()) return;
  if (resp.broadcast_stream() != stream_) {
    // Another replica, or the first number heard: follow it from here.
    stream_ = resp.broadcast_stream();
    seen_ = seq;
    return;
  }
  if (seq > seen_ + 1 && !in_flight_.empty()) {
    // Numbers were skipped: those chunks were lost on the way (QoS 0, a full queue). What is
    // in flight may be among them: ask again now rather than after request_timeout; the hub
    // does not send again what is still on its way.
    for (const auto& [index, when] : in_flight_) {
      missing_.insert(std::lower_bound(missing_.begin(), missing_.end(), index), index);
    }
    in_flight_.clear();
  }
  seen_ = std::max(seen_, seq);
}

uint32_t BundleFetch::progress_permille() const {
  if (phase_ == Phase::done) return 1000;
  if (total_chunks_ == 0) return 0;
  const uint32_t have = total_chunks_ - static_cast<uint32_t>(missing_.size() + in_flight_.size());
  return static_cast<uint32_t>(uint64_t{have} * 1000 / total_chunks_);
}

Status BundleFetch::fail(Error error) {
  phase_ = Phase::failed;
  error_ = error.message;
  error_code_ = error.code;
  spdlog::error("fetch {}@{}: {}", goal_.stack, goal_.version, error.message);
  if (!delta_file_.empty()) drop_delta_files();
  stop_listening();
  return {};
}

void BundleFetch::ignore(const std::string& why) {
  counters_.ignored_responses++;
  counters_.last_ignored = why;
}

Status BundleFetch::check_room(uint64_t bytes) {
  if (auto full = disk_full(bytes, false)) return fail(std::move(*full));
  return {};
}

std::optional<Error> BundleFetch::disk_full(uint64_t bytes, bool anyway) const {
  if (settings_.state_dir.empty()) return std::nullopt;
  struct statvfs fs {};
  if (::statvfs(settings_.state_dir.c_str(), &fs) != 0) return std::nullopt;  // writes will tell
  const uint64_t has = uint64_t{fs.f_bavail} * fs.f_frsize;
  const uint64_t needs = with_overhead(bytes);
  if (has >= needs && !anyway) return std::nullopt;
  return make_error(Errc::io, "disk full: needs " + human_bytes(needs) + ", has " +
                                  human_bytes(has) + " in " + settings_.state_dir);
}

Status BundleFetch::storage_failed(const Error& error) {
  if (phase_ == Phase::done || phase_ == Phase::failed) return error;
  if (batch_) {
    batch_.reset();  // rolled back
    (void)chunk_durability(db_, false);
  }
  in_flight_.clear();
  uncommitted_.clear();
  if (!delta_file_.empty()) drop_delta_files();
  // What this fetch wrote goes: a full disk must not keep the agent (and the site) without
  // room. The bundle is never the last good one while it is fetched, so remove() may drop it.
  store::BundleCache cache(db_);
  if (auto removed = cache.remove(goal_.digest); !removed) {
    spdlog::warn("fetch {}@{}: dropping the partial payload: {}", goal_.stack, goal_.version,
                 removed.error().message);
  } else if (*removed) {
    (void)cache.sweep_payloads();  // the file goes now, not at the next start
  }
  // What is free now that this fetch's own bytes are gone, against what it needs.
  const bool full = error.message.find("No space left") != std::string::npos ||
                    error.message.find("disk is full") != std::string::npos;
  if (auto room = disk_full(manifest_.payload_size(), full)) return fail(std::move(*room));
  return fail(make_error(Errc::io, error.message)
                  .context("store " + goal_.stack + "@" + std::to_string(goal_.version)));
}

int64_t BundleFetch::backoff_ms() {
  // Capped exponential backoff with jitter, so a fleet does not hammer a hub that came back.
  const int64_t base = std::min<int64_t>(
      settings_.backoff_max_ms, settings_.backoff_min_ms << std::min<uint32_t>(attempts_, 20));
  std::uniform_int_distribution<int64_t> jitter(0, base / 2);
  return base / 2 + jitter(rng_);
}

Status BundleFetch::send(pb::FetchRequest request, int64_t now_ms) {
  request.set_schema(1);
  request.set_agent_id(settings_.agent_id);
  request.set_request_id(++request_id_);
  request.set_manifest_digest(goal_.digest);
  if (!listen_topic_.empty()) {
    request.set_broadcast(true);
    request.set_broadcast_stream(stream_);
    request.set_broadcast_seen(seen_);
  }
  mqtt::Message m;
  m.topic = settings_.prefix + "/fetch/" + settings_.agent_id;
  m.payload = request.SerializeAsString();
  m.response_topic = settings_.prefix + "/agent/" + settings_.agent_id + "/data";
  auto sent = client_.publish(m);
  if (!sent) {
    // Offline or the outgoing buffer is full: the tick asks again after a backoff.
    not_before_ = now_ms + backoff_ms();
    return {};
  }
  counters_.requests_sent++;
  return {};
}

Status BundleFetch::start(int64_t now_ms) {
  store::BundleCache cache(db_);
  SOVDEV_ASSIGN(auto cached, cache.find(goal_.digest));
  if (cached) {
    // A transfer interrupted earlier: its manifest is in the cache, so only chunks are missing.
    envelope_ = cached->envelope;
    std::string digest;
    SOVDEV_ASSIGN(manifest_, trust_.verify_manifest(envelope_, &digest));
    // Verified already: the daemon asks again for a bundle whose epoch key it lacked.
    if (cached->state == store::BundleState::verified) return payload_verified(now_ms);
    // What a power cut interrupted may hold rows whose bytes never reached the disk.
    SOVDEV_ASSIGN(const uint32_t damaged,
                  cache.drop_damaged(goal_.digest, [this](uint32_t index, std::string_view data) {
                    return static_cast<bool>(verify_chunk(manifest_, index, data));
                  }));
    if (damaged > 0) {
      spdlog::warn(
          "fetch {}@{}: {} held chunks do not match their signed hashes (a power cut?); "
          "fetching them again",
          goal_.stack, goal_.version, damaged);
    }
    SOVDEV_ASSIGN(const bool resumed, resume_delta(now_ms));
    if (resumed) return {};
    SOVDEV_ASSIGN(auto missing, cache.missing_chunks(goal_.digest));
    SOVDEV_TRY(check_room(uint64_t{manifest_.chunk_size()} * missing.size()));
    if (phase_ == Phase::failed) return {};
    return begin_chunks(now_ms);
  }
  // Listening before the manifest is asked for lets the hub's answer say where its broadcast
  // of the payload stands: every chunk published after that reaches us. With a base, a delta
  // (another topic) is likely, so the payload's topic waits until it is needed.
  if (!goal_.base) listen(goal_.digest);
  return request_manifest(now_ms);
}

Status BundleFetch::request_manifest(int64_t now_ms) {
  phase_ = Phase::manifest;
  waiting_since_ = now_ms;
  pb::FetchRequest req;
  req.set_want_manifest(true);
  if (goal_.base) ask_for_delta(req, false);
  return send(std::move(req), now_ms);
}

Status BundleFetch::on_response(const pb::FetchResponse& resp, int64_t now_ms) {
  if (phase_ == Phase::done || phase_ == Phase::failed) return {};
  counters_.bytes_received += resp.ByteSizeLong();
  if (phase_ == Phase::epoch_key) return on_epoch_key(resp, now_ms);
  attempts_ = 0;
  // Only chunks join a batch: anything else changes the phase, so what came before is
  // committed first.
  if (resp.body_case() != pb::FetchResponse::kChunk) SOVDEV_TRY(flush(now_ms));
  if (phase_ == Phase::done || phase_ == Phase::failed) return {};
  switch (resp.body_case()) {
    case pb::FetchResponse::kManifest:
      if (phase_ == Phase::manifest) {
        if (resp.broadcast_stream() != 0 &&
            listen_topic_ == settings_.prefix + "/blob/" + to_hex(goal_.digest)) {
          stream_ = resp.broadcast_stream();
          seen_ = resp.broadcast_seq();
        }
        SOVDEV_TRY(on_manifest(resp.manifest(), now_ms));
      }
      // The delta offer may come in the manifest's own answer (fetch_delta.cpp).
      if (phase_ == Phase::delta_offer && answers_delta(resp)) return on_delta_offer(resp, now_ms);
      return {};
    case pb::FetchResponse::kDeltaManifest:
    case pb::FetchResponse::kError:
      if (phase_ == Phase::delta_offer) return on_delta_offer(resp, now_ms);
      if (resp.body_case() == pb::FetchResponse::kError) {
        spdlog::warn("hub says for {}@{}: {}", goal_.stack, goal_.version,
                     escape_control(resp.error()));
        if (phase_ == Phase::delta_chunks) {
          // The hub lost the delta (restart, other replica): fall back to the full payload.
          used_delta_ = false;
          drop_delta_files();
          return begin_chunks(now_ms);
        }
      }
      return {};
    case pb::FetchResponse::kChunk: return on_chunk(resp, now_ms);
    case pb::FetchResponse::BODY_NOT_SET: return {};
  }
  return {};
}

Status BundleFetch::on_manifest(const pb::Signed& envelope, int64_t now_ms) {
  std::string digest;
  auto manifest = trust_.verify_manifest(envelope, &digest);
  // The catalog named the manifest by its digest: anything else is not the hub's answer to
  // this fetch (anyone on the broker can publish on the data topic). The real one still comes,
  // or the request is made again when it times out.
  if (!manifest) {
    ignore("a manifest for " + short_hex(goal_.digest) +
           " that does not verify: " + manifest.error().message);
    return {};
  }
  if (digest != goal_.digest) {
    ignore("manifest " + short_hex(digest) + " sent for " + short_hex(goal_.digest));
    return {};
  }
  store::BundleCache cache(db_);
  SOVDEV_ASSIGN(auto same, cache.find_version(manifest->stack(), manifest->version()));
  std::optional<HeldVersion> same_held;
  if (same) same_held = HeldVersion{same->version, same->digest};
  SOVDEV_ASSIGN(auto highest, cache.highest_verified(manifest->channel(), manifest->stack()));
  std::optional<HeldVersion> highest_held;
  if (highest) highest_held = HeldVersion{highest->version, highest->digest};
  if (auto ok = check_installable(*manifest, digest, settings_.install, highest_held, same_held);
      !ok) {
    return fail(std::move(ok).error());
  }
  manifest_ = std::move(*manifest);
  envelope_ = envelope.SerializeAsString();
  store::BundleMeta meta;
  meta.digest = goal_.digest;
  meta.stack = manifest_.stack();
  meta.channel = manifest_.channel();
  meta.version = manifest_.version();
  meta.envelope = envelope_;
  meta.chunk_count = chunk_count(manifest_);
  meta.payload_size = manifest_.payload_size();
  meta.chunk_size = manifest_.chunk_size();
  // Before anything is written: a bundle the disk cannot hold is not started.
  SOVDEV_TRY(check_room(manifest_.payload_size()));
  if (phase_ == Phase::failed) return {};
  SOVDEV_TRY(cache.begin(meta));
  if (goal_.base) {
    phase_ = Phase::delta_offer;
    waiting_since_ = now_ms;
    return {};
  }
  return begin_chunks(now_ms);
}

Status BundleFetch::begin_chunks(int64_t now_ms) {
  phase_ = Phase::chunks;
  used_delta_ = false;
  listen(goal_.digest);
  store::BundleCache cache(db_);
  SOVDEV_ASSIGN(missing_, cache.missing_chunks(goal_.digest));
  total_chunks_ = chunk_count(manifest_);
  in_flight_.clear();
  if (missing_.empty()) return finish_full(now_ms);
  return fill_window(now_ms);
}

Status BundleFetch::fill_window(int64_t now_ms) {
  if (now_ms < not_before_) return {};
  pb::FetchRequest req;
  if (phase_ == Phase::delta_chunks) {
    req.set_delta(true);
    req.set_base_digest(goal_.base->digest);
  }
  // The lowest missing indices, as few ranges as they make.
  size_t taken = 0;
  while (in_flight_.size() < settings_.window && taken < missing_.size()) {
    const uint32_t index = missing_[taken++];
    in_flight_[index] = now_ms;
    add_chunk(req, index);
  }
  missing_.erase(missing_.begin(), missing_.begin() + static_cast<std::ptrdiff_t>(taken));
  if (req.chunks_size() == 0) return {};
  return send(std::move(req), now_ms);
}

Status BundleFetch::on_chunk(const pb::FetchResponse& resp, int64_t now_ms) {
  const pb::Chunk& chunk = resp.chunk();
  const bool delta = chunk.delta();
  if ((phase_ == Phase::delta_chunks) != delta) return {};  // of an abandoned attempt
  follow(resp);
  // Asked for by us or, on the blob topic, by another agent: any chunk still lacking is kept.
  const auto lacking = std::lower_bound(missing_.begin(), missing_.end(), chunk.index());
  const bool asked = in_flight_.count(chunk.index()) > 0;
  if (!asked && (lacking == missing_.end() || *lacking != chunk.index())) {
    return {};  // a late duplicate: held already
  }
  if (!asked) missing_.erase(lacking);
  counters_.chunks_received++;
  last_arrival_ms_ = now_ms;
  Status ok;
  if (delta) {
    const uint32_t i = chunk.index();
    const uint64_t expected = std::min<uint64_t>(
        delta_.chunk_size(), delta_.delta_size() - uint64_t{i} * delta_.chunk_size());
    if (chunk.data().size() != expected ||
        sha256(chunk.data()) != delta_.chunk_sha256(static_cast<int>(i))) {
      ok = make_error(Errc::signature, "delta chunk " + std::to_string(i) + ": hash mismatch");
    } else {
      SOVDEV_TRY(write_at(delta_file_, uint64_t{i} * delta_.chunk_size(), chunk.data()));
    }
  } else {
    ok = verify_chunk(manifest_, chunk.index(), chunk.data());
    if (ok) {
      if (!batch_) {
        // Chunk batches are committed without an fsync (WAL, synchronous NORMAL): they survive
        // a crash or kill -9 of the agent, and what a power cut takes back is only fetched
        // again. The commit that marks the bundle complete is FULL and makes them all durable.
        // An fsync per burst was ~130 of them in a 64 MiB pull, and 200 agents sharing one
        // disk queued behind each other's.
        SOVDEV_TRY(chunk_durability(db_, true));
        auto tx = store::Transaction::begin(db_);
        if (!tx) {
          (void)chunk_durability(db_, false);
          return std::move(tx).error();
        }
        batch_.emplace(std::move(*tx));
      }
      store::BundleCache cache(db_);
      SOVDEV_TRY(cache.put_chunk(goal_.digest, chunk.index(), chunk.data()));
    }
  }
  in_flight_.erase(chunk.index());
  if (ok) {
    uncommitted_.push_back(chunk.index());
  } else {
    // A damaged chunk is asked for again; the broker is not trusted for content.
    counters_.bad_chunks++;
    spdlog::warn("fetch {}@{}: {}", goal_.stack, goal_.version, ok.error().message);
    missing_.insert(std::lower_bound(missing_.begin(), missing_.end(), chunk.index()),
                    chunk.index());
  }
  return {};  // more are asked for by flush(), once this burst is committed
}

Status BundleFetch::flush(int64_t now_ms) {
  if (batch_) {
    auto committed = batch_->commit();
    batch_.reset();  // rolls back what did not commit
    SOVDEV_TRY(chunk_durability(db_, false));
    if (!committed) {
      // Nothing of the batch is held: those chunks are missing again.
      for (const uint32_t index : uncommitted_) {
        missing_.insert(std::lower_bound(missing_.begin(), missing_.end(), index), index);
      }
      uncommitted_.clear();
      return std::move(committed).error().context("store chunks of " + goal_.stack + "@" +
                                                  std::to_string(goal_.version));
    }
  }
  if (!uncommitted_.empty() && phase_ == Phase::chunks) {
    // The disk writes this batch while the next ones arrive; the flush that marks the bundle
    // complete then waits only for the last of it.
    if (auto started = store::BundleCache(db_).start_writeback(goal_.digest); !started) {
      spdlog::debug("fetch {}@{}: {}", goal_.stack, goal_.version, started.error().message);
    }
  }
  uncommitted_.clear();
  if (phase_ != Phase::chunks && phase_ != Phase::delta_chunks) return {};
  if (missing_.empty() && in_flight_.empty()) {
    return phase_ == Phase::delta_chunks ? finish_delta(now_ms) : finish_full(now_ms);
  }
  return fill_window(now_ms);
}

Status BundleFetch::finish_full(int64_t now_ms) {
  // Every chunk was checked against its signed hash before it was committed, so the payload is
  // the publisher's. Whether it decodes into valid objects is checked by the apply, which
  // decodes (and hashes) it anyway: a second full pass here only delayed the apply. A payload
  // that fails there is rolled back from and never tried again.
  store::BundleCache cache(db_);
  SOVDEV_ASSIGN(auto info, cache.find(goal_.digest));
  if (!info) return fail(make_error(Errc::store, "bundle vanished from the cache"));
  const auto flush_start = std::chrono::steady_clock::now();
  SOVDEV_TRY(cache.set_state(goal_.digest, store::BundleState::complete));
  durable_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - flush_start)
                    .count();
  SOVDEV_TRY(cache.set_state(goal_.digest, store::BundleState::verified));
  return payload_verified(now_ms);
}

Status BundleFetch::on_tick(int64_t now_ms) {
  SOVDEV_TRY(flush(now_ms));
  if (phase_ == Phase::done || phase_ == Phase::failed) return {};
  if (phase_ == Phase::epoch_key) return epoch_key_timeout(now_ms);
  const int64_t timeout = settings_.request_timeout_ms;
  if (phase_ == Phase::manifest) {
    if (now_ms - waiting_since_ < timeout || now_ms < not_before_) return {};
    attempts_++;
    not_before_ = now_ms + backoff_ms();
    return request_manifest(now_ms);
  }
  if (phase_ == Phase::delta_offer) {
    if (delta_ask_at_ != 0) {
      // The hub is making the delta: ask again when it said to. The phase stays: the manifest
      // in the answer is ignored here, the delta part is what counts.
      if (now_ms < delta_ask_at_) return {};
      delta_ask_at_ = 0;
      waiting_since_ = now_ms;
      pb::FetchRequest req;
      ask_for_delta(req, true);
      return send(std::move(req), now_ms);
    }
    // No answer about a delta: do not wait for it any longer.
    if (now_ms - waiting_since_ >= timeout) return begin_chunks(now_ms);
    return {};
  }
  bool expired = false;
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (now_ms - std::max(it->second, last_arrival_ms_) >= timeout) {
      missing_.insert(std::lower_bound(missing_.begin(), missing_.end(), it->first), it->first);
      it = in_flight_.erase(it);
      expired = true;
    } else {
      ++it;
    }
  }
  if (expired) {
    // Whatever the hub numbered after our position did not come either: forget the position,
    // so the hub sends again instead of counting it as on its way (never suppressed forever).
    stream_ = 0;
    seen_ = 0;
    attempts_++;
    not_before_ = now_ms + backoff_ms();
    spdlog::info("fetch {}@{}: hub silent, asking again in {} ms", goal_.stack, goal_.version,
                 not_before_ - now_ms);
  }
  return fill_window(now_ms);
}

Status BundleFetch::on_reconnect(int64_t now_ms) {
  SOVDEV_TRY(flush(now_ms));
  if (phase_ == Phase::done || phase_ == Phase::failed) return {};
  attempts_ = 0;
  not_before_ = 0;
  // Broadcasts made while we were away never came: the position means nothing any more.
  stream_ = 0;
  seen_ = 0;
  if (phase_ == Phase::manifest) return request_manifest(now_ms);
  if (phase_ == Phase::delta_offer) return begin_chunks(now_ms);
  if (phase_ == Phase::epoch_key) return request_epoch_key(now_ms);
  for (const auto& [index, when] : in_flight_) {
    missing_.insert(std::lower_bound(missing_.begin(), missing_.end(), index), index);
  }
  in_flight_.clear();
  return fill_window(now_ms);
}

}  // namespace sovdev::agent
