// A signed catalog, verified against the pinned trust root, then judged for freshness.
// Byte 0 picks what the rest is:
//   even: a serialized Signed catalog, as received (anyone on the broker can send one);
//   odd:  a Catalog body that the harness signs with the fixed publisher key, so the content
//         checks after the signature are explored too (a trusted publisher's mistakes).
#include <cstdint>
#include <string>

#include "bundles/manifest_rules.hpp"
#include "tests/fuzz/fixtures.hpp"
#include "tests/fuzz/wire_mutator.hpp"

using namespace sovdev;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Params p(data, size);
  const bool sign = p.u8() & 1;
  const std::string input(p.rest());
  const std::string envelope = sign ? fuzz::sign(kTypeCatalog, input, {fuzz::keys().pub_a}) : input;

  auto catalog = fuzz::trust_v1().verify_catalog(envelope);
  if (!catalog) {
    fuzz::expect(
        !sign || envelope.size() > kMaxCatalogBytes || catalog.error().code != Errc::signature,
        "a catalog signed by the publisher key fails its signature check");
    return 0;
  }
  fuzz::expect(!catalog->channel().empty(), "a catalog without a channel verified");
  // The agent asks with its own clock; any time it could read must be safe to ask with.
  for (const int64_t now : {fuzz::kNow, int64_t{0}, int64_t{4'102'444'800}}) {
    (void)check_catalog_fresh(*catalog, now);
  }
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned seed) {
  return fuzz::mutate_message(data, size, max_size, seed, 1);
}
