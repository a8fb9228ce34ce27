// Reading a cached bundle's payload, whatever its origin: as signed (its chunks checked against
// the signed chunk hashes and payload hash) or rebuilt by the agent from a delta (checked
// against the signed uncompressed hash). Everything that reads a bundle from the cache goes
// through here, so no reader can forget which check applies.
#pragma once

#include <string>

#include "bundles/payload.hpp"
#include "common/error.hpp"
#include "platform/store/agent_cache.hpp"
#include "sovdev.pb.h"

namespace sovdev::agent {

// Hands every record of the bundle to `on_record`, in apply order, streaming: memory stays at
// one zstd window and one record. `manifest` is the verified manifest of `info.envelope`. Fails
// when a chunk is missing or altered, the payload does not match what was signed, or the
// record count differs from the manifest's; records already handed over may then be wrong, so
// a caller applying them must treat the whole pass as failed.
[[nodiscard]] Status for_each_record(store::Database& db, const store::BundleInfo& info,
                                     const pb::BundleManifest& manifest,
                                     PayloadReader::OnRecord on_record);

// Checks a cached payload completely — every chunk read, decompressed and hashed, every record
// decoded and counted — without handing a record to anyone: the pass an apply, a reconcile or
// a rollback runs before the first record goes to the target (for_each_record finds a
// mismatch only at the end, when records are out already). Streaming, like for_each_record.
// A payload that is not whole (partial: being fetched again) is Errc::not_found. A mismatch
// drops the payload from the cache (BundleCache::drop_payload: the bundle is partial again, so
// the next fetch of its digest brings it whole) and returns why, naming stack@version.
// `check`, when given, sees every record of the same pass (sealed_apply.hpp opens the sealed
// Secrets there). It keeps its own findings and returns success: an error it returned would
// count as damage, and drop the payload.
[[nodiscard]] Status verify_cached_payload(store::Database& db, const store::BundleInfo& info,
                                           const pb::BundleManifest& manifest,
                                           const PayloadReader::OnRecord& check = {});

// Writes the bundle's record stream (its payload decompressed, exactly
// manifest.uncompressed_size bytes) to a new file at `path`, streaming, with the same checks
// as for_each_record except the decoding of records. The file is removed again on failure.
[[nodiscard]] Status write_record_stream(store::Database& db, const store::BundleInfo& info,
                                         const pb::BundleManifest& manifest,
                                         const std::string& path);

}  // namespace sovdev::agent
