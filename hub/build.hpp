// Building a bundle file from a folder of Kubernetes manifests.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "bundles/payload.hpp"
#include "bundles/sign_objects.hpp"
#include "common/error.hpp"

namespace sovdev::hub {

struct BuildProgress {
  std::string stage;  // "reading", "compressing", "writing"
  uint64_t done = 0;
  uint64_t total = 0;
};

struct BuildRequest {
  std::string source_dir;
  std::string out_path;
  BundleInfo info;
  PayloadWriter::Options options;
  std::vector<SecretKey> keys;
  std::function<void(const BuildProgress&)> progress;  // optional
};

struct BuildResult {
  pb::BundleManifest manifest;
  std::string digest;
  uint64_t file_size = 0;
  size_t files = 0;
  uint64_t input_bytes = 0;
};

Expected<BuildResult> build_bundle(const BuildRequest& request);

}  // namespace sovdev::hub
