// Deltas: a bundle's record stream compressed with an older bundle's record stream as zstd
// prefix, so an agent holding the old bundle fetches only what changed. The hub makes them
// (memory is plentiful there); the agent rebuilds the record stream into a mapped file and
// checks it against the target manifest's signed uncompressed hash, so a wrong or malicious
// delta can waste bandwidth but never install other content.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bundles/keys.hpp"
#include "bundles/manifest_rules.hpp"
#include "bundles/payload.hpp"
#include "bundles/trust.hpp"
#include "common/error.hpp"
#include "sovdev.pb.h"

namespace sovdev {

// 128 MiB: base and new stream together must fit the window, and zstd decoders refuse larger
// windows by default. Above it there is no delta; the bundle travels in full.
inline constexpr uint32_t kMaxDeltaWindowLog = 27;
// Chunk hashes of a 128 MiB delta cut into 4 KiB chunks fit well below this.
inline constexpr size_t kMaxDeltaManifestBytes = 2 * 1024 * 1024;
// A delta up to this size travels whole in the answer to the agent's manifest request, its
// delta manifest in the inline form (no chunk hashes): one message instead of three, and no
// chunk request. Far below the response cap even beside a large manifest.
inline constexpr uint32_t kMaxInlineDelta = 64 * 1024;
// The agent's own compression of a rebuilt payload: it cannot afford level 19, and a 2 MiB
// window keeps its later reads as cheap as those of a payload the hub made.
inline constexpr int kRebuiltLevel = 3;
inline constexpr uint32_t kRebuiltWindowLog = 21;

struct DeltaOptions {
  int level = 19;
  uint32_t max_window_log = kMaxDeltaWindowLog;
  // Non-zero: a delta of this many bytes or more is refused with Errc::too_large (pass the full
  // payload's size: such a delta saves nothing). Compression stops as soon as it gets there.
  uint64_t max_size = 0;
};

struct Delta {
  std::string bytes;        // one zstd frame: checksum on, content size declared
  uint32_t window_log = 0;  // covers base + new stream: how far back a decoder must reach
};

// Compresses `new_stream` with `old_stream` as prefix. Errc::too_large when the two together
// exceed 2^options.max_window_log bytes, or when the delta reaches options.max_size: in both
// cases the caller sends the full bundle.
[[nodiscard]] Expected<Delta> make_delta(std::string_view old_stream, std::string_view new_stream,
                                         const DeltaOptions& options = {});

// The record stream of a payload held whole in memory (the hub's side, where memory is
// plentiful), checked against the manifest's window, uncompressed size and uncompressed hash.
[[nodiscard]] Expected<std::string> decode_record_stream(const pb::BundleManifest& manifest,
                                                         std::string_view payload);

// The description the hub signs: target and base digests (of their manifest bodies), the
// delta's size and hash, and one hash per `chunk_size` bytes of it. chunk_size 0 makes the
// inline form: no chunks, the delta travels whole beside it (at most kMaxInlineDelta bytes).
pb::DeltaManifest make_delta_manifest(std::string_view target_digest, std::string_view base_digest,
                                      const Delta& delta, uint32_t chunk_size = kDefaultChunkSize);
// A pb::Signed of type "delta", signed by every key given (the hub's online keys).
std::string sign_delta_manifest(const pb::DeltaManifest& manifest,
                                const std::vector<SecretKey>& keys);
// The same signature over the same body, but what is sent leaves out every field the agent
// that asked can work out itself: manifest_digest and base_digest (it named both), and for the
// inline form also delta_size and delta_sha256 (of the delta sent beside it), the envelope's
// type and the signatures' key ids (the agent tries its online keys). ~150 bytes less on
// every offer, and an offer verifies only for the pair the agent named
// and, inline, only with the very bytes that were signed (verify_offered_delta).
std::string sign_delta_offer(const pb::DeltaManifest& manifest, const std::vector<SecretKey>& keys);

// Internal consistency: digests, sizes, chunk count, hash lengths, and the window cap
// (Errc::too_large above kMaxDeltaWindowLog). Needs no trust decision.
[[nodiscard]] Status check_delta_shape(const pb::DeltaManifest& manifest);

// Signed by a threshold of the online role and well formed (TrustPolicy::verify_delta).
[[nodiscard]] Expected<pb::DeltaManifest> verify_delta_manifest(const TrustPolicy& trust,
                                                                std::string_view signed_delta);
[[nodiscard]] Expected<pb::DeltaManifest> verify_delta_manifest(const TrustPolicy& trust,
                                                                const pb::Signed& envelope);

// A delta offered for the pair (target_digest, base_digest): an envelope as
// sign_delta_manifest or sign_delta_offer made it. What sign_delta_offer left out is put back
// (from the pair, and from `inline_data`, the delta that came beside an inline offer) and the
// body serialized again before the signature is checked: fields serialize in number order, so
// it is the signed body exactly when nothing differs. Verified as verify_delta_manifest does,
// then refused unless it names exactly that pair.
[[nodiscard]] Expected<pb::DeltaManifest> verify_offered_delta(const TrustPolicy& trust,
                                                               const pb::Signed& envelope,
                                                               std::string_view target_digest,
                                                               std::string_view base_digest,
                                                               std::string_view inline_data = {});
bool is_inline_delta(const pb::DeltaManifest& manifest);
// The whole delta of an inline delta manifest: its size and signed hash.
[[nodiscard]] Status verify_inline_delta(const pb::DeltaManifest& manifest, std::string_view data);

uint32_t delta_chunk_count(const pb::DeltaManifest& manifest);
uint64_t delta_chunk_length(const pb::DeltaManifest& manifest, uint32_t index);
// Checks one delta chunk's index, length and signed hash: "delta chunk 3 of 4: hash mismatch".
[[nodiscard]] Status verify_delta_chunk(const pb::DeltaManifest& manifest, uint32_t index,
                                        std::string_view data);

// Decodes `delta` against `base_stream` in one shot into `out`, which must be exactly as large
// as the frame declares (the signed uncompressed size): the output buffer is the window, so
// with `out` and `base_stream` mapped from files no window lives on the heap. Refuses a frame
// asking for a window above 2^window_log (and window_log above kMaxDeltaWindowLog) and data
// after the frame. zstd's own checksum is not consulted: the caller checks `out` against the
// signed uncompressed hash, which is the authority on what the content must be.
[[nodiscard]] Status apply_delta(std::string_view base_stream, std::string_view delta,
                                 uint32_t window_log, std::span<char> out);

// Walks a whole record stream held in memory (or mapped) as PayloadReader walks a decoded one:
// every length within `max_record_size`, every record a valid object, nothing left over.
// Returns the number of records.
[[nodiscard]] Expected<uint32_t> check_record_stream(std::string_view stream,
                                                     uint64_t max_record_size);

// Compresses a whole record stream into one payload frame (checksum on, content size
// declared), handing the compressed bytes to `sink` in pieces; returns their total size.
[[nodiscard]] Expected<uint64_t> compress_record_stream(std::string_view stream, int level,
                                                        uint32_t window_log,
                                                        const PayloadWriter::Sink& sink);

}  // namespace sovdev
