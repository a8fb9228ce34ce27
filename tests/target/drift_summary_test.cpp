// How a re-apply of the applied version reads in the agent's log: what drifted, by name.
#include <catch2/catch.hpp>

#include "platform/target/target.hpp"

using sovdev::target::ApplyResult;
using sovdev::target::drift_summary;
using sovdev::target::kNamedChanges;

TEST_CASE("a pass that changed nothing says 0 of all drifted") {
  ApplyResult r;
  r.unchanged = 131;
  CHECK(drift_summary(r, 131) == "0 of 131 drifted");
}

TEST_CASE("a pass that changed objects names them, the first ones only, and what it pruned") {
  ApplyResult r;
  r.add_changed("ConfigMap ns/a");
  r.add_changed("Deployment ns/b");
  CHECK(drift_summary(r, 131) == "2 of 131 drifted: ConfigMap ns/a, Deployment ns/b");
  r.pruned = 1;
  CHECK(drift_summary(r, 131) == "2 of 131 drifted: ConfigMap ns/a, Deployment ns/b, 1 pruned");

  ApplyResult many;
  for (int i = 0; i < 14; i++) many.add_changed("ConfigMap ns/m" + std::to_string(i));
  CHECK(many.applied == 14);
  CHECK(many.changed.size() == kNamedChanges);
  const std::string said = drift_summary(many, 131);
  CHECK(said.rfind("14 of 131 drifted: ConfigMap ns/m0, ConfigMap ns/m1, ", 0) == 0);
  CHECK(said.find("ConfigMap ns/m9 and 4 more") != std::string::npos);
  CHECK(said.find("ns/m10") == std::string::npos);
}

TEST_CASE("a target that cannot tell what changed says so instead of counting every object") {
  ApplyResult r;
  r.applied = 131;
  r.changes_known = false;
  const std::string said = drift_summary(r, 131);
  CHECK(said.find("drifted is unknown") != std::string::npos);
  CHECK(said.find("131 of 131") == std::string::npos);
}
