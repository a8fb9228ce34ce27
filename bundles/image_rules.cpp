#include "bundles/image_rules.hpp"

#include <set>
#include <string>

#include "bundles/hash.hpp"

namespace sovdev {
namespace {

bool is_json_type(std::string_view media_type) {
  return media_type == kMediaIndex || media_type == kMediaManifest || media_type == kMediaConfig;
}

Error image_error(std::string what) {
  return Error{Errc::invalid, "image blobs: " + std::move(what)};
}

Status check_blob(const pb::ImageBlob& b) {
  const std::string name = b.digest().size() == kDigestSize ? short_hex(b.digest()) : "?";
  if (b.digest().size() != kDigestSize) return image_error("a digest is not 32 bytes");
  if (b.wire_digest().size() != kDigestSize) {
    return image_error("blob " + name + ": wire digest is not 32 bytes");
  }
  const std::string_view type = b.media_type();
  if (!is_json_type(type) && type != kMediaLayer) {
    return image_error("blob " + name + ": media type '" + std::string(type) + "' is not served");
  }
  if (is_json_type(type) && b.size() > kMaxImageJsonBytes) {
    return image_error("blob " + name + ": " + std::string(type) + " over 4 MiB");
  }
  if (type == kMediaLayer && b.size() > kMaxLayerBytes) {
    return image_error("blob " + name + ": layer over 64 GiB");
  }
  if ((type == kMediaIndex) != b.arch().empty()) {
    return image_error("blob " + name + ": an index serves every arch, anything else one");
  }
  if (type == kMediaLayer) {
    if (b.layer() == 0 || b.layer() > kMaxImageLayers || b.repository().empty()) {
      return image_error("blob " + name + ": a layer needs its repository and place (1.." +
                         std::to_string(kMaxImageLayers) + ")");
    }
  } else if (b.layer() != 0) {
    return image_error("blob " + name + ": only a layer has a place");
  }
  if (b.wire_size() == 0) return image_error("blob " + name + ": wire size 0");
  return {};
}

}  // namespace

Status check_image_fields(const pb::BundleManifest& m) {
  if (m.images_size() == 0 && m.image_blobs_size() == 0) return {};
  if (static_cast<size_t>(m.image_blobs_size()) > kMaxImageBlobs) {
    return image_error(std::to_string(m.image_blobs_size()) + " blobs, at most " +
                       std::to_string(kMaxImageBlobs));
  }
  if (static_cast<size_t>(m.images_size()) > kMaxImageRefs) {
    return image_error(std::to_string(m.images_size()) + " images, at most " +
                       std::to_string(kMaxImageRefs));
  }
  // A layer two arches share is listed once for each (its place may differ).
  std::set<std::pair<std::string, std::string>> listed;
  std::set<std::string> indexes;
  const std::set<std::string> arches(m.arch().begin(), m.arch().end());
  for (const auto& b : m.image_blobs()) {
    SOVDEV_TRY(check_blob(b));
    if (!b.arch().empty() && !arches.count(b.arch())) {
      return image_error("blob " + short_hex(b.digest()) + " serves " + b.arch() +
                         ", not an arch of the bundle");
    }
    if (!listed.emplace(b.digest(), b.arch()).second) {
      return image_error("blob " + short_hex(b.digest()) + " listed twice for one arch");
    }
    if (b.media_type() == kMediaIndex) indexes.insert(b.digest());
  }
  for (const auto& image : m.images()) {
    if (image.reference().empty() || image.pinned().empty()) {
      return image_error("an image without its reference");
    }
    if (!indexes.count(image.index_digest())) {
      return image_error("image '" + image.reference() + "': its index is not listed");
    }
  }
  return {};
}

std::vector<const pb::ImageBlob*> blobs_for_arch(const pb::BundleManifest& m,
                                                 std::string_view arch) {
  std::vector<const pb::ImageBlob*> out;
  for (const auto& b : m.image_blobs()) {
    if (b.arch().empty() || b.arch() == arch) out.push_back(&b);
  }
  return out;
}

const pb::ImageBlob* find_image_blob(const pb::BundleManifest& m, std::string_view digest) {
  for (const auto& b : m.image_blobs()) {
    if (b.digest() == digest) return &b;
  }
  return nullptr;
}

}  // namespace sovdev
