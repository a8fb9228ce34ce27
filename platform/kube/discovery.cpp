#include "platform/kube/discovery.hpp"

#include <nlohmann/json.hpp>

namespace sovdev::kube {

std::string group_version_path(const std::string& api_version) {
  return api_version.find('/') == std::string::npos ? "/api/" + api_version
                                                    : "/apis/" + api_version;
}

std::string resource_path(const ResourceType& type, const std::string& ns,
                          const std::string& name) {
  std::string path = group_version_path(type.api_version);
  if (type.namespaced && !ns.empty()) path += "/namespaces/" + ns;
  path += "/" + type.plural;
  if (!name.empty()) path += "/" + name;
  return path;
}

Status Discovery::load(const std::string& api_version) {
  const std::string path = group_version_path(api_version);
  SOVDEV_ASSIGN(HttpResponse response, api_.get(path));
  auto& kinds = cache_[api_version];
  kinds.clear();
  // 404: the group version is not served (yet); an empty list says so.
  if (response.code == 404) return {};
  if (response.code != 200) return api_error("GET", path, response);
  auto list = nlohmann::json::parse(response.body, nullptr, false);
  if (!list.is_object() || !list.contains("resources") || !list["resources"].is_array()) {
    return make_error(Errc::invalid, "GET " + path + ": not an APIResourceList");
  }
  for (const auto& r : list["resources"]) {
    if (!r.is_object()) continue;
    const std::string name = r.value("name", "");
    // "deployments/status" and the like are subresources, not kinds.
    if (name.empty() || name.find('/') != std::string::npos) continue;
    ResourceType type{api_version, r.value("kind", ""), name, r.value("namespaced", false)};
    if (!type.kind.empty()) kinds.emplace(type.kind, std::move(type));
  }
  return {};
}

Expected<ResourceType> Discovery::find(const std::string& api_version, const std::string& kind) {
  auto lookup = [&]() -> const ResourceType* {
    auto gv = cache_.find(api_version);
    if (gv == cache_.end()) return nullptr;
    auto k = gv->second.find(kind);
    return k == gv->second.end() ? nullptr : &k->second;
  };
  if (const ResourceType* t = lookup()) return *t;
  SOVDEV_TRY(load(api_version));
  if (const ResourceType* t = lookup()) return *t;
  return make_error(Errc::not_found, "the API server (" + api_.server() + ") serves no kind " +
                                         kind + " in " + api_version +
                                         " (is its CustomResourceDefinition installed?)");
}

}  // namespace sovdev::kube
