#include "agent/images/image_sync.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "bundles/blob_wire.hpp"
#include "bundles/hash.hpp"
#include "bundles/image_rules.hpp"
#include "common/hex.hpp"
#include "common/text.hpp"
#include "platform/store/agent_cache.hpp"
#include "platform/store/image_blobs.hpp"

namespace sovdev::agent::images {
namespace {

store::ImageBlobMeta listing_meta(const pb::ImageBlob& b) {
  return {b.digest(), b.wire_digest(), b.media_type(), b.size(), b.wire_size()};
}

std::vector<pb::ImageBlob> arch_blobs(const pb::BundleManifest& manifest, std::string_view arch) {
  std::vector<pb::ImageBlob> out;
  for (const pb::ImageBlob* b : blobs_for_arch(manifest, arch)) out.push_back(*b);
  return out;
}

// "sha256:<64 hex>" as the raw digest, or "" when it is not one.
std::string raw_digest(const nlohmann::json& descriptor) {
  if (!descriptor.is_object()) return {};
  const auto it = descriptor.find("digest");
  if (it == descriptor.end() || !it->is_string()) return {};
  const std::string text = it->get<std::string>();
  if (text.size() != 71 || text.compare(0, 7, "sha256:") != 0) return {};
  auto raw = from_hex(text.substr(7));
  return raw && raw->size() == 32 ? *raw : std::string();
}

// The descriptors an index or an image manifest names.
std::vector<const nlohmann::json*> named_descriptors(const nlohmann::json& doc,
                                                     std::string_view media_type) {
  std::vector<const nlohmann::json*> out;
  auto add_list = [&](const char* key) {
    const auto it = doc.find(key);
    if (it == doc.end()) return;
    if (!it->is_array()) {
      out.push_back(&*it);  // not a list: reported as a descriptor without a digest
      return;
    }
    for (const auto& d : *it) out.push_back(&d);
  };
  if (media_type == kMediaIndex) {
    add_list("manifests");
  } else {
    const auto config = doc.find("config");
    if (config != doc.end()) out.push_back(&*config);
    add_list("layers");
  }
  return out;
}

}  // namespace

Expected<std::vector<std::string>> kept_bundles(store::Database& db) {
  store::BundleCache cache(db);
  store::ApplyLog log(db);
  SOVDEV_ASSIGN(auto bundles, cache.list());
  std::set<std::string> stacks;
  for (const auto& b : bundles) stacks.insert(b.stack);
  std::vector<std::string> keep;
  for (const auto& stack : stacks) {
    SOVDEV_ASSIGN(auto good, log.last_good(stack));
    if (good) keep.push_back(good->digest);
    SOVDEV_ASSIGN(auto newest, cache.highest_verified(stack));
    if (newest) keep.push_back(newest->digest);
  }
  return keep;
}

Expected<bool> images_held(store::Database& db, const pb::BundleManifest& manifest,
                           std::string_view digest, std::string_view arch, int64_t now_s) {
  const auto needed = arch_blobs(manifest, arch);
  if (needed.empty()) return true;
  std::vector<store::ImageBlobMeta> metas;
  for (const auto& b : needed) metas.push_back(listing_meta(b));
  store::ImageBlobs blobs(db);
  SOVDEV_TRY(blobs.need(digest, metas, now_s));
  for (const auto& b : needed) {
    SOVDEV_ASSIGN(auto info, blobs.find(b.digest()));
    if (!info || info->state != store::BlobState::verified) return false;
  }
  return true;
}

ImageSync::ImageSync(store::Database& db, mqtt::Client& client, const FetchSettings& fetch,
                     const ImageSettings& images, FetchCounters& counters,
                     pb::BundleManifest manifest, std::string digest)
    : db_(db),
      client_(client),
      fetch_(fetch),
      images_(images),
      counters_(counters),
      manifest_(std::move(manifest)),
      digest_(std::move(digest)) {}

std::string ImageSync::label() const {
  return manifest_.stack() + "@" + std::to_string(manifest_.version());
}

Status ImageSync::fail(Error error) {
  phase_ = Phase::failed;
  error_ = error.message;
  error_code_ = error.code;
  running_.clear();
  spdlog::error("images of {}: {}", label(), error.message);
  return {};
}

Status ImageSync::start(int64_t now_ms) {
  needed_ = arch_blobs(manifest_, fetch_.install.arch);
  std::vector<store::ImageBlobMeta> metas;
  for (const auto& b : needed_) {
    metas.push_back(listing_meta(b));
    bytes_needed_ += b.size();
  }
  SOVDEV_TRY(store::ImageBlobs(db_).need(digest_, metas, now_ms / 1000));
  SOVDEV_TRY(count_held());
  return advance(now_ms);
}

Status ImageSync::count_held() {
  store::ImageBlobs blobs(db_);
  blobs_held_ = 0;
  bytes_held_ = 0;
  for (const auto& b : needed_) {
    SOVDEV_ASSIGN(auto info, blobs.find(b.digest()));
    if (info && info->state == store::BlobState::verified) {
      blobs_held_++;
      bytes_held_ += b.size();
    }
  }
  return {};
}

Status ImageSync::make_room(uint64_t bytes) {
  store::ImageBlobs blobs(db_);
  SOVDEV_ASSIGN(uint64_t reserved, blobs.bytes_reserved());
  if (reserved + bytes <= images_.quota) return {};
  SOVDEV_ASSIGN(auto keep, kept_bundles(db_));
  keep.push_back(digest_);
  SOVDEV_ASSIGN(auto offered, blobs.collectable(keep));
  for (const auto& victim : offered) {
    if (reserved + bytes <= images_.quota) break;
    const bool counted = victim.state == store::BlobState::verified || victim.chunk_size > 0;
    SOVDEV_ASSIGN(const bool removed, blobs.remove(victim.digest));
    if (removed && counted) reserved -= std::min(reserved, victim.wire_size);
    spdlog::info("images: removed blob {} ({}), no kept bundle needs it", short_hex(victim.digest),
                 human_bytes(victim.wire_size));
  }
  if (reserved + bytes <= images_.quota) return {};
  return make_error(Errc::io, "disk full: the image quota of " + human_bytes(images_.quota) +
                                  " holds " + human_bytes(reserved) + " the kept versions need; " +
                                  label() + " needs " + human_bytes(bytes) +
                                  " more (raise [images] quota in the agent config)");
}

Status ImageSync::advance(int64_t now_ms) {
  store::ImageBlobs blobs(db_);
  while (phase_ == Phase::fetching && running_.size() < images_.parallel &&
         next_ < needed_.size()) {
    const pb::ImageBlob& b = needed_[next_++];
    SOVDEV_ASSIGN(auto info, blobs.find(b.digest()));
    if (info && info->state == store::BlobState::verified) continue;
    // A blob whose manifest is kept was counted at its first start.
    const uint64_t more = info && info->chunk_size > 0 ? 0 : b.wire_size();
    if (auto room = make_room(more); !room) return fail(std::move(room).error());
    auto fetch = std::make_unique<BlobFetch>(db_, client_, fetch_, counters_, b, label());
    SOVDEV_TRY(fetch->start(now_ms));
    running_.push_back(std::move(fetch));
    SOVDEV_TRY(collect(now_ms));
  }
  if (phase_ != Phase::fetching || !running_.empty() || next_ < needed_.size()) return {};
  SOVDEV_TRY(count_held());
  if (blobs_held_ < needed_.size()) {
    return fail(make_error(Errc::internal, "blobs missing after their fetches ended"));
  }
  if (auto checked = check_json(); !checked) return fail(std::move(checked).error());
  phase_ = Phase::done;
  spdlog::info("images of {}: {} blobs held, {}", label(), blobs_held_, human_bytes(bytes_held_));
  return {};
}

Status ImageSync::collect(int64_t now_ms) {
  bool ended = false;
  for (auto it = running_.begin(); it != running_.end();) {
    const auto phase = (*it)->phase();
    if (phase == BlobFetch::Phase::failed) {
      Error error{(*it)->error_code(),
                  "blob " + short_hex((*it)->blob().digest()) + ": " + (*it)->error()};
      return fail(std::move(error));
    }
    if (phase == BlobFetch::Phase::done) {
      it = running_.erase(it);
      ended = true;
      continue;
    }
    ++it;
  }
  if (!ended) return {};
  SOVDEV_TRY(count_held());
  return advance(now_ms);
}

Status ImageSync::on_response(const pb::FetchResponse& response, int64_t now_ms) {
  if (phase_ != Phase::fetching) return {};
  if (response.body_case() != pb::FetchResponse::kChunk) SOVDEV_TRY(flush_all(now_ms));
  for (auto& f : running_) {
    if (f->blob().wire_digest() != response.blob()) continue;
    SOVDEV_TRY(f->on_response(response, now_ms));
    return collect(now_ms);
  }
  return {};  // a blob no longer fetched: stale
}

Status ImageSync::flush_all(int64_t now_ms) {
  for (auto& f : running_) {
    if (f->holds_batch()) SOVDEV_TRY(f->flush(now_ms));
  }
  for (auto& f : running_) SOVDEV_TRY(f->flush(now_ms));
  return {};
}

Status ImageSync::flush(int64_t now_ms) {
  SOVDEV_TRY(flush_all(now_ms));
  return collect(now_ms);
}

Status ImageSync::on_tick(int64_t now_ms) {
  SOVDEV_TRY(flush_all(now_ms));
  for (auto& f : running_) SOVDEV_TRY(f->on_tick(now_ms));
  return collect(now_ms);
}

Status ImageSync::on_reconnect(int64_t now_ms) {
  SOVDEV_TRY(flush_all(now_ms));
  for (auto& f : running_) SOVDEV_TRY(f->on_reconnect(now_ms));
  return collect(now_ms);
}

Status ImageSync::storage_failed(const Error& error) {
  if (phase_ != Phase::fetching) return error;
  Error first = error;
  for (auto& f : running_) {
    (void)f->storage_failed(error);
    if (f->phase() == BlobFetch::Phase::failed) first = Error{f->error_code(), f->error()};
  }
  return fail(make_error(Errc::io, first.message));
}

Status ImageSync::check_json() {
  store::ImageBlobs blobs(db_);
  for (const auto& b : needed_) {
    if (b.media_type() != kMediaIndex && b.media_type() != kMediaManifest) continue;
    const std::string path = blobs.blob_path(b.digest());
    std::ifstream in(path, std::ios::binary);
    std::string text;
    auto decoder =
        blobwire::BlobDecoder::create(b.digest(), b.size(), [&](std::string_view bytes) -> Status {
          text.append(bytes);
          return {};
        });
    if (!decoder) return std::move(decoder).error();
    std::string buffer(64 * 1024, '\0');
    while (in) {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      const auto n = static_cast<size_t>(in.gcount());
      if (n == 0) break;
      SOVDEV_TRY(decoder->write(std::string_view(buffer.data(), n)));
    }
    SOVDEV_TRY(decoder->finish());
    const std::string what = "the bundle's images are refused: " + std::string(b.media_type()) +
                             " " + short_hex(b.digest());
    const auto doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      return make_error(Errc::signature, what + " is not a JSON object");
    }
    for (const nlohmann::json* d : named_descriptors(doc, b.media_type())) {
      const std::string raw = raw_digest(*d);
      if (raw.empty()) {
        return make_error(Errc::signature, what + " names a descriptor without a sha256 digest");
      }
      if (find_image_blob(manifest_, raw) == nullptr) {
        return make_error(Errc::signature, what + " names blob " + short_hex(raw) +
                                               ", which the signed bundle "
                                               "manifest does not list");
      }
    }
  }
  return {};
}

void ImageSync::fill_status(pb::AgentStatus& status) const {
  status.set_image_blobs_needed(static_cast<uint32_t>(needed_.size()));
  status.set_image_blobs_held(blobs_held_);
  status.set_image_bytes_needed(bytes_needed_);
  status.set_image_bytes_held(bytes_held_);
}

}  // namespace sovdev::agent::images
