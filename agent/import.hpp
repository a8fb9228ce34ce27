// Verifying a bundle file and importing it into the agent's cache: the offline path (a file
// carried in on a USB stick) and the check every fetched bundle also goes through.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bundles/manifest_rules.hpp"
#include "bundles/trust.hpp"
#include "platform/store/sqlite.hpp"
#include "sovdev.pb.h"

namespace sovdev::agent {

struct VerifyResult {
  pb::BundleManifest manifest;
  std::string digest;
  uint32_t records = 0;
};

// Checks signatures, the target, every chunk, the whole payload and every record; stores nothing.
Expected<VerifyResult> verify_bundle_file(const std::string& path, const TrustPolicy& trust,
                                          const InstallTarget& target);

struct ImportResult {
  VerifyResult bundle;
  bool already_present = false;
  uint32_t chunks_stored = 0;  // chunks written by this run (a resumed import writes fewer)
};

// What an agent takes in: the channels it follows (never empty) and its architecture (empty:
// any).
struct ImportScope {
  std::vector<std::string> channels;
  std::string arch;
};

// Verifies and stores a bundle. Refuses a bundle of a channel the agent does not follow (it
// would be applied, and set the rollback floor of the channel it does follow), a rollback
// against the newest verified bundle of the same (channel, stack), and same-version-other-
// content. Interrupted at any point (even by SIGKILL) the cache stays consistent, and the next
// import of the same file resumes with the chunks it lacks.
Expected<ImportResult> import_bundle(const std::string& path, const TrustPolicy& trust,
                                     store::Database& db, const ImportScope& scope);

}  // namespace sovdev::agent
