// What the oci tests share: an in-memory LayerStore that records what was begun, committed and
// discarded; an in-memory ImageSource a test can make lie; and a registry holding test images
// made with umoci (tests/support/registry.hpp).
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bundles/hash.hpp"
#include "platform/oci/convert.hpp"
#include "platform/oci/digest.hpp"
#include "platform/oci/source.hpp"
#include "tests/support/registry.hpp"

namespace sovdev::oci::test {

class MemoryLayers final : public LayerStore {
 public:
  std::map<std::string, std::string> layers;  // raw diff_id -> uncompressed bytes
  int begun = 0;
  int discarded = 0;

  Expected<std::optional<uint64_t>> held(std::string_view diff_id) override {
    const auto it = layers.find(std::string(diff_id));
    if (it == layers.end()) return std::optional<uint64_t>();
    return std::optional<uint64_t>(it->second.size());
  }
  Expected<std::unique_ptr<LayerWriter>> begin(std::string_view diff_id) override;
};

class MemoryLayerWriter final : public LayerWriter {
 public:
  MemoryLayerWriter(MemoryLayers& store, std::string diff_id)
      : store_(store), diff_id_(std::move(diff_id)) {}
  ~MemoryLayerWriter() override {
    if (!committed_) store_.discarded++;
  }
  Status write(std::string_view bytes) override {
    bytes_.append(bytes);
    return {};
  }
  Status commit(std::string_view diff_id, uint64_t size) override {
    if (diff_id != diff_id_ || size != bytes_.size() || sha256(bytes_) != diff_id_) {
      return make_error(Errc::internal, "commit of a layer that does not match");
    }
    store_.layers[diff_id_] = std::move(bytes_);
    committed_ = true;
    return {};
  }

 private:
  MemoryLayers& store_;
  std::string diff_id_;
  std::string bytes_;
  bool committed_ = false;
};

inline Expected<std::unique_ptr<LayerWriter>> MemoryLayers::begin(std::string_view diff_id) {
  begun++;
  return std::unique_ptr<LayerWriter>(
      std::make_unique<MemoryLayerWriter>(*this, std::string(diff_id)));
}

// Blobs by digest and manifests by tag, served as they are put: a test makes them lie.
class MemorySource final : public ImageSource {
 public:
  struct Entry {
    std::string media_type;
    std::string bytes;
  };
  std::map<std::string, Entry> blobs;       // by "sha256:<hex>" (what is served, whatever its hash)
  std::map<std::string, std::string> tags;  // tag -> "sha256:<hex>"

  // Stores `bytes` under their own digest; returns "sha256:<hex>".
  std::string put(const std::string& media_type, const std::string& bytes) {
    const std::string d = format_digest(sha256(bytes));
    blobs[d] = Entry{media_type, bytes};
    return d;
  }

  Expected<Fetched> manifest(const Reference&, std::string_view tag_or_digest) override {
    std::string key(tag_or_digest);
    if (const auto t = tags.find(key); t != tags.end()) key = t->second;
    const auto it = blobs.find(key);
    if (it == blobs.end()) return make_error(Errc::not_found, "no manifest " + key);
    const std::string got = sha256(it->second.bytes);
    if (tag_or_digest.rfind("sha256:", 0) == 0 && format_digest(got) != key) {
      return make_error(Errc::signature, "manifest " + key + ": digest mismatch");
    }
    return Fetched{it->second.media_type, it->second.bytes, got};
  }

  Status blob(const Reference&, std::string_view raw_digest, uint64_t size,
              const ByteSink& sink) override {
    const auto it = blobs.find(format_digest(raw_digest));
    if (it == blobs.end()) return make_error(Errc::not_found, "no blob");
    SOVDEV_TRY(sink(it->second.bytes));
    if (it->second.bytes.size() != size || sha256(it->second.bytes) != raw_digest) {
      return make_error(Errc::signature, "blob digest mismatch");
    }
    return {};
  }
};

// A registry holding test/app:v1, an index of linux/amd64 (base layer, app layer) and
// linux/arm64 (the same two, plus a layer of its own), and test/app:v2-amd64, a single
// manifest: v1's amd64 with one more layer. The layout holds the same images, by tag.
struct ImageWorld {
  static constexpr size_t kBaseSize = 512 * 1024;
  testing::TempDir dir;
  std::string layout = dir / "layout";
  std::unique_ptr<testing::Registry> registry;

  ImageWorld() {
    testing::make_layout(layout);
    testing::make_image(layout, "v1-amd64", "amd64",
                        {{{"usr/lib/base.bin", testing::noise_bytes(kBaseSize, 1)}},
                         {{"etc/app.conf", "version = 1\n"}}});
    testing::make_image(layout, "v1-arm64", "arm64",
                        {{{"usr/lib/arm.bin", testing::noise_bytes(4096, 2)}}}, "v1-amd64");
    testing::make_index(layout, "v1", {"v1-amd64", "v1-arm64"});
    testing::make_image(layout, "v2-amd64", "amd64", {{{"etc/app.conf", "version = 2\n"}}},
                        "v1-amd64");
    registry = testing::Registry::start();
    testing::push_image(layout, "v1", *registry, "test/app:v1");
    testing::push_image(layout, "v2-amd64", *registry, "test/app:v2-amd64");
  }

  Reference ref(const std::string& tag) const {
    return parse_reference(registry->host() + "/test/app:" + tag).value();
  }
  std::vector<SourceRule> rules() const { return {{registry->host() + "/", registry->url()}}; }

  // The manifest JSON of a tag in the layout (the same bytes the registry got).
  nlohmann::json layout_manifest(const std::string& tag) const {
    return nlohmann::json::parse(
        testing::read_text(testing::layout_blob(layout, testing::layout_digest(layout, tag))));
  }
};

}  // namespace sovdev::oci::test
