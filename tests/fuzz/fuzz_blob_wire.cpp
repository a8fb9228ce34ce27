// How an image blob travels (bundles/blob_wire.hpp): the BlobManifest an answer from the hub
// carries, and the zstd stream its chunks hold; anyone on the broker can send either. Byte 0
// picks (b % 4):
//   0 a BlobManifest checked against the fixed listing (fuzz::image_blob()): only its exact
//     bytes may pass;
//   1 a BlobManifest checked against a listing that names it (wire digest = its hash, digest
//     and sizes its own), so the checks after the hash are explored (a trusted hub's mistakes);
//   2 a blob stream decoded: byte 1 the decoder's window log (10 + b % 12), bytes 2-4 the size
//     it must have (at most 256 KiB), bytes 5-6 where the stream is cut in two writes;
//   3 a blob encoded, its manifest checked and its stream decoded back: byte 1 the level
//     (1 + b % 3), byte 2 the window log (10 + b % 12), byte 3 the chunk size (4 KiB * (1 + b %
//     4)).
// An accepted manifest must cut its wire size into exactly its listed chunks; a decoded blob is
// never longer than its size, and is what was encoded.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "bundles/blob_wire.hpp"
#include "bundles/hash.hpp"
#include "bundles/manifest_rules.hpp"
#include "tests/fuzz/fixtures.hpp"
#include "tests/fuzz/wire_mutator.hpp"

using namespace sovdev;

