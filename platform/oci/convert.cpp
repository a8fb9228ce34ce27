#include "platform/oci/convert.hpp"

#include <map>
#include <nlohmann/json.hpp>

#include "bundles/hash.hpp"
#include "platform/oci/decompress.hpp"
#include "platform/oci/digest.hpp"
#include "platform/oci/image_json.hpp"
#include "platform/oci/media.hpp"

namespace sovdev::oci {
namespace {

using nlohmann::json;

struct Platform {
  std::string architecture, os, variant;
  std::string text() const {
    return os + "/" + architecture + (variant.empty() ? "" : "/" + variant);
  }
};

// "amd64", "arm64" (variant v8 or none), or "arch/variant" for an exact variant.
bool platform_matches(const std::string& asked, const Platform& p) {
  if (p.os != "linux") return false;
  const size_t slash = asked.find('/');
  if (slash != std::string::npos) {
    return p.architecture == asked.substr(0, slash) && p.variant == asked.substr(slash + 1);
  }
  if (p.architecture != asked) return false;
  return p.variant.empty() || (asked == "arm64" && p.variant == "v8");
}

std::string asked_text(const std::string& asked) {
  return "linux/" + asked;
}

json descriptor_json(std::string_view media_type, std::string_view raw_digest, uint64_t size) {
  return json{{"mediaType", media_type}, {"digest", format_digest(raw_digest)}, {"size", size}};
}

// One architecture of the image: its served manifest, config and layers.
struct ArchResult {
  std::vector<ServedBlob> blobs;  // manifest, config, layers
  Platform platform;
};

class Converter {
 public:
  Converter(ImageSource& source, const Reference& ref, LayerStore& layers, ConvertedImage& out)
      : source_(source), ref_(ref), layers_(layers), out_(out) {}

  // The source manifest with its config, read before any layer so a wrong platform costs none.
  struct Prepared {
    detail::SourceManifest manifest;
    std::string config_bytes;
    detail::SourceConfig config;
    Platform platform() const { return {config.architecture, config.os, config.variant}; }
  };
  Expected<Prepared> prepare(const Fetched& manifest);
  Expected<ArchResult> convert_arch(const std::string& arch, Prepared prepared,
                                    const Platform* claimed);
  Expected<std::string> fetch_json_blob(const detail::Descriptor& d);

 private:
  Expected<uint64_t> layer(const detail::Descriptor& d, const std::string& diff_id,
                           const std::string& what);

