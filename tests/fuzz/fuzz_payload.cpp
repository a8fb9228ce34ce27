// What follows a valid signature: a payload the manifest signs (a trusted publisher's mistake,
// or a compromised one) must still be decoded within the declared limits. The input is a few
// parameter bytes, then the compressed payload:
//
//   [0]      zstd window log: 10 + b % 13 (10..22, what check_manifest_shape allows)
//   [1]      bit 0: the next 32 bytes are the signed uncompressed SHA-256
//            bits 1-3: piece size the direct reader is fed in (1 byte .. whole payload)
//   [2..4]   declared uncompressed size, 24-bit little-endian
//   [5..7]   declared largest record, 24-bit
//   [8]      chunk size: kMinChunkSize * (1 + b % 4)
//   [9..10]  declared record count, 16-bit
//   ...      payload
//
// The harness signs nothing: it builds the manifest a publisher would (chunk and payload hashes
// computed over the input), so PayloadVerifier checks every chunk and decodes the stream. A
// PayloadReader fed the same bytes in small pieces must hand out the same records: streaming
// may not change what a payload means.
#include <cstdint>
#include <string>
#include <string_view>

#include "bundles/hash.hpp"
#include "bundles/verify.hpp"
#include "tests/fuzz/fixtures.hpp"

using namespace sovdev;

namespace {

constexpr size_t kPieceSizes[] = {1, 3, 64, 511, 4096, 65536, 1 << 20, SIZE_MAX};

struct Decoded {
  bool ok = false;
  uint32_t records = 0;
  std::string records_hash;  // SHA-256 over each record's serialization, in order
};

PayloadReader::OnRecord collect(uint32_t& count, Sha256& hash) {
  return [&count, &hash](pb::ResourceRecord& r) -> Status {
    fuzz::expect(!r.kind().empty() && !r.api_version().empty() && !r.name().empty(),
                 "record handed out without kind, apiVersion or name");
    count++;
    hash.update(r.SerializeAsString());
    return {};
  };
}

Decoded through_verifier(const pb::BundleManifest& m, std::string_view payload) {
  Decoded d;
  Sha256 hash;
  uint32_t count = 0;
  auto verifier = PayloadVerifier::create(m, collect(count, hash));
  if (!verifier) return d;
  for (uint32_t i = 0; i < chunk_count(m); i++) {
    const uint64_t length = chunk_length(m, i);
    fuzz::expect(length > 0 && length <= payload.size(), "chunk length outside the payload");
    if (!verifier->add_chunk(i, payload.substr(0, length))) return d;
    payload.remove_prefix(length);
  }
  auto finished = verifier->finish();
  d.ok = finished.has_value();
  if (d.ok) fuzz::expect(*finished == count, "verifier counts other records than it handed out");
  d.records = count;
  d.records_hash = hash.finish();
  return d;
}

Decoded through_reader(const PayloadReader::Limits& limits, std::string_view payload,
                       size_t piece) {
  Decoded d;
  Sha256 hash;
  uint32_t count = 0;
  auto reader = PayloadReader::create(limits, collect(count, hash));
  if (!reader) return d;
  while (!payload.empty()) {
    const auto part = payload.substr(0, piece);
    payload.remove_prefix(part.size());
    if (!reader->feed(part)) return d;
  }
  auto finished = reader->finish();
  d.ok = finished.has_value();
  if (d.ok) {
    fuzz::expect(*finished == count, "reader counts other records than it handed out");
    fuzz::expect(limits.uncompressed_size > 0 || count == 0, "records out of an empty stream");
  }
  d.records = count;
  d.records_hash = hash.finish();
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Params p(data, size);
  pb::BundleManifest m;
  m.set_schema(kSchema);
  m.set_stack("sovdev");
  m.set_channel("edge");
  m.set_version(12);
  m.add_arch("arm64");
  m.set_compression("zstd");
  m.set_window_log(10 + p.u8() % 13);
  const uint8_t flags = p.u8();
  m.set_uncompressed_size(p.uint(3));
  m.set_max_record_size(p.uint(3) % (kMaxRecordSize + 1));
  m.set_chunk_size(kMinChunkSize * (1 + p.u8() % 4));
  m.set_resource_count(static_cast<uint32_t>(p.uint(2)));
  const bool check_plain_hash = flags & 1;
  if (check_plain_hash) m.set_uncompressed_sha256(std::string(p.take(kDigestSize)));
  const size_t piece = kPieceSizes[(flags >> 1) & 7];
  const std::string_view payload = p.rest();

  m.set_payload_size(payload.size());
  m.set_payload_sha256(sha256(payload));
  for (size_t at = 0; at < payload.size(); at += m.chunk_size()) {
    m.add_chunk_sha256(sha256(payload.substr(at, m.chunk_size())));
  }

  PayloadReader::Limits limits = PayloadReader::limits_for(m);
  limits.uncompressed_sha256 = m.uncompressed_sha256();
  const Decoded streamed = through_reader(limits, payload, piece);
  if (!check_manifest_shape(m)) {
    // Only an empty payload or a short digest should fail the shape this harness builds.
    fuzz::expect(payload.empty() || (check_plain_hash && m.uncompressed_sha256().size() != 32),
                 "harness built a malformed manifest");
    return 0;
  }
  const Decoded verified = through_verifier(m, payload);

  // The verifier does not check the uncompressed hash (the payload hash covers it) and does
  // check the record count; the reader does the opposite.
  const bool count_ok = streamed.records == m.resource_count();
  if (!check_plain_hash) {
    fuzz::expect(verified.ok == (streamed.ok && count_ok),
                 "verifier and piecewise reader disagree on whether the payload decodes");
  } else if (streamed.ok && count_ok) {
    fuzz::expect(verified.ok, "payload decodes in pieces but not through the verifier");
  }
  if (verified.ok && streamed.ok) {
    fuzz::expect(verified.records_hash == streamed.records_hash,
                 "verifier and piecewise reader hand out different records");
  }
  return 0;
}
