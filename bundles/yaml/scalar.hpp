// YAML scalars to JSON values, resolved the way kubectl resolves them: go-yaml v2 (YAML 1.1 style
// bools, octal, hex) and then sigs.k8s.io/yaml's conversion of map keys to strings.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace sovdev::yaml::detail {

// `tag` as yaml-cpp reports it: "?" for a plain scalar, "!" for a quoted or block scalar,
// "tag:yaml.org,2002:int" for !!int, "!foo" for a local tag. Errors carry no location.
[[nodiscard]] Status resolve_scalar(std::string_view tag, std::string_view text,
                                    nlohmann::json& out);

// The JSON object key a scalar map key becomes: `yes` becomes "true", `0x1F` becomes "31",
// as kubectl does; null keys are refused, as kubectl does.
[[nodiscard]] Status resolve_key(std::string_view tag, std::string_view text, std::string& out);

}  // namespace sovdev::yaml::detail
