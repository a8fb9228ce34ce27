// Rebuilding a bundle from a delta against a bundle the agent holds, without the window on the
// heap: the base's record stream, the delta and the output are files mapped into memory, the
// delta is decoded into the output in one shot, and the result must match the target
// manifest's signed uncompressed hash before anything is stored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bundles/delta.hpp"
#include "common/error.hpp"
#include "platform/store/agent_cache.hpp"
#include "sovdev.pb.h"

namespace sovdev::agent {

struct RebuildResult {
  bool already_present = false;  // the target was cached and verified already: nothing done
  uint32_t records = 0;
  uint64_t uncompressed_size = 0;
  uint64_t payload_size = 0;  // the payload as the agent compressed and stored it
  uint32_t chunk_count = 0;
};

// Rebuilds `target` (its verified manifest, the Signed envelope it came in, and its digest)
// from the delta described by `delta` (verified with verify_delta_manifest) whose bytes the
// caller collected in `delta_file`, against `base`, a verified bundle in the cache:
//   1. every delta chunk is checked against the signed delta manifest, and the whole delta;
//   2. the base's record stream is decoded from the cache into a file in `work_dir`;
//   3. base stream and delta are mapped read-only, an output file of the signed uncompressed
//      size is created and mapped writable;
//   4. the delta is decoded in one shot into the output (window ≤ 2^27, else refused);
//   5. the output must match the signed uncompressed hash and hold resource_count valid records;
//   6. it is compressed at a level the agent can afford (kRebuiltLevel, kRebuiltWindowLog),
//      cut at the manifest's chunk size, and stored as the target's payload, marked rebuilt and
//      verified, in one transaction.
// Every temporary file in `work_dir` is removed however this returns; `delta_file` stays the
// caller's. A refusal leaves the cache as it was.
[[nodiscard]] Expected<RebuildResult> rebuild_from_delta(
    store::Database& db, const pb::BundleManifest& target, const std::string& target_envelope,
    std::string_view target_digest, const store::BundleInfo& base, const pb::DeltaManifest& delta,
    const std::string& delta_file, const std::string& work_dir);

// Removes what a rebuild killed mid-way (SIGKILL, power loss) left in `work_dir`: call it at
// start-up, while no rebuild runs. A missing folder is fine.
[[nodiscard]] Status remove_stale_rebuild_files(const std::string& work_dir);

}  // namespace sovdev::agent
