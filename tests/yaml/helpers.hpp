// Shorthands for the yaml tests: parse text that must parse, or must fail.
#pragma once

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
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

// Every object of a manifests/ folder (setup/ included), files in name order; each object's
// source is its path from the folder's parent. The folder must hold `expected_files` files.
inline std::vector<Object> load_manifests(const std::filesystem::path& manifests,
                                          size_t expected_files) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(manifests)) {
    if (entry.is_regular_file() && entry.path().extension() == ".yaml") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() == expected_files);
  std::vector<Object> objects;
  for (const fs::path& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    auto parsed = parse_manifests(fs::relative(file, manifests.parent_path()).string(), text.str());
    if (!parsed) FAIL(parsed.error().message);
    for (Object& o : *parsed) objects.push_back(std::move(o));
  }
  return objects;
}

// Position of the first object of `kind` in `ordered` (size() when there is none).
inline std::ptrdiff_t first_of(const std::vector<Object>& ordered, const std::string& kind) {
  return std::find_if(ordered.begin(), ordered.end(),
                      [&](const Object& o) { return o.kind == kind; }) -
         ordered.begin();
}

// One past the position of the last object of `kind` in `ordered` (0 when there is none).
inline std::ptrdiff_t last_of(const std::vector<Object>& ordered, const std::string& kind) {
  return ordered.rend() - std::find_if(ordered.rbegin(), ordered.rend(),
                                       [&](const Object& o) { return o.kind == kind; });
}

}  // namespace sovdev::yaml::test
