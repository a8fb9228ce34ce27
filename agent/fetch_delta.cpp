// The delta half of a bundle fetch: taking up the hub's delta offer (or waiting while the hub
// makes it), collecting the delta in the work folder, going on with one an earlier run left,
// and rebuilding the payload from it. The chunk half is in fetch.cpp.
#include <algorithm>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "agent/delta_rebuild.hpp"
#include "agent/fetch.hpp"
#include "bundles/delta.hpp"
#include "bundles/hash.hpp"
#include "bundles/messages.hpp"
#include "common/hex.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::agent {

void BundleFetch::ask_for_delta(pb::FetchRequest& request, bool have_manifest) const {
  request.set_want_manifest(true);
  request.set_base_digest(goal_.base->digest);
  // One answer for manifest, delta manifest and a small delta; hubs that predate it answer in
  // the older messages, which are handled as before.
  request.set_inline_delta_max(kMaxInlineDelta);
  request.set_delta_offer_only(have_manifest);
}

Status BundleFetch::on_delta_offer(const pb::FetchResponse& resp, int64_t now_ms) {
  if (resp.delta_retry_ms() > 0) {
    // The hub is making the delta (seconds for a big bundle) and answers everybody meanwhile.
    // Waiting pays: a delta is usually a small part of the payload. The wait is bounded, at
    // least a minute and never under six request timeouts (a slow link's hub is given as many
    // chances), so a hub that never finishes costs a minute, then the full payload.
    const int64_t budget = std::max<int64_t>(60000, 6 * settings_.request_timeout_ms);
    if (delta_wait_started_ == 0) {
      delta_wait_started_ = now_ms;
      spdlog::info("fetch {}@{}: the hub is making the delta; waiting up to {} s for it",
                   goal_.stack, goal_.version, budget / 1000);
    }
    if (now_ms - delta_wait_started_ >= budget) {
      spdlog::warn("fetch {}@{}: no delta after {} s of waiting: fetching in full", goal_.stack,
                   goal_.version, (now_ms - delta_wait_started_) / 1000);
      delta_ask_at_ = 0;
      return begin_chunks(now_ms);
    }
    // The hub's hint, within sane bounds: never a flood, never longer than a timeout.
    delta_ask_at_ =
        now_ms + std::clamp<int64_t>(resp.delta_retry_ms(), 100,
                                     std::max<int64_t>(100, settings_.request_timeout_ms));
    return {};
  }
  delta_ask_at_ = 0;
  // The offer beside the manifest (one-answer exchange), or alone as the body.
  const pb::Signed* envelope = resp.has_delta_offer() ? &resp.delta_offer()
                               : resp.body_case() == pb::FetchResponse::kDeltaManifest
                                   ? &resp.delta_manifest()
                                   : nullptr;
  if (envelope == nullptr) return begin_chunks(now_ms);
  const std::string_view data = resp.delta_data();
  auto delta = verify_offered_delta(trust_, *envelope, goal_.digest, goal_.base->digest, data);
  Status usable;
  if (!delta) {
    usable = std::move(delta).error();
  } else if (delta->delta_size() >= manifest_.payload_size()) {
    usable = make_error(Errc::invalid, "not smaller than the bundle");
  } else if (is_inline_delta(*delta)) {
    usable = verify_inline_delta(*delta, data);
  } else if (!data.empty()) {
    usable = make_error(Errc::invalid, "delta bytes beside a chunked delta manifest");
  }
  if (!usable) {
    spdlog::warn("delta for {}@{} not usable ({}): fetching in full", goal_.stack, goal_.version,
                 usable.error().message);
    return begin_chunks(now_ms);
  }
  delta_ = std::move(*delta);
  SOVDEV_TRY(fs::make_dirs(settings_.work_dir, 0700));
  delta_file_ = delta_path();
  std::filesystem::remove(delta_file_);
  if (is_inline_delta(delta_)) {
    // All of it is here and checked against its signed hash: rebuild at once.
    used_delta_ = true;
    phase_ = Phase::delta_chunks;
    SOVDEV_TRY(fs::write_file_atomic(delta_file_, data, 0600));
    return finish_delta(now_ms);
  }
  // Saved so that a restart goes on with this delta rather than the whole payload.
  SOVDEV_TRY(fs::write_file_atomic(delta_file_ + ".manifest", envelope->SerializeAsString(), 0600));
  missing_.clear();
  for (uint32_t i = 0; i < static_cast<uint32_t>(delta_.chunk_sha256_size()); i++) {
    missing_.push_back(i);
  }
  return begin_delta(now_ms);
}

