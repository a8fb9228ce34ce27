#include "hub/images/discover.hpp"

#include <nlohmann/json.hpp>

namespace sovdev::hub::images {
namespace {

using Json = nlohmann::json;

constexpr const char* kContainerLists[] = {"containers", "initContainers", "ephemeralContainers"};

// Calls `each` with every container's `image` value (a string) of the pod spec at `spec`.
template <class J, class F>
void each_pod_image(J& spec, const std::string& path, F&& each) {
  if (!spec.is_object()) return;
  for (const char* list : kContainerLists) {
    auto found = spec.find(list);
    if (found == spec.end() || !found->is_array()) continue;
    size_t index = 0;
    for (auto& container : *found) {
      if (container.is_object()) {
        auto image = container.find("image");
        if (image != container.end() && image->is_string()) {
          each(*image, path + "." + list + "[" + std::to_string(index) + "].image");
        }
      }
      index++;
    }
  }
}

// The node at `keys` below `root`, or null when a step is missing or not an object.
template <class J>
J* descend(J& root, std::initializer_list<const char*> keys) {
  J* at = &root;
  for (const char* key : keys) {
    if (!at->is_object()) return nullptr;
    auto found = at->find(key);
    if (found == at->end()) return nullptr;
    at = &*found;
  }
  return at;
}

// Every pod spec of an object of `kind`, with its path.
template <class J, class F>
void each_image(std::string_view kind, J& object, F&& each) {
  if (kind == "Pod") {
    if (J* spec = descend(object, {"spec"})) each_pod_image(*spec, "spec", each);
  } else if (kind == "PodTemplate") {
    if (J* spec = descend(object, {"template", "spec"})) {
      each_pod_image(*spec, "template.spec", each);
    }
  } else if (kind == "CronJob") {
    if (J* spec = descend(object, {"spec", "jobTemplate", "spec", "template", "spec"})) {
      each_pod_image(*spec, "spec.jobTemplate.spec.template.spec", each);
    }
  } else if (J* spec = descend(object, {"spec", "template", "spec"})) {
    each_pod_image(*spec, "spec.template.spec", each);
  }
}

Expected<Json> parse_object(std::string_view json) {
  Json object = Json::parse(json, nullptr, false);
  if (object.is_discarded() || !object.is_object()) {
    return make_error(Errc::invalid, "the object is not a JSON object");
  }
  return object;
}

}  // namespace

Expected<std::vector<ImageUse>> find_images(std::string_view kind, std::string_view json) {
  SOVDEV_ASSIGN(const Json object, parse_object(json));
  std::vector<ImageUse> out;
  each_image(kind, object, [&](const Json& image, std::string path) {
    out.push_back({image.get<std::string>(), std::move(path)});
  });
  return out;
}

Expected<std::optional<std::string>> pin_images(std::string_view kind, std::string_view json,
                                                const PinLookup& pinned) {
  SOVDEV_ASSIGN(Json object, parse_object(json));
  bool changed = false;
  each_image(kind, object, [&](Json& image, const std::string&) {
    const std::string* to = pinned(image.get<std::string>());
    if (to == nullptr || *to == image.get<std::string>()) return;
    image = *to;
    changed = true;
  });
  if (!changed) return std::optional<std::string>();
  // The form bundles/yaml gives every record: compact, keys sorted (nlohmann's std::map).
  return std::optional<std::string>(object.dump(-1, ' ', false, Json::error_handler_t::replace));
}

}  // namespace sovdev::hub::images