namespace {

constexpr uint64_t kMaxDecodedSize = 256 * 1024;

void check_accepted(const pb::BlobManifest& m) {
  const uint32_t count = blobwire::chunk_count(m);
  fuzz::expect(count > 0 && count <= blobwire::kMaxChunks &&
                   count == static_cast<uint32_t>(m.chunk_sha256_size()),
               "an accepted blob manifest whose chunk list does not fit its wire size");
  fuzz::expect(m.chunk_size() >= kMinChunkSize && m.chunk_size() <= kMaxChunkSize &&
                   m.window_log() <= blobwire::kWindowLog,
               "an accepted blob manifest with its chunk size or window out of range");
  uint64_t covered = 0;
  for (uint32_t i = 0; i < count; i++) {
    const uint32_t length = blobwire::chunk_length(m, i);
    fuzz::expect(length > 0 && length <= m.chunk_size(), "blob chunk length out of range");
    covered += length;
  }
  fuzz::expect(covered == m.wire_size(), "the chunks do not cover the wire size exactly");
  fuzz::expect(blobwire::chunk_length(m, count) == 0, "a blob chunk past the last has bytes");
  fuzz::expect(!blobwire::chunk_matches(m, count, ""), "a blob chunk past the last matches");
  auto decoder = blobwire::BlobDecoder::create(m.digest(), m.size(),
                                               [](std::string_view) { return Status{}; });
  fuzz::expect(decoder.has_value(), "no decoder for an accepted blob manifest");
}

void fixed_listing(std::string_view bytes) {
  const fuzz::WireBlob& fixed = fuzz::image_blob();
  auto m = blobwire::parse_blob_manifest(bytes, fixed.listing);
  if (!m) return;
  fuzz::expect(bytes == fixed.manifest_bytes, "a blob manifest other than the listed one passed");
  check_accepted(*m);
}

void naming_listing(std::string_view bytes) {
  pb::ImageBlob listing = fuzz::image_blob().listing;
  listing.set_wire_digest(sha256(bytes));
  pb::BlobManifest claimed;
  if (claimed.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    listing.set_digest(claimed.digest());
    listing.set_size(claimed.size());
    listing.set_wire_size(claimed.wire_size());
  }
  auto m = blobwire::parse_blob_manifest(bytes, listing);
  if (!m) return;
  check_accepted(*m);
  listing.set_wire_digest(sha256(std::string(bytes) + "x"));
  auto other = blobwire::parse_blob_manifest(bytes, listing);
  fuzz::expect(!other && other.error().code == Errc::signature,
               "a blob manifest passed against another wire digest");
}

struct Decoded {
  bool ok = false;
  std::string out;
};

// Decodes `stream` in writes cut at each of `cuts`, as chunks arrive.
Decoded decode(std::string_view stream, const std::string& digest, uint64_t size,
               uint32_t window_log, std::initializer_list<size_t> cuts) {
  Decoded d;
  auto decoder = blobwire::BlobDecoder::create(
      digest, size,
      [&](std::string_view piece) {
        d.out.append(piece);
        fuzz::expect(d.out.size() <= size, "a blob decoder passed on more than the blob's size");
        return Status{};
      },
      window_log);
  fuzz::expect(decoder.has_value(), "no blob decoder for a window log in range");
  size_t at = 0;
  for (const size_t cut : cuts) {
    const size_t end = std::min(std::max(cut, at), stream.size());
    if (!decoder->write(stream.substr(at, end - at))) return d;
    at = end;
  }
  if (!decoder->write(stream.substr(at))) return d;
  d.ok = decoder->finish().has_value();
  return d;
}

void decode_stream(fuzz::Params& p) {
  const auto window_log = static_cast<uint32_t>(10 + p.u8() % 12);
  const uint64_t size = p.uint(3) % (kMaxDecodedSize + 1);
  const auto cut = static_cast<size_t>(p.uint(2));
  const std::string_view stream = p.rest();
  const fuzz::WireBlob& fixed = fuzz::image_blob();

  const Decoded first = decode(stream, fixed.manifest.digest(), size, window_log, {cut});
  if (first.ok) {
    fuzz::expect(first.out == fixed.blob,
                 "a blob stream passed with other bytes than its digest's");
  }
  // The same stream in one write, asked for what came out: the same bytes, whole or not.
  const std::string digest = sha256(first.out);
  const Decoded whole = decode(stream, digest, first.out.size(), window_log, {});
  fuzz::expect(!first.ok || whole.ok, "a blob stream passes cut in two, not whole");
  if (!whole.ok) return;
  fuzz::expect(whole.out == first.out, "a blob stream decodes differently cut in two");
  fuzz::expect(!decode(stream, digest, whole.out.size() + 1, window_log, {}).ok,
               "a blob stream passed for a size one longer");
  fuzz::expect(!decode(stream, sha256(whole.out + "x"), whole.out.size(), window_log, {}).ok,
               "a blob stream passed for another digest");
}

void round_trip(fuzz::Params& p) {
  blobwire::BlobEncoder::Options options;
  options.level = 1 + p.u8() % 3;
  options.window_log = static_cast<uint32_t>(10 + p.u8() % 12);
  options.chunk_size = kMinChunkSize * (1 + p.u8() % 4);
  const fuzz::WireBlob w = fuzz::encode_blob(std::string(p.rest()), options);
  auto m = blobwire::parse_blob_manifest(w.manifest_bytes, w.listing);
  fuzz::expect(m.has_value(), "the encoder's own blob manifest is refused: " +
                                  (m ? std::string() : m.error().message));
  check_accepted(*m);
  fuzz::expect(m->wire_size() == w.wire.size(),
               "the blob manifest's wire size is not the stream's");
  for (uint32_t i = 0; i < blobwire::chunk_count(*m); i++) {
    const std::string_view chunk =
        std::string_view(w.wire).substr(uint64_t{i} * m->chunk_size(), m->chunk_size());
    fuzz::expect(blobwire::chunk_matches(*m, i, chunk), "an encoded chunk does not match its hash");
  }
  const Decoded back = decode(w.wire, m->digest(), m->size(), blobwire::kWindowLog,
                              {w.wire.size() / 3, w.wire.size() / 2});
  fuzz::expect(back.ok && back.out == w.blob, "an encoded blob does not decode back");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Params p(data, size);
  switch (p.u8() % 4) {
    case 0: fixed_listing(p.rest()); break;
    case 1: naming_listing(p.rest()); break;
    case 2: decode_stream(p); break;
    default: round_trip(p); break;
  }
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned seed) {
  // Boundary varints for the manifests; the streams get libFuzzer's own mutations.
  if (size > 0 && data[0] % 4 < 2) return fuzz::mutate_message(data, size, max_size, seed, 1);
  return LLVMFuzzerMutate(data, size, max_size);
}
