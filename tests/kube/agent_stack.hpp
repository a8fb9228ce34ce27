// What the agent-with-a-kube-target tests share: a small stack to build and publish, the
// agent's [apply] section for the fake API server, and what the fake holds of it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/kube/fake_kube.hpp"
#include "tests/sync/sync_fixture.hpp"

namespace sovdev::testing {

// A small stack: a namespace, a Deployment with `image`, and ConfigMaps named in `maps`.
inline std::string write_stack(const Workspace& ws, const std::string& name,
                               const std::string& image, const std::vector<std::string>& maps,
                               bool with_job = false) {
  const std::string dir = ws.dir / name;
  std::filesystem::create_directories(dir);
  std::string yaml =
      "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n---\n"
      "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: app\n"
      "  labels:\n    sovdev.io/service: web\n"
      "spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n"
      "    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n"
      "      - name: web\n        image: " +
      image + "\n";
  for (const auto& m : maps) {
    yaml += "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + m +
            "\n  namespace: app\n  labels:\n    sovdev.io/service: settings\ndata:\n  image: \"" +
            image + "\"\n";
  }
  if (with_job) {
    yaml +=
        "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  namespace: app\n"
        "  labels:\n    sovdev.io/service: migrate\n"
        "spec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n"
        "      - name: migrate\n        image: " +
        image + "\n";
  }
  write_text(dir + "/stack.yaml", yaml);
  return dir;
}

// Builds `dir` as version `version` and publishes it (`live`: the catalog goes out now).
inline std::string publish_stack(const Fleet& fleet, const std::string& dir, uint64_t version,
                                 bool live) {
  const std::string out = fleet.ws.dir / ("v" + std::to_string(version) + ".sdb");
  auto built = fleet.ws.build(dir, out, version);
  INFO(built.err);
  REQUIRE(built.exit_code == 0);
  auto published = live ? fleet.publish_live(out) : fleet.publish(out);
  INFO(published.err);
  REQUIRE(published.exit_code == 0);
  return out;
}

inline std::string kube_apply(const FakeKube& kube, int health_seconds, int reconcile_seconds = 0) {
  return "[apply]\ntarget = \"kube\"\nkubeconfig = \"" + kube.write_kubeconfig() +
         "\"\nhealth_timeout_seconds = " + std::to_string(health_seconds) +
         "\nreconcile_interval_seconds = " + std::to_string(reconcile_seconds) + "\n";
}

// The image of the stack's Deployment on the fake cluster, "" when it is not there.
inline std::string image_of(FakeKube& kube) {
  const nlohmann::json d = kube.object("Deployment", "app", "web");
  if (d.is_null()) return "";
  return d["spec"]["template"]["spec"]["containers"][0].value("image", "");
}

}  // namespace sovdev::testing
