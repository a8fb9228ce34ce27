// Shorthands for the yaml tests: parse text that must parse, or must fail.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "bundles/yaml/objects.hpp"

namespace sovdev::yaml::test {

inline std::vector<Object> parse_ok(std::string_view text, const ParseOptions& options = {}) {
  auto parsed = parse_manifests("test.yaml", text, options);
  if (!parsed) FAIL("unexpected error: " << parsed.error().message);
  return std::move(parsed).value();
}

inline Error parse_error(std::string_view text, const ParseOptions& options = {}) {
  auto parsed = parse_manifests("test.yaml", text, options);
  if (parsed) FAIL("parsed, but an error was expected:\n" << text);
  return std::move(parsed).error();
}

// The JSON of spec.v in a custom resource whose spec is `spec_yaml` (already indented by 2).
inline nlohmann::json spec_of(std::string_view spec_yaml) {
  std::string text = "apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: t\nspec:\n" +
                     std::string(spec_yaml);
  auto objects = parse_ok(text);
  REQUIRE(objects.size() == 1);
  return nlohmann::json::parse(objects[0].json).at("spec");
}

}  // namespace sovdev::yaml::test
