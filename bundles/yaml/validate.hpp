// What the API server would refuse in a manifest, found before it leaves the hub.
#pragma once

#include <string_view>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "bundles/yaml/objects.hpp"

namespace sovdev::yaml::detail {

// Checks one converted object and builds its Object (JSON dumped compact, keys sorted). `node` is
// the object's YAML tree, used only to point messages at the offending line:
// "path:line: Kind/name: what is wrong", Errc::invalid.
[[nodiscard]] Expected<Object> make_object(const YAML::Node& node, const nlohmann::json& json,
                                           std::string_view path);

}  // namespace sovdev::yaml::detail
