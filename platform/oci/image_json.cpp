#include "platform/oci/image_json.hpp"

#include <nlohmann/json.hpp>

#include "platform/oci/convert.hpp"
#include "platform/oci/digest.hpp"
#include "platform/oci/media.hpp"

namespace sovdev::oci::detail {
namespace {

using nlohmann::json;

constexpr size_t kMaxIndexEntries = 1024;

Expected<json> parse_object(std::string_view bytes, const char* what) {
  json j = json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return make_error(Errc::invalid, std::string(what) + ": not a JSON object");
  }
  return j;
}

std::string string_field(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// schemaVersion 2, and the JSON's own mediaType (optional) agreeing with the source's.
Status check_header(const json& j, std::string_view media_type, const char* what) {
  const auto v = j.find("schemaVersion");
  if (v != j.end() && v->is_number_integer() && v->get<int64_t>() == 1) {
    return make_error(Errc::invalid, std::string(what) +
                                         ": a Docker schema 1 manifest, which is not supported; "
                                         "push the image again with a current client");
  }
  if (v == j.end() || !v->is_number_integer() || v->get<int64_t>() != 2) {
    return make_error(Errc::invalid, std::string(what) + ": schemaVersion is not 2");
  }
  const auto m = j.find("mediaType");
  if (m != j.end() && (!m->is_string() || m->get<std::string>() != media_type)) {
    return make_error(Errc::invalid, std::string(what) + ": its mediaType is not the " +
                                         std::string(media_type) + " the source served it as");
  }
  return {};
}

Expected<Descriptor> parse_descriptor(const json& j, uint64_t max_size, const std::string& what) {
  if (!j.is_object()) return make_error(Errc::invalid, what + ": not an object");
  Descriptor d;
  d.media_type = string_field(j, "mediaType");
  if (d.media_type.empty()) return make_error(Errc::invalid, what + ": no mediaType");
  if (j.contains("urls")) {
    return make_error(Errc::invalid, what + " (" + d.media_type +
                                         ") is to be fetched from other URLs (a foreign or "
                                         "non-distributable layer): not supported");
  }
  const std::string digest = string_field(j, "digest");
  auto raw = parse_digest(digest);
  if (!raw) return std::move(raw).error().context(what);
  d.digest = std::move(*raw);
  const auto size = j.find("size");
  if (size == j.end() || !size->is_number_unsigned()) {
    return make_error(Errc::invalid, what + ": no size");
  }
  d.size = size->get<uint64_t>();
  if (d.size > max_size) {
    return make_error(Errc::too_large, what + ": " + std::to_string(d.size) +
                                           " bytes, more than the " + std::to_string(max_size) +
                                           " allowed");
  }
  return d;
}

}  // namespace

Expected<SourceIndex> parse_index(std::string_view bytes, std::string_view media_type) {
  SOVDEV_ASSIGN(const json j, parse_object(bytes, "index"));
  SOVDEV_TRY(check_header(j, media_type, "index"));
  const auto m = j.find("manifests");
  if (m == j.end() || !m->is_array()) return make_error(Errc::invalid, "index: no manifests");
  if (m->size() > kMaxIndexEntries) {
    return make_error(Errc::too_large, "index: more than 1024 manifests");
  }
  SourceIndex index;
  size_t i = 0;
  for (const auto& entry : *m) {
    const std::string what = "index: manifest " + std::to_string(++i);
    SOVDEV_ASSIGN(Descriptor d, parse_descriptor(entry, kMaxJsonBytes, what));
    const auto p = entry.find("platform");
    if (p != entry.end() && p->is_object()) {
      d.architecture = string_field(*p, "architecture");
      d.os = string_field(*p, "os");
      d.variant = string_field(*p, "variant");
    }
    index.manifests.push_back(std::move(d));
  }
  return index;
}

Expected<SourceManifest> parse_manifest(std::string_view bytes, std::string_view media_type) {
  SOVDEV_ASSIGN(const json j, parse_object(bytes, "manifest"));
  SOVDEV_TRY(check_header(j, media_type, "manifest"));
  SourceManifest out;
  const auto c = j.find("config");
  if (c == j.end()) return make_error(Errc::invalid, "manifest: no config");
  SOVDEV_ASSIGN(out.config, parse_descriptor(*c, kMaxJsonBytes, "manifest: config"));
  if (!media::is_config(out.config.media_type)) {
    return make_error(Errc::invalid, "manifest: the config's media type " +
                                         out.config.media_type.substr(0, 100) +
                                         " is not an image config (an artifact, not an image?)");
  }
  const auto l = j.find("layers");
  if (l == j.end() || !l->is_array()) return make_error(Errc::invalid, "manifest: no layers");
  if (l->size() > kMaxLayers) {
    return make_error(Errc::too_large, "manifest: " + std::to_string(l->size()) +
                                           " layers, more than the 256 allowed");
  }
  for (const auto& entry : *l) {
    const std::string what = "manifest: layer " + std::to_string(out.layers.size() + 1);
    SOVDEV_ASSIGN(Descriptor d, parse_descriptor(entry, kMaxLayerBytes, what));
    const auto kind = media::layer_compression(d.media_type);
    if (kind == media::Compression::foreign) {
      return make_error(Errc::invalid, what + " is foreign / non-distributable (" + d.media_type +
                                           "): it may not be carried");
    }
    if (kind == media::Compression::unknown) {
      return make_error(Errc::invalid,
                        what + ": unknown layer media type '" + d.media_type.substr(0, 100) + "'");
    }
    out.layers.push_back(std::move(d));
  }
  return out;
}

Expected<SourceConfig> parse_config(std::string_view bytes) {
  SOVDEV_ASSIGN(const json j, parse_object(bytes, "config"));
  SourceConfig out;
  out.architecture = string_field(j, "architecture");
  out.os = string_field(j, "os");
  out.variant = string_field(j, "variant");
  const auto r = j.find("rootfs");
  if (r == j.end() || !r->is_object() || string_field(*r, "type") != "layers") {
    return make_error(Errc::invalid, "config: no rootfs of type layers");
  }
  const auto ids = r->find("diff_ids");
  if (ids == r->end() || !ids->is_array()) {
    return make_error(Errc::invalid, "config: no rootfs.diff_ids");
  }
  if (ids->size() > kMaxLayers) {
    return make_error(Errc::too_large, "config: more than 256 diff_ids");
  }
  for (const auto& id : *ids) {
    auto raw = parse_digest(id.is_string() ? id.get<std::string>() : std::string());
    if (!raw) return std::move(raw).error().context("config: rootfs.diff_ids");
    out.diff_ids.push_back(std::move(*raw));
  }
  return out;
}

}  // namespace sovdev::oci::detail
