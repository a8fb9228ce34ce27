// Kubernetes manifests as YAML text, the hub's input: parsed as kubectl reads them, validated,
// put in apply order. Every object that comes out must be valid JSON, named, and kept by the
// ordering.
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bundles/yaml/objects.hpp"
#include "tests/fuzz/fixtures.hpp"

using namespace sovdev;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Smaller caps than the defaults keep alias bombs quick to refuse; the logic is the same.
  yaml::ParseOptions options;
  options.max_object_bytes = 256 * 1024;
  options.max_total_bytes = 2 * 1024 * 1024;
  auto objects = yaml::parse_manifests("fuzz.yaml", text, options);
  if (!objects) return 0;
  for (const auto& o : *objects) {
    fuzz::expect(!o.kind.empty() && !o.name.empty() && !o.api_version.empty(),
                 "object without kind, name or apiVersion");
    fuzz::expect(o.json.size() <= options.max_object_bytes, "object over the size cap");
    fuzz::expect(nlohmann::json::accept(o.json), "object JSON does not parse: " + o.json);
    (void)yaml::apply_rank(o.group(), o.kind);
    (void)yaml::is_cluster_scoped(o.group(), o.kind);
  }
  const size_t count = objects->size();
  auto ordered = yaml::order_objects(std::move(*objects));
  if (ordered) fuzz::expect(ordered->size() == count, "ordering lost or added objects");
  return 0;
}
