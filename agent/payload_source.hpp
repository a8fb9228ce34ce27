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

// Writes the bundle's record stream (its payload decompressed, exactly
// manifest.uncompressed_size bytes) to a new file at `path`, streaming, with the same checks
// as for_each_record except the decoding of records. The file is removed again on failure.
[[nodiscard]] Status write_record_stream(store::Database& db, const store::BundleInfo& info,
                                         const pb::BundleManifest& manifest,
                                         const std::string& path);

}  // namespace sovdev::agent
