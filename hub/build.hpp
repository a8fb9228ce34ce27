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
#include "hub/images/build_images.hpp"
#include "hub/render.hpp"
#include "hub/secrets/build_secrets.hpp"

namespace sovdev::hub {

struct BuildProgress {
  std::string stage;  // "reading", "compressing", "writing"
  uint64_t done = 0;
  uint64_t total = 0;
};

struct BuildRequest {
  std::string source_dir;         // a folder of manifests, or a stack folder when `env` is set
  const StackEnv* env = nullptr;  // render <source_dir>/base for this environment
  std::string out_path;
  BundleInfo info;
  PayloadWriter::Options options;
  std::vector<SecretKey> keys;
  std::function<void(const BuildProgress&)> progress;  // optional
  // Where `${secret:NAME/KEY}` references take their values, and whether literal Secret
  // values are allowed (hub/secrets/build_secrets.hpp).
  secrets::BuildSecretsOptions secrets;
  // Set (`build --images`): the images the objects name are resolved for the bundle's
  // architectures, the objects pinned to them and the manifest lists them
  // (hub/images/build_images.hpp). Its reports() say what each resolved to.
  images::BuildImages* images = nullptr;
};

struct BuildResult {
  pb::BundleManifest manifest;
  std::string digest;
  uint64_t file_size = 0;
  size_t files = 0;
  uint64_t input_bytes = 0;
  std::vector<std::string> unused_values;  // of the environment's values file: likely typos
  secrets::SealSummary secrets;            // what was sealed, and warnings for stderr
};

Expected<BuildResult> build_bundle(const BuildRequest& request);

// One source file as the build reads it: rendered for the environment when there is one.
struct SourceFile {
  std::string shown;  // relative to the folder given (base/ for a stack), for messages
  std::string text;
};
// Calls `each` for every manifest file in order, skipping what the environment excludes.
// `used` collects the value names the files looked up.
Status for_each_source(const BuildRequest& request, std::vector<std::string>& used,
                       const std::function<Status(SourceFile&&, uint64_t total_bytes)>& each);

}  // namespace sovdev::hub