  ImageSource& source_;
  const Reference& ref_;
  LayerStore& layers_;
  ConvertedImage& out_;
  std::map<std::string, uint64_t> done_;  // diff_id -> size, the layers this conversion held
};

Expected<std::string> Converter::fetch_json_blob(const detail::Descriptor& d) {
  std::string bytes;
  SOVDEV_TRY(source_.blob(ref_, d.digest, d.size, [&](std::string_view b) -> Status {
    bytes.append(b);
    return {};
  }));
  out_.bytes_downloaded += d.size;
  return bytes;
}

Expected<uint64_t> Converter::layer(const detail::Descriptor& d, const std::string& diff_id,
                                    const std::string& what) {
  if (const auto it = done_.find(diff_id); it != done_.end()) {
    out_.layers_reused++;
    return it->second;
  }
  SOVDEV_ASSIGN(const std::optional<uint64_t> held, layers_.held(diff_id));
  if (held) {
    out_.layers_reused++;
    done_[diff_id] = *held;
    return *held;
  }
  SOVDEV_ASSIGN(std::unique_ptr<LayerWriter> writer, layers_.begin(diff_id));
  Sha256 hash;
  uint64_t size = 0;
  const ByteSink to_store = [&](std::string_view b) -> Status {
    if (b.size() > kMaxLayerBytes - size) {
      return make_error(Errc::too_large, what + ": more than 64 GiB uncompressed; refused");
    }
    size += b.size();
    hash.update(b);
    return writer->write(b);
  };
  SOVDEV_ASSIGN(auto decoder,
                detail::make_decoder(media::layer_compression(d.media_type), to_store));
  // Bytes that do not decompress are most often bytes that are not the blob: the rest is still
  // read, so the source's digest check, not the decoder, says what went wrong.
  Status undecodable;
  const ByteSink to_decoder = [&](std::string_view b) -> Status {
    if (!undecodable) return {};
    auto fed = decoder->feed(b);
    if (!fed && fed.error().code == Errc::invalid) {
      undecodable = std::move(fed);
      return {};
    }
    return fed;
  };
  if (auto read = source_.blob(ref_, d.digest, d.size, to_decoder); !read) {
    return std::move(read).error().context(what);
  }
  out_.bytes_downloaded += d.size;
  if (!undecodable) return std::move(undecodable).error().context(what);
  if (auto ended = decoder->finish(); !ended) return std::move(ended).error().context(what);
  const std::string got = hash.finish();
  if (got != diff_id) {
    return make_error(Errc::signature, what + ": uncompressed it hashes to " + format_digest(got) +
                                           ", but the config's diff_id is " +
                                           format_digest(diff_id) + "; refused");
  }
  SOVDEV_TRY(writer->commit(diff_id, size));
  out_.layers_downloaded++;
  done_[diff_id] = size;
  return size;
}

Expected<Converter::Prepared> Converter::prepare(const Fetched& manifest) {
  Prepared p;
  SOVDEV_ASSIGN(p.manifest, detail::parse_manifest(manifest.bytes, manifest.media_type));
  SOVDEV_ASSIGN(p.config_bytes, fetch_json_blob(p.manifest.config));
  SOVDEV_ASSIGN(p.config, detail::parse_config(p.config_bytes));
  return p;
}

Expected<ArchResult> Converter::convert_arch(const std::string& arch, Prepared prepared,
                                             const Platform* claimed) {
  const detail::SourceManifest& m = prepared.manifest;
  const detail::SourceConfig& config = prepared.config;
  std::string& config_bytes = prepared.config_bytes;
  ArchResult result;
  result.platform = prepared.platform();
  if (claimed != nullptr) {
    if (claimed->architecture != config.architecture || claimed->os != config.os) {
      return make_error(Errc::invalid, "the index says " + claimed->text() +
                                           " but the manifest's config says " +
                                           result.platform.text());
    }
    result.platform.variant = claimed->variant;
  }
  if (config.diff_ids.size() != m.layers.size()) {
    return make_error(Errc::invalid, "the manifest has " + std::to_string(m.layers.size()) +
                                         " layers but its config lists " +
                                         std::to_string(config.diff_ids.size()) + " diff_ids");
  }
  json layers = json::array();
  std::vector<ServedBlob> layer_blobs;
  for (size_t i = 0; i < m.layers.size(); i++) {
    const std::string what = "layer " + std::to_string(i + 1) + " of " + asked_text(arch) + " (" +
                             format_digest(m.layers[i].digest) + ")";
    SOVDEV_ASSIGN(const uint64_t size, layer(m.layers[i], config.diff_ids[i], what));
    layers.push_back(descriptor_json(media::kOciLayerTar, config.diff_ids[i], size));
    layer_blobs.push_back(ServedBlob{config.diff_ids[i], std::string(media::kOciLayerTar), size, "",
                                     arch, static_cast<uint32_t>(i + 1)});
  }
  // Compact, keys sorted (nlohmann's default object): the same input, the same digest.
  const json served = {
      {"schemaVersion", 2},
      {"mediaType", media::kOciManifest},
      {"config", descriptor_json(media::kOciConfig, m.config.digest, config_bytes.size())},
      {"layers", std::move(layers)}};
  std::string bytes = served.dump();
  result.blobs.push_back(
      ServedBlob{sha256(bytes), std::string(media::kOciManifest), bytes.size(), bytes, arch, 0});
  result.blobs.push_back(ServedBlob{m.config.digest, std::string(media::kOciConfig),
                                    config_bytes.size(), std::move(config_bytes), arch, 0});
  for (auto& b : layer_blobs) result.blobs.push_back(std::move(b));
  return result;
}

Status check_arches(const std::vector<std::string>& arches) {
  if (arches.empty()) return make_error(Errc::usage, "no architecture asked for");
  for (size_t i = 0; i < arches.size(); i++) {
    if (arches[i].empty()) return make_error(Errc::usage, "an empty architecture name");
    for (size_t j = 0; j < i; j++) {
      if (arches[i] == arches[j]) {
        return make_error(Errc::usage, "architecture " + arches[i] + " asked for twice");
      }
    }
  }
  return {};
}

}  // namespace

Expected<ConvertedImage> convert_image(ImageSource& source, const Reference& ref,
                                       const std::vector<std::string>& arches, LayerStore& layers) {
  SOVDEV_TRY(check_arches(arches));
  const std::string name = "image " + ref.to_string();
  ConvertedImage out;
  out.reference = ref;
  Converter converter(source, ref, layers, out);
  auto top = source.manifest(ref, ref.tag_or_digest());
  if (!top) return std::move(top).error().context(name);
  out.bytes_downloaded += top->bytes.size();
  if (!ref.digest.empty() && top->digest != ref.digest) {
    return make_error(Errc::signature, name + ": the source answered another digest; refused");
  }
  if (media::is_schema1(top->media_type)) {
    return make_error(Errc::invalid, name +
                                         ": a Docker schema 1 manifest, which is not "
                                         "supported; push the image again with a current "
                                         "client");
  }
  std::vector<ArchResult> results;
  if (media::is_index(top->media_type)) {
    auto index = detail::parse_index(top->bytes, top->media_type);
    if (!index) return std::move(index).error().context(name);
    // Every architecture is found before anything is downloaded.
    std::vector<const detail::Descriptor*> picks;
    for (const auto& arch : arches) {
      const detail::Descriptor* pick = nullptr;
      std::string has;
      for (const auto& d : index->manifests) {
        const Platform p{d.architecture, d.os, d.variant};
        if (!media::is_manifest(d.media_type) || d.architecture.empty()) continue;
        if (pick == nullptr && platform_matches(arch, p)) pick = &d;
        has += (has.empty() ? "" : ", ") + p.text();
      }
      if (pick == nullptr) {
        return make_error(Errc::not_found, name + " has no " + asked_text(arch) + " (it has " +
                                               (has.empty() ? "no image manifest" : has) + ")");
      }
      picks.push_back(pick);
    }
    std::vector<Converter::Prepared> prepared;
    for (size_t i = 0; i < arches.size(); i++) {
      const std::string where = name + " " + asked_text(arches[i]);
      auto manifest = source.manifest(ref, format_digest(picks[i]->digest));
      if (!manifest) return std::move(manifest).error().context(name);
      out.bytes_downloaded += manifest->bytes.size();
      if (manifest->digest != picks[i]->digest || manifest->bytes.size() != picks[i]->size) {
        return make_error(Errc::signature,
                          where + ": the manifest is not what the index names; refused");
      }
      if (!media::is_manifest(manifest->media_type)) {
        return make_error(Errc::invalid, where + ": the index entry is a " +
                                             manifest->media_type.substr(0, 100) +
                                             ", not an image manifest");
      }
      auto p = converter.prepare(*manifest);
      if (!p) return std::move(p).error().context(where);
      prepared.push_back(std::move(*p));
    }
    for (size_t i = 0; i < arches.size(); i++) {
      const Platform claimed{picks[i]->architecture, picks[i]->os, picks[i]->variant};
      auto result = converter.convert_arch(arches[i], std::move(prepared[i]), &claimed);
      if (!result) return std::move(result).error().context(name + " " + asked_text(arches[i]));
      results.push_back(std::move(*result));
    }
  } else if (media::is_manifest(top->media_type)) {
    auto p = converter.prepare(*top);
    if (!p) return std::move(p).error().context(name);
    for (const auto& arch : arches) {
      if (!platform_matches(arch, p->platform())) {
        return make_error(Errc::not_found, name + " has no " + asked_text(arch) + " (it has " +
                                               p->platform().text() + ")");
      }
    }
    for (const auto& arch : arches) {
      auto result = converter.convert_arch(arch, *p, nullptr);
      if (!result) return std::move(result).error().context(name + " " + asked_text(arch));
      results.push_back(std::move(*result));
    }
  } else {
    return make_error(Errc::invalid, name + ": the source answered a " +
                                         top->media_type.substr(0, 100) +
                                         ", neither an image index nor a manifest");
  }
  json manifests = json::array();
  for (size_t i = 0; i < results.size(); i++) {
    const ServedBlob& m = results[i].blobs.front();
    json entry = descriptor_json(m.media_type, m.digest, m.size);
    const Platform& p = results[i].platform;
    json platform = {{"architecture", p.architecture}, {"os", p.os}};
    if (!p.variant.empty()) platform["variant"] = p.variant;
    entry["platform"] = std::move(platform);
    manifests.push_back(std::move(entry));
  }
  const json index = {
      {"schemaVersion", 2}, {"mediaType", media::kOciIndex}, {"manifests", std::move(manifests)}};
  std::string bytes = index.dump();
  out.index_digest = sha256(bytes);
  out.blobs.push_back(
      ServedBlob{out.index_digest, std::string(media::kOciIndex), bytes.size(), bytes, "", 0});
  for (auto& r : results) {
    for (auto& b : r.blobs) out.blobs.push_back(std::move(b));
  }
  return out;
}

}  // namespace sovdev::oci
