#include "agent/images/blob_fetch.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "bundles/blob_wire.hpp"
#include "bundles/hash.hpp"
#include "bundles/manifest_rules.hpp"
#include "bundles/messages.hpp"
#include "common/hex.hpp"
#include "common/text.hpp"

namespace sovdev::agent::images {
namespace {

// As BundleFetch's chunk batches: committed without an fsync (the rename after the decode
// check syncs the file, and a power cut only costs chunks fetched again).
Status blob_batch_durability(store::Database& db, bool batch) {
  SOVDEV_TRY(db.exec_cached(batch ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL"));
  return db.exec_cached(batch ? "PRAGMA wal_autocheckpoint = 16384"
                              : "PRAGMA wal_autocheckpoint = 1000");
}

WindowSettings window_settings(const FetchSettings& s) {
  return {s.window, s.request_timeout_ms, s.backoff_min_ms, s.backoff_max_ms};
}

}  // namespace

BlobFetch::BlobFetch(store::Database& db, mqtt::Client& client, const FetchSettings& settings,
                     FetchCounters& counters, pb::ImageBlob blob, std::string label)
    : db_(db),
      client_(client),
      settings_(settings),
      counters_(counters),
      blob_(std::move(blob)),
      label_(std::move(label)),
      window_(window_settings(settings)) {}

BlobFetch::~BlobFetch() {
  stop_listening();
  if (batch_) {
    batch_.reset();  // rolled back: those chunks are fetched again
    (void)blob_batch_durability(db_, false);
  }
}

std::string BlobFetch::what() const {
  return "fetch blob " + short_hex(blob_.digest()) + " of " + label_;
}

void BlobFetch::listen() {
  const std::string topic = settings_.prefix + "/blob/" + to_hex(blob_.wire_digest());
  if (topic == listen_topic_) return;
  stop_listening();
  auto subscribed =
      client_.subscribe_as(topic, 0, settings_.prefix + "/agent/" + settings_.agent_id + "/data");
  if (!subscribed) {
    spdlog::warn("{}: {}; asking for answers on the data topic only", what(),
                 subscribed.error().message);
    return;
  }
  listen_topic_ = topic;
}

void BlobFetch::stop_listening() {
  window_.forget_position();
  if (listen_topic_.empty()) return;
  (void)client_.unsubscribe(listen_topic_);
  listen_topic_.clear();
}

uint32_t BlobFetch::progress_permille() const {
  if (phase_ == Phase::done) return 1000;
  return window_.progress_permille();
}

Status BlobFetch::fail(Error error) {
  phase_ = Phase::failed;
  error_ = error.message;
  error_code_ = error.code;
  stop_listening();
  spdlog::error("{}: {}", what(), error.message);
  return {};
}

void BlobFetch::ignore(const std::string& why) {
  counters_.ignored_responses++;
  counters_.last_ignored = why;
  spdlog::warn("{}: ignored {}", what(), why);
}

std::optional<Error> BlobFetch::disk_full(uint64_t bytes, bool anyway) const {
  if (settings_.state_dir.empty()) return std::nullopt;
  struct statvfs fs {};
  if (::statvfs(settings_.state_dir.c_str(), &fs) != 0) return std::nullopt;
  const uint64_t has = uint64_t{fs.f_bavail} * fs.f_frsize;
  const uint64_t needs = bytes + bytes / 64 + 128 * 1024;
  if (has >= needs && !anyway) return std::nullopt;
  return make_error(Errc::io, "disk full: needs " + human_bytes(needs) + ", has " +
                                  human_bytes(has) + " in " + settings_.state_dir);
}

Status BlobFetch::storage_failed(const Error& error) {
  if (phase_ == Phase::done || phase_ == Phase::failed) return error;
  if (batch_) {
    batch_.reset();
    (void)blob_batch_durability(db_, false);
  }
  uncommitted_.clear();
  // What this fetch wrote goes: a full disk must not keep the site without room.
  if (auto reset = store::ImageBlobs(db_).reset_partial(blob_.digest()); !reset) {
    spdlog::warn("{}: dropping the partial blob: {}", what(), reset.error().message);
  }
  const bool full = error.message.find("No space left") != std::string::npos ||
                    error.message.find("disk is full") != std::string::npos;
  if (auto room = disk_full(blob_.wire_size(), full)) return fail(std::move(*room));
  return fail(make_error(Errc::io, error.message).context("store blob"));
}

Status BlobFetch::send(pb::FetchRequest request, int64_t now_ms) {
  request.set_schema(1);
  request.set_agent_id(settings_.agent_id);
  request.set_request_id(++request_id_);
  request.set_blob(blob_.wire_digest());
  if (!listen_topic_.empty()) window_.put_position(request);
  mqtt::Message m;
  m.topic = settings_.prefix + "/fetch/" + settings_.agent_id;
  m.payload = request.SerializeAsString();
  m.response_topic = settings_.prefix + "/agent/" + settings_.agent_id + "/data";
  if (auto sent = client_.publish(m); !sent) {
    window_.back_off(now_ms);  // offline or the outgoing buffer full: the tick asks again
    return {};
  }
  counters_.requests_sent++;
  return {};
}

Status BlobFetch::start(int64_t now_ms) {
  store::ImageBlobs store(db_);
  SOVDEV_ASSIGN(auto info, store.find(blob_.digest()));
  if (!info) return fail(make_error(Errc::internal, "the blob has no row in agent.db"));
  if (info->state == store::BlobState::verified) {
    phase_ = Phase::done;
    return {};
  }
  if (!info->blob_manifest.empty()) {
    // A transfer interrupted earlier: its manifest was checked and kept.
    auto manifest = blobwire::parse_blob_manifest(info->blob_manifest, blob_);
    if (manifest) {
      manifest_ = std::move(*manifest);
      const std::string whole = store.blob_path(blob_.digest());
      std::error_code ec;
      if (std::filesystem::exists(whole, ec)) {
        // Killed between the rename and its commit: the file is checked again and kept.
        if (check_file(whole)) {
          SOVDEV_TRY(store.adopt_verified(blob_.digest()));
          phase_ = Phase::done;
          return {};
        }
        std::filesystem::remove(whole, ec);
      }
      SOVDEV_ASSIGN(const uint32_t damaged,
                    store.drop_damaged(blob_.digest(), [this](uint32_t i, std::string_view d) {
                      return blobwire::chunk_matches(manifest_, i, d);
                    }));
      if (damaged > 0) {
        spdlog::warn(
            "{}: {} held chunks do not match their hashes (a power cut?); fetching "
            "them again",
            what(), damaged);
      }
      SOVDEV_ASSIGN(auto missing, store.missing_chunks(blob_.digest()));
      if (auto full = disk_full(uint64_t{manifest_.chunk_size()} * missing.size(), false)) {
        return fail(std::move(*full));
      }
      return begin_chunks(now_ms);
    }
  }
  // Listening first lets the hub's answer say where its broadcast of the blob stands.
  listen();
  return request_manifest(now_ms);
}

Status BlobFetch::request_manifest(int64_t now_ms) {
  phase_ = Phase::manifest;
  waiting_since_ = now_ms;
  pb::FetchRequest req;
  req.set_want_manifest(true);
  return send(std::move(req), now_ms);
}

Status BlobFetch::on_response(const pb::FetchResponse& resp, int64_t now_ms) {
  if (phase_ == Phase::done || phase_ == Phase::failed) return {};
  counters_.bytes_received += resp.ByteSizeLong();
  window_.answered();
  if (resp.body_case() != pb::FetchResponse::kChunk) SOVDEV_TRY(flush(now_ms));
  if (phase_ == Phase::done || phase_ == Phase::failed) return {};
  if (!resp.blob_manifest().empty()) {
    if (phase_ == Phase::manifest) return on_manifest(resp.blob_manifest(), resp, now_ms);
    return {};
  }
  switch (resp.body_case()) {
    case pb::FetchResponse::kChunk: return on_chunk(resp, now_ms);
    case pb::FetchResponse::kError:
      // "unknown blob" from a hub that does not hold it (yet): asked again after the timeout.
      spdlog::warn("hub says for {}: {}", what(), escape_control(resp.error()));
      return {};
    default: return {};
  }
}

Status BlobFetch::on_manifest(const std::string& bytes, const pb::FetchResponse& resp,
                              int64_t now_ms) {
  auto manifest = blobwire::parse_blob_manifest(bytes, blob_);
  if (!manifest) {
    // Not the manifest the signed listing names: anyone on the broker can publish on the
    // data topic. The real one still comes, or the request is made again at its timeout.
    ignore("a blob manifest the bundle does not name: " + manifest.error().message);
    return {};
  }
  manifest_ = std::move(*manifest);
  if (resp.broadcast_stream() != 0 && !listen_topic_.empty()) {
    window_.set_position(resp.broadcast_stream(), resp.broadcast_seq());
  }
  if (auto full = disk_full(manifest_.wire_size(), false)) return fail(std::move(*full));
  SOVDEV_TRY(store::ImageBlobs(db_).set_manifest(blob_.digest(), bytes, manifest_.chunk_size(),
                                                 blobwire::chunk_count(manifest_)));
  return begin_chunks(now_ms);
}

Status BlobFetch::begin_chunks(int64_t now_ms) {
  phase_ = Phase::chunks;
  listen();
  SOVDEV_ASSIGN(auto missing, store::ImageBlobs(db_).missing_chunks(blob_.digest()));
  window_.reset(std::move(missing), blobwire::chunk_count(manifest_));
  if (window_.complete()) return finish(now_ms);
  return fill_window(now_ms);
}

Status BlobFetch::fill_window(int64_t now_ms) {
  pb::FetchRequest req;
  if (window_.fill(req, now_ms) == 0) return {};
  return send(std::move(req), now_ms);
}

Status BlobFetch::on_chunk(const pb::FetchResponse& resp, int64_t now_ms) {
  if (phase_ != Phase::chunks) return {};
  const pb::Chunk& chunk = resp.chunk();
  if (chunk.delta()) return {};  // no deltas asked for
  window_.follow(resp, !listen_topic_.empty());
  if (!window_.arrived(chunk.index(), now_ms)) return {};  // a late duplicate
  counters_.chunks_received++;
  if (!blobwire::chunk_matches(manifest_, chunk.index(), chunk.data())) {
    // A damaged or foreign chunk is asked for again; the broker is not trusted for content.
    counters_.bad_chunks++;
    spdlog::warn("{}: chunk {}: hash mismatch", what(), chunk.index());
    window_.again(chunk.index());
    return {};
  }
  if (!batch_ && db_.autocommit()) {
    // Otherwise another blob's fetch holds the batch open: these chunks join it.
    SOVDEV_TRY(blob_batch_durability(db_, true));
    auto tx = store::Transaction::begin(db_);
    if (!tx) {
      (void)blob_batch_durability(db_, false);
      return std::move(tx).error();
    }
    batch_.emplace(std::move(*tx));
  }
  SOVDEV_TRY(store::ImageBlobs(db_).put_chunk(blob_.digest(), chunk.index(), chunk.data()));
  uncommitted_.push_back(chunk.index());
  return {};  // more are asked for by flush(), once this burst is committed
}

Status BlobFetch::flush(int64_t now_ms) {
  // Stored in another fetch's batch, not committed yet: that one flushes first.
  if (!batch_ && !uncommitted_.empty() && !db_.autocommit()) return {};
  if (batch_) {
    auto committed = batch_->commit();
    batch_.reset();
    SOVDEV_TRY(blob_batch_durability(db_, false));
    if (!committed) {
      for (const uint32_t index : uncommitted_) window_.again(index);
      uncommitted_.clear();
      return std::move(committed).error().context(what());
    }
    if (auto started = store::ImageBlobs(db_).start_writeback(blob_.digest()); !started) {
      spdlog::debug("{}: {}", what(), started.error().message);
    }
  }
  uncommitted_.clear();
  if (phase_ != Phase::chunks) return {};
  if (window_.complete()) return finish(now_ms);
  return fill_window(now_ms);
}

Status BlobFetch::check_file(const std::string& path) const {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(Errc::io, "open " + path + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  SOVDEV_ASSIGN(auto decoder,
                blobwire::BlobDecoder::create(blob_.digest(), blob_.size(),
                                              [](std::string_view) -> Status { return {}; }));
  std::string buffer(64 * 1024, '\0');
  uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(Errc::io, "read " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > manifest_.wire_size())
      return make_error(Errc::signature, "longer than its wire size");
    SOVDEV_TRY(decoder.write(std::string_view(buffer.data(), static_cast<size_t>(n))));
  }
  return decoder.finish();
}

Status BlobFetch::finish(int64_t now_ms) {
  (void)now_ms;
  store::ImageBlobs store(db_);
  const std::string partial = store.partial_path(blob_.wire_digest());
  if (auto checked = check_file(partial); !checked) {
    if (checked.error().code == Errc::io) return checked;
    // Every chunk matched the hashes the signed listing names, yet the whole is not the
    // signed blob: the publisher's error, not the wire's. Fetching it again cannot help.
    SOVDEV_TRY(store.reset_partial(blob_.digest()));
    return fail(make_error(Errc::signature,
                           "the blob's chunks do not decode to its signed digest and size: " +
                               checked.error().message));
  }
  SOVDEV_TRY(store.mark_verified(blob_.digest()));
  phase_ = Phase::done;
  stop_listening();
  spdlog::info("{}: verified, {} bytes", what(), blob_.size());
  return {};
}

Status BlobFetch::on_tick(int64_t now_ms) {
  SOVDEV_TRY(flush(now_ms));
  if (phase_ == Phase::done || phase_ == Phase::failed) return {};
  if (phase_ == Phase::manifest) {
    if (now_ms - waiting_since_ < settings_.request_timeout_ms || !window_.may_send(now_ms)) {
      return {};
    }
    window_.silent(now_ms);
    return request_manifest(now_ms);
  }
  if (window_.expire(now_ms)) spdlog::info("{}: hub silent, asking again", what());
  return fill_window(now_ms);
}

Status BlobFetch::on_reconnect(int64_t now_ms) {
  SOVDEV_TRY(flush(now_ms));
  if (phase_ == Phase::done || phase_ == Phase::failed) return {};
  window_.clear_backoff();
  window_.forget_position();
  if (phase_ == Phase::manifest) return request_manifest(now_ms);
  window_.all_again();
  return fill_window(now_ms);
}

}  // namespace sovdev::agent::images
