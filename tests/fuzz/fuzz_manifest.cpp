// A BundleManifest body as it is after its signature verified: the shape rules, the description
// used in every message, the install rules, and the chunk geometry the readers rely on.
#include <cstdint>
#include <optional>
#include <string>

#include "bundles/manifest_rules.hpp"
#include "bundles/payload.hpp"
#include "bundles/verify.hpp"
#include "tests/fuzz/fixtures.hpp"
#include "tests/fuzz/wire_mutator.hpp"

using namespace sovdev;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pb::BundleManifest m;
  if (!m.ParseFromArray(data, static_cast<int>(size))) return 0;
  (void)describe(m);
  if (!check_manifest_shape(m)) return 0;

  // A well-formed manifest cuts its payload into exactly its listed chunks, none empty, none
  // longer than chunk_size: readers index chunk hashes and slice files by these numbers.
  uint64_t covered = 0;
  for (uint32_t i = 0; i < chunk_count(m); i++) {
    const uint64_t length = chunk_length(m, i);
    fuzz::expect(length > 0 && length <= m.chunk_size(), "chunk length out of range");
    covered += length;
  }
  fuzz::expect(chunk_length(m, chunk_count(m)) == 0, "a chunk past the last one has bytes");
  fuzz::expect(covered == m.payload_size(),
               "the listed chunks do not cover payload_size exactly (" + std::to_string(covered) +
                   " of " + std::to_string(m.payload_size()) + " bytes)");
  (void)verify_chunk(m, 0, "");
  (void)verify_chunk(m, chunk_count(m), "");

  const std::string digest(kDigestSize, '\x11');
  const InstallTarget edge{"edge", "arm64"};
  const std::optional<HeldVersion> held = HeldVersion{m.version() - 1, std::string(32, 'x')};
  (void)check_installable(m, digest, edge, std::nullopt, std::nullopt);
  (void)check_installable(m, digest, edge, held, HeldVersion{m.version(), digest});
  (void)check_installable(m, digest, InstallTarget{}, HeldVersion{UINT64_MAX, ""},
                          HeldVersion{m.version(), "other"});

  // The decoder a valid manifest asks for must be creatable.
  auto reader = PayloadReader::create(PayloadReader::limits_for(m),
                                      [](pb::ResourceRecord&) -> Status { return {}; });
  fuzz::expect(reader.has_value(), "no decoder for a well-formed manifest's window");
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned seed) {
  return fuzz::mutate_message(data, size, max_size, seed, 0);
}
