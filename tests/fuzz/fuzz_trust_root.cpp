// A trust root as an agent meets it: pinned first (TrustPolicy::from_initial) and offered as a
// rotation of the fixed v1 root (TrustPolicy::rotate). Byte 0 picks what the rest is:
//   0: a serialized Signed trust root, as received;
//   1: a TrustRoot body the harness signs with every fixed root key (v1's and v2's), so the
//      checks that follow a valid signature (rotation rules, the policy built) are explored;
//   2: the same, signed only by root-c, a key v1 does not list (a rotation v1 never approved).
#include <cstdint>
#include <string>
#include <vector>

#include "bundles/hash.hpp"
#include "tests/fuzz/fixtures.hpp"
#include "tests/fuzz/wire_mutator.hpp"

using namespace sovdev;

namespace {

std::string envelope_of(uint8_t mode, std::string body) {
  const auto& k = fuzz::keys();
  switch (mode % 3) {
    case 1: return fuzz::sign(kTypeTrustRoot, std::move(body), {k.root_a, k.root_b, k.root_c});
    case 2: return fuzz::sign(kTypeTrustRoot, std::move(body), {k.root_c});
    default: return body;
  }
}

// What a pinned policy promises its users.
void check_policy(const TrustPolicy& policy, const std::string& envelope) {
  fuzz::expect(policy.version() >= 1, "a policy of version 0");
  fuzz::expect(policy.envelope() == envelope, "the policy keeps another envelope than it read");
  const pb::TrustRoot& root = policy.root();
  for (const pb::Role* role : {&root.root(), &root.publisher()}) {
    fuzz::expect(
        role->threshold() >= 1 && role->threshold() <= static_cast<uint32_t>(role->key_ids_size()),
        "a role whose threshold cannot be met");
  }
  // Whatever was pinned, a catalog signed by a key it does not list is refused.
  static const std::string stranger = [] {
    pb::Catalog catalog;
    catalog.set_channel("edge");
    return fuzz::sign(kTypeCatalog, catalog.SerializeAsString(), {fuzz::keys().pub_c});
  }();
  static const std::string pub_c_id = key_id(fuzz::keys().pub_c.public_key());
  bool lists_pub_c = false;
  for (const auto& id : root.publisher().key_ids()) lists_pub_c |= id == pub_c_id;
  if (!lists_pub_c) {
    fuzz::expect(!policy.verify_catalog(stranger), "a catalog by an unlisted key verified");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Params p(data, size);
  const uint8_t mode = p.u8();
  const std::string envelope = envelope_of(mode, std::string(p.rest()));

  if (auto pinned = TrustPolicy::from_initial(envelope)) check_policy(*pinned, envelope);

  if (auto next = fuzz::trust_v1().rotate(envelope)) {
    fuzz::expect(next->version() == 2, "rotation from v1 to a version other than 2");
    fuzz::expect(mode % 3 != 2, "rotation accepted without a signature by v1's root keys");
    check_policy(*next, envelope);
  }
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned seed) {
  return fuzz::mutate_message(data, size, max_size, seed, 1);
}
