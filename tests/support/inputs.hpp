// Where tests and benchmarks read their inputs.
//  - The in-repo edge-stack fixture (tests/fixtures/edge-stack/{v1,v2}/manifests, written by
//    tests/fixtures/make-edge-stack.py): a real-world-shaped stack and a small upgrade of it. It
//    is always there, so every test of general behaviour uses it.
//  - The kube-prometheus corpus beside the repository (../shared/realworld, or
//    $SOVDEV_REALWORLD_DIR): an extra. Only the cases tagged [realworld], whose point is that
//    corpus, read it; without it they print SOVDEV_SKIP_MARKER, which ctest reports as SKIPPED
//    (tests/CMakeLists.txt sets SKIP_REGULAR_EXPRESSION), never as passed.
// Header only: the yaml and delta tests use it without linking the test support library.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#define SOVDEV_SKIP_MARKER "SOVDEV-SKIP:"

namespace sovdev::testing {

// One version ("v1" or "v2") of the in-repo fixture.
inline std::string edge_stack(const std::string& version) {
  return std::string(SOVDEV_SOURCE_DIR) + "/tests/fixtures/edge-stack/" + version + "/manifests";
}

// The real-world corpus: $SOVDEV_REALWORLD_DIR when set (an empty folder hides the corpus), else
// the folder beside the repository.
inline std::string realworld_dir() {
  const char* env = std::getenv("SOVDEV_REALWORLD_DIR");
  if (env != nullptr && *env != '\0') return env;
  return SOVDEV_REALWORLD_DEFAULT_DIR;
}

// One kube-prometheus version of the corpus: "81570cb1" or "f214874c".
inline std::string kube_prometheus(const std::string& version) {
  return realworld_dir() + "/kube-prometheus/" + version + "/manifests";
}

// Whether both kube-prometheus versions are there. When not, prints the skip line (with the
// reason) that ctest turns into SKIPPED; the caller then returns without asserting anything.
inline bool realworld_present() {
  for (const char* version : {"81570cb1", "f214874c"}) {
    if (!std::filesystem::is_directory(kube_prometheus(version))) {
      std::cout << SOVDEV_SKIP_MARKER << " " << realworld_dir()
                << "/kube-prometheus not found (set SOVDEV_REALWORLD_DIR to the corpus)"
                << std::endl;
      return false;
    }
  }
  return true;
}

}  // namespace sovdev::testing

// First line of a [realworld] case: skips it, visibly, when the corpus is absent.
#define SOVDEV_SKIP_WITHOUT_REALWORLD() \
  if (!::sovdev::testing::realworld_present()) return
