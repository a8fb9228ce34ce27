#include "hub/images/oci_resolver.hpp"

#include "bundles/hash.hpp"
#include "bundles/image_rules.hpp"
#include "platform/oci/convert.hpp"
#include "platform/oci/digest.hpp"
#include "platform/store/hub_images.hpp"

namespace sovdev::hub::images {
namespace {

// The converter's layer, written into hub.db as it comes (its wire form, in one transaction).
class HubLayerWriter final : public oci::LayerWriter {
 public:
  explicit HubLayerWriter(std::unique_ptr<store::ImageBlobWriter> blob) : blob_(std::move(blob)) {}
  Status write(std::string_view bytes) override { return blob_->write(bytes); }
  Status commit(std::string_view raw_diff_id, uint64_t size) override {
    SOVDEV_ASSIGN(const store::ImageBlobRow row, blob_->commit(size));
    if (row.digest != raw_diff_id) {
      return make_error(Errc::internal, "layer stored as " + oci::format_digest(row.digest) +
                                            ", committed as " + oci::format_digest(raw_diff_id));
    }
    return {};
  }

 private:
  std::unique_ptr<store::ImageBlobWriter> blob_;
};

class HubLayerStore final : public oci::LayerStore {
 public:
  HubLayerStore(store::Database& db, int level) : images_(db), level_(level) {}
  Expected<std::optional<uint64_t>> held(std::string_view raw_diff_id) override {
    SOVDEV_ASSIGN(const auto row, images_.find(raw_diff_id));
    if (!row) return std::optional<uint64_t>();
    return std::optional<uint64_t>(row->size);
  }
  Expected<std::unique_ptr<oci::LayerWriter>> begin(std::string_view raw_diff_id) override {
    SOVDEV_ASSIGN(auto blob, images_.begin(raw_diff_id, kMediaLayer, level_));
    return std::unique_ptr<oci::LayerWriter>(std::make_unique<HubLayerWriter>(std::move(blob)));
  }

 private:
  store::HubImages images_;
  int level_;
};

}  // namespace

Expected<ResolvedImage> OciResolver::resolve(const std::string& reference,
                                             const std::vector<std::string>& arches) {
  SOVDEV_ASSIGN(const oci::Reference ref, oci::parse_reference(reference));
  const std::string key = ref.to_string();
  if (auto cached = cache_.find(key); cached != cache_.end()) {
    ResolvedImage again = cached->second;
    again.bytes_downloaded = 0;
    again.layers_reused += again.layers_downloaded;
    again.layers_downloaded = 0;
    return again;
  }
  SOVDEV_ASSIGN(auto source, oci::open_source(rules_, ref));
  HubLayerStore layers(db_, level_);
  SOVDEV_ASSIGN(oci::ConvertedImage converted, oci::convert_image(*source, ref, arches, layers));

  ResolvedImage out;
  out.index_digest = converted.index_digest;
  out.pinned = converted.reference.pinned(converted.index_digest);
  out.bytes_downloaded = converted.bytes_downloaded;
  out.layers_downloaded = converted.layers_downloaded;
  out.layers_reused = converted.layers_reused;
  store::HubImages images(db_);
  for (const auto& served : converted.blobs) {
    std::optional<store::ImageBlobRow> row;
    if (served.layer == 0) {
      // An index, manifest or config: held whole by the converter, stored here (once).
      SOVDEV_ASSIGN(row, images.put(served.media_type, served.bytes, level_));
    } else {
      SOVDEV_ASSIGN(row, images.find(served.digest));
    }
    if (!row || row->digest != served.digest || row->size != served.size) {
      return make_error(Errc::internal, "blob " + oci::format_digest(served.digest) +
                                            " of the served form is not what hub.db holds");
    }
    pb::ImageBlob blob;
    blob.set_digest(served.digest);
    blob.set_size(served.size);
    blob.set_media_type(served.media_type);
    blob.set_arch(served.arch);
    blob.set_wire_digest(row->wire_digest);
    blob.set_wire_size(row->wire_size);
    if (served.layer != 0) {
      blob.set_repository(converted.reference.name());
      blob.set_layer(served.layer);
    }
    out.blobs.push_back(std::move(blob));
  }
  cache_[key] = out;
  return out;
}

}  // namespace sovdev::hub::images
