// One YAML tree (yaml-cpp) to one JSON value (nlohmann), the way kubectl converts manifests.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace sovdev::yaml::detail {

// "path:line" with yaml-cpp's 0-based mark made 1-based.
std::string where(std::string_view path, const YAML::Mark& mark);

// The key and value of `key` in a YAML map; the last one when the key repeats, since its value is
// the one that counts. Never assign to the nodes: yaml-cpp's Node::operator= rewrites the tree.
std::optional<std::pair<YAML::Node, YAML::Node>> find_key(const YAML::Node& map,
                                                          std::string_view key);

// Converts one object's tree. The JSON size is counted while converting, so an alias bomb (a
// few lines of anchors that expand a billion-fold) stops at max_bytes instead of filling memory.
// Errors are Errc::invalid, "path:line: what is wrong".
[[nodiscard]] Status to_json(const YAML::Node& node, std::string_view path, size_t max_bytes,
                             nlohmann::json& out);

}  // namespace sovdev::yaml::detail
