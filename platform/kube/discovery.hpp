// Which URL serves a kind: the API server's discovery documents, cached per group version and
// fetched again when a kind is missing (a CRD applied since the last look).
#pragma once

#include <map>
#include <string>

#include "platform/kube/api_client.hpp"

namespace sovdev::kube {

struct ResourceType {
  std::string api_version;  // "v1", "apps/v1"
  std::string kind;
  std::string plural;  // the URL segment
  bool namespaced = false;
};

class Discovery {
 public:
  explicit Discovery(ApiClient& api) : api_(api) {}

  // Errc::not_found when the API server does not serve the kind, after a fresh look.
  Expected<ResourceType> find(const std::string& api_version, const std::string& kind);
  // Forgets a group version, so the next find() asks again.
  void forget(const std::string& api_version) { cache_.erase(api_version); }

 private:
  Status load(const std::string& api_version);

  ApiClient& api_;
  std::map<std::string, std::map<std::string, ResourceType>> cache_;  // gv → kind → type
};

// "/api/v1/namespaces/ns/configmaps/name", "/apis/apps/v1/deployments" (name "" = collection;
// namespace "" for a namespaced type = every namespace).
std::string resource_path(const ResourceType& type, const std::string& ns, const std::string& name);
// "/api/v1" or "/apis/<group>/<version>".
std::string group_version_path(const std::string& api_version);

}  // namespace sovdev::kube
