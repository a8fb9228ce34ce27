// Finding the images a rendered object runs, and pinning them without touching anything else.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "hub/images/discover.hpp"

using namespace sovdev;
using namespace sovdev::hub::images;

namespace {

// A pod spec with one container of each kind, images named after `tag`.
nlohmann::json discover_pod_spec(const std::string& tag) {
  return nlohmann::json{
      {"containers", {{{"name", "app"}, {"image", "app:" + tag}, {"args", {"--image", "x"}}}}},
      {"initContainers", {{{"name", "init"}, {"image", "init:" + tag}}}},
      {"ephemeralContainers", {{{"name", "debug"}, {"image", "busybox:" + tag}}}},
      {"volumes", {{{"name", "v"}, {"image", {{"reference", "not-a-container:1"}}}}}}};
}

std::vector<std::string> discovered_refs(std::string_view kind, const nlohmann::json& object) {
  auto found = find_images(kind, object.dump());
  REQUIRE(found);
  std::vector<std::string> out;
  for (const auto& use : *found) out.push_back(use.reference + " @ " + use.path);
  return out;
}

}  // namespace

TEST_CASE("discovery finds every container kind of a Pod, a workload template and a CronJob") {
  const nlohmann::json pod{{"kind", "Pod"}, {"spec", discover_pod_spec("pod")}};
  CHECK(discovered_refs("Pod", pod) ==
        std::vector<std::string>{"app:pod @ spec.containers[0].image",
                                 "init:pod @ spec.initContainers[0].image",
                                 "busybox:pod @ spec.ephemeralContainers[0].image"});
  for (const char* kind : {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}) {
    INFO(kind);
    const nlohmann::json workload{{"kind", kind},
                                  {"spec", {{"template", {{"spec", discover_pod_spec("w")}}}}}};
    CHECK(discovered_refs(kind, workload).size() == 3);
    CHECK(discovered_refs(kind, workload)[1] ==
          "init:w @ spec.template.spec.initContainers[0].image");
  }
  const nlohmann::json cron{
      {"kind", "CronJob"},
      {"spec",
       {{"schedule", "* * * * *"},
        {"jobTemplate", {{"spec", {{"template", {{"spec", discover_pod_spec("c")}}}}}}}}}};
  CHECK(discovered_refs("CronJob", cron) ==
        std::vector<std::string>{
            "app:c @ spec.jobTemplate.spec.template.spec.containers[0].image",
            "init:c @ spec.jobTemplate.spec.template.spec.initContainers[0].image",
            "busybox:c @ spec.jobTemplate.spec.template.spec.ephemeralContainers[0].image"});
  const nlohmann::json templ{{"kind", "PodTemplate"},
                             {"template", {{"spec", discover_pod_spec("t")}}}};
  CHECK(discovered_refs("PodTemplate", templ).size() == 3);
}

TEST_CASE("discovery ignores an image key outside a pod spec's containers") {
  const nlohmann::json config{{"kind", "ConfigMap"}, {"data", {{"image", "postgres:16"}}}};
  CHECK(discovered_refs("ConfigMap", config).empty());
  // A custom resource with its own `spec.image`, and a Pod-shaped spec under another kind.
  const nlohmann::json custom{
      {"kind", "Cluster"},
      {"spec", {{"image", "postgres:16"}, {"containers", {{{"image", "x:1"}}}}}}};
  CHECK(discovered_refs("Cluster", custom).empty());
  CHECK(find_images("ConfigMap", "[1,2]").error().code == Errc::invalid);
}

TEST_CASE(
    "pinning rewrites the images it knows and leaves every other byte as the build wrote it") {
  const nlohmann::json deployment{
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "web"}, {"annotations", {{"image", "app:w"}}}}},
      {"spec",
       {{"replicas", 2}, {"ratio", 0.25}, {"template", {{"spec", discover_pod_spec("w")}}}}}};
  const std::string original = deployment.dump();
  const std::string pinned_app = "docker.io/library/app@sha256:" + std::string(64, 'a');
  auto pinned = pin_images("Deployment", original, [&](const std::string& ref) {
    return ref == "app:w" ? &pinned_app : nullptr;
  });
  REQUIRE(pinned);
  REQUIRE(pinned->has_value());
  nlohmann::json expected = deployment;
  expected["spec"]["template"]["spec"]["containers"][0]["image"] = pinned_app;
  CHECK(**pinned == expected.dump());
  // The annotation named `image`, the volume's image field, init and ephemeral containers the
  // lookup does not know: untouched.
  const auto back = nlohmann::json::parse(**pinned);
  CHECK(back["metadata"]["annotations"]["image"] == "app:w");
  CHECK(back["spec"]["template"]["spec"]["initContainers"][0]["image"] == "init:w");

  auto unchanged = pin_images("Deployment", original,
                              [](const std::string&) -> const std::string* { return nullptr; });
  REQUIRE(unchanged);
  CHECK_FALSE(unchanged->has_value());
  const nlohmann::json config{{"kind", "ConfigMap"}, {"data", {{"image", "app:w"}}}};
  auto config_pinned =
      pin_images("ConfigMap", config.dump(), [&](const std::string&) { return &pinned_app; });
  REQUIRE(config_pinned);
  CHECK_FALSE(config_pinned->has_value());
}