Status BundleFetch::begin_delta(int64_t now_ms) {
  used_delta_ = true;
  phase_ = Phase::delta_chunks;
  listen(delta_.delta_sha256());
  total_chunks_ = static_cast<uint32_t>(delta_.chunk_sha256_size());
  in_flight_.clear();
  if (missing_.empty()) return finish_delta(now_ms);
  return fill_window(now_ms);
}

std::string BundleFetch::delta_path() const {
  return settings_.work_dir + "/" + to_hex(goal_.digest) + ".delta";
}

void BundleFetch::drop_delta_files() {
  std::error_code ec;
  const std::string path = delta_file_.empty() ? delta_path() : delta_file_;
  std::filesystem::remove(path, ec);
  std::filesystem::remove(path + ".manifest", ec);
}

Expected<bool> BundleFetch::resume_delta(int64_t now_ms) {
  const std::string path = delta_path();
  std::error_code ec;
  if (!std::filesystem::exists(path + ".manifest", ec)) return false;
  pb::Signed envelope;
  auto saved = fs::read_file(path + ".manifest", 1 << 20);
  std::optional<pb::DeltaManifest> delta;
  if (saved && envelope.ParseFromString(*saved)) {
    if (goal_.base) {
      auto checked = verify_offered_delta(trust_, envelope, goal_.digest, goal_.base->digest);
      if (checked && !is_inline_delta(*checked)) delta = std::move(*checked);
    }
  }
  store::BundleCache cache(db_);
  std::optional<store::BundleInfo> base;
  if (goal_.base) {
    SOVDEV_ASSIGN(auto found, cache.find(goal_.base->digest));
    base = std::move(found);
  }
  if (!delta || !base || base->state != store::BundleState::verified ||
      delta->manifest_digest() != goal_.digest || delta->base_digest() != base->digest ||
      delta->delta_size() >= manifest_.payload_size()) {
    spdlog::info("fetch {}@{}: the delta of an earlier run does not fit any more; not used",
                 goal_.stack, goal_.version);
    drop_delta_files();
    return false;
  }
  delta_ = std::move(*delta);
  delta_file_ = path;
  // The file was written without an fsync: only chunks that match their signed hashes count.
  missing_.clear();
  uint32_t held = 0;
  {
    auto file = fs::InputFile::open(path);  // absent when no chunk had come yet
    for (uint32_t i = 0; i < static_cast<uint32_t>(delta_.chunk_sha256_size()); i++) {
      const uint64_t at = uint64_t{i} * delta_.chunk_size();
      const uint64_t size = std::min<uint64_t>(delta_.chunk_size(), delta_.delta_size() - at);
      Expected<std::string_view> chunk = file ? file->read(static_cast<size_t>(size))
                                              : Expected<std::string_view>(std::string_view());
      const bool good = chunk && chunk->size() == size &&
                        sha256(*chunk) == delta_.chunk_sha256(static_cast<int>(i));
      if (good) {
        held++;
      } else {
        missing_.push_back(i);
      }
    }
  }
  spdlog::info("fetch {}@{}: going on with the delta of an earlier run ({} of {} chunks held)",
               goal_.stack, goal_.version, held, delta_.chunk_sha256_size());
  SOVDEV_TRY(begin_delta(now_ms));
  return true;
}

Status BundleFetch::finish_delta(int64_t now_ms) {
  store::BundleCache cache(db_);
  SOVDEV_ASSIGN(auto base, cache.find(goal_.base->digest));
  if (!base) return begin_chunks(now_ms);
  auto rebuilt = rebuild_from_delta(db_, manifest_, envelope_, goal_.digest, *base, delta_,
                                    delta_file_, settings_.work_dir);
  drop_delta_files();
  if (!rebuilt) {
    spdlog::warn("delta for {}@{} failed ({}): fetching in full", goal_.stack, goal_.version,
                 rebuilt.error().message);
    return begin_chunks(now_ms);
  }
  return payload_verified(now_ms);
}

Status remove_stale_delta_files(store::Database& db, const std::string& work_dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(work_dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return {};
  store::BundleCache cache(db);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    const bool manifest = name.size() > 9 && name.compare(name.size() - 9, 9, ".manifest") == 0;
    if (manifest) name.resize(name.size() - 9);
    if (name.size() < 6 || name.compare(name.size() - 6, 6, ".delta") != 0) continue;
    const auto digest = from_hex(name.substr(0, name.size() - 6));
    if (digest && digest->size() == kDigestSize) {
      SOVDEV_ASSIGN(auto held, cache.find(*digest));
      if (held && held->state == store::BundleState::partial) continue;
    }
    std::error_code gone;
    std::filesystem::remove(it->path(), gone);
  }
  if (ec) return make_error(Errc::io, "read folder " + work_dir + ": " + ec.message());
  return {};
}

}  // namespace sovdev::agent
