#include "hub/images/build_images.hpp"

#include <set>
#include <utility>

#include "hub/images/discover.hpp"

namespace sovdev::hub::images {

namespace {

// Most objects (ConfigMaps, Services, RBAC ...) name no image: not parsed again for nothing.
bool may_name_an_image(std::string_view json) {
  return json.find("\"image\"") != std::string_view::npos;
}

}  // namespace

Status BuildImages::add_object(std::string_view kind, std::string_view json,
                               std::string_view source) {
  if (!may_name_an_image(json)) return {};
  auto found = find_images(kind, json);
  if (!found) return std::move(found).error().context(source);
  for (auto& use : *found) {
    if (use.reference.empty()) {
      return make_error(Errc::invalid, std::string(source) + ": " + use.path + " is empty");
    }
    if (first_use_.emplace(use.reference, std::string(source) + ": " + use.path).second) {
      order_.push_back(use.reference);
    }
  }
  return {};
}

Status BuildImages::resolve(const std::vector<std::string>& arches) {
  for (const auto& reference : order_) {
    if (pinned_.count(reference) != 0) continue;
    auto resolved = resolver_.resolve(reference, arches);
    if (!resolved) {
      // The sources' errors name the image already (normalized); the rest get it here.
      Error error = std::move(resolved).error();
      if (error.message.find(reference) == std::string::npos) {
        error = std::move(error).context("image " + reference);
      }
      return std::move(error).context(first_use_.at(reference));
    }
    pinned_[reference] = resolved->pinned;
    reports_.push_back({reference, std::move(*resolved)});
  }
  return {};
}

Expected<std::optional<std::string>> BuildImages::pin(std::string_view kind,
                                                      std::string_view json) const {
  if (!may_name_an_image(json)) return std::optional<std::string>();
  return pin_images(kind, json, [this](const std::string& reference) -> const std::string* {
    auto found = pinned_.find(reference);
    return found == pinned_.end() ? nullptr : &found->second;
  });
}

void BuildImages::fill(pb::BundleManifest& manifest) const {
  std::set<std::pair<std::string, std::string>> listed;  // (digest, arch)
  for (const auto& report : reports_) {
    pb::ImageRef* ref = manifest.add_images();
    ref->set_reference(report.reference);
    ref->set_pinned(report.resolved.pinned);
    ref->set_index_digest(report.resolved.index_digest);
    for (const auto& blob : report.resolved.blobs) {
      if (listed.emplace(blob.digest(), blob.arch()).second) *manifest.add_image_blobs() = blob;
    }
  }
}

}  // namespace sovdev::hub::images
