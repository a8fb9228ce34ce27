// Resolving images for `build --images` (docs/design-images.md): each reference from its source
// (platform/oci: a registry or an OCI layout, chosen by --image-source rules), converted to the
// served form with every blob stored in hub.db (store::HubImages, which is also the converter's
// LayerStore: a layer hub.db holds is never downloaded again). One reference is resolved once
// per build, however many objects name it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "hub/images/build_images.hpp"
#include "platform/oci/source.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::hub::images {

class OciResolver final : public ImageResolver {
 public:
  // `level`: zstd level of the blobs' wire form (--image-level).
  OciResolver(store::Database& db, std::vector<oci::SourceRule> rules, int level = 19)
      : db_(db), rules_(std::move(rules)), level_(level) {}

  [[nodiscard]] Expected<ResolvedImage> resolve(const std::string& reference,
                                                const std::vector<std::string>& arches) override;

 private:
  store::Database& db_;
  std::vector<oci::SourceRule> rules_;
  int level_;
  std::map<std::string, ResolvedImage> cache_;  // by the normalized reference
};

}  // namespace sovdev::hub::images
