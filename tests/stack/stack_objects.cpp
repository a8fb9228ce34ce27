#include "tests/stack/stack_objects.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

#include "bundles/yaml/objects.hpp"
#include "hub/build.hpp"
#include "tests/support/process.hpp"

namespace sovdev::testing {

using nlohmann::json;

hub::StackEnv sovdev_env(const std::string& env_name) {
  auto env = hub::load_stack_env(source_dir() + "/stacks/sovdev", env_name);
  INFO((env ? "" : env.error().message));
  REQUIRE(env);
  return *env;
}

std::vector<json> render_sovdev(const std::string& env_name) {
  const hub::StackEnv env = sovdev_env(env_name);
  hub::BuildRequest req;
  req.source_dir = source_dir() + "/stacks/sovdev";
  req.env = &env;
  std::vector<std::string> used;
  std::vector<json> objects;
  auto each = [&](hub::SourceFile&& file, uint64_t) -> Status {
    SOVDEV_ASSIGN(auto parsed, yaml::parse_manifests(file.shown, file.text));
    for (const auto& o : parsed) objects.push_back(json::parse(o.json));
    return {};
  };
  auto rendered = hub::for_each_source(req, used, each);
  INFO((rendered ? "" : rendered.error().message));
  REQUIRE(rendered);
  // Every value the environment states is used somewhere: a typo would be silently ignored.
  for (const auto& [name, value] : env.values) {
    INFO(env_name << ": " << name);
    CHECK(std::find(used.begin(), used.end(), name) != used.end());
  }
  return objects;
}

std::string service_of(const json& o) {
  return o["metadata"].value("labels", json::object()).value("sovdev.io/service", "");
}

std::vector<json> of_kind(const std::vector<json>& objects, const std::string& kind,
                          const std::string& svc) {
  std::vector<json> out;
  for (const auto& o : objects) {
    if (o["kind"] == kind && (svc.empty() || service_of(o) == svc)) out.push_back(o);
  }
  return out;
}

json the(const std::vector<json>& objects, const std::string& kind, const std::string& name) {
  std::vector<json> found;
  for (const auto& o : of_kind(objects, kind)) {
    if (o["metadata"]["name"] == name) found.push_back(o);
  }
  INFO(kind << " " << name);
  REQUIRE(found.size() == 1);
  return found.front();
}

std::string env_value(const json& container, const std::string& name) {
  for (const auto& e : container.value("env", json::array())) {
    if (e.value("name", "") == name) return e.value("value", "");
  }
  return "";
}

}  // namespace sovdev::testing
