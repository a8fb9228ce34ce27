// stacks/sovdev rendered for one environment as the hub would pack it, and small lookups over
// the objects, shared by the stack tests.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hub/render.hpp"

namespace sovdev::testing {

// Renders stacks/sovdev for `env_name` and parses every object; fails the test when the stack
// does not render or a value of the environment is never used.
std::vector<nlohmann::json> render_sovdev(const std::string& env_name);
hub::StackEnv sovdev_env(const std::string& env_name);

// The object's sovdev.io/service label, or "".
std::string service_of(const nlohmann::json& o);
std::vector<nlohmann::json> of_kind(const std::vector<nlohmann::json>& objects,
                                    const std::string& kind, const std::string& svc = "");
// The single object of that kind and name; fails the test when there is not exactly one.
nlohmann::json the(const std::vector<nlohmann::json>& objects, const std::string& kind,
                   const std::string& name);
// The value of a container's plain env var, or "" when it has none or takes it from elsewhere.
std::string env_value(const nlohmann::json& container, const std::string& name);

inline const std::vector<std::string> kSovdevEnvs = {"dev", "staging", "prod", "edge"};

}  // namespace sovdev::testing
