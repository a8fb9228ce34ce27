// Sealed secrets on the agent (bundles/seal.hpp, bundles/sealed_record.hpp): what it reads from
// a key file an operator gives, the sealed epoch keys anyone on the broker can send it, and the
// sealed records of a signed bundle it opens and splices into a Secret. Byte 0 picks (b % 4):
//   0 an agent key file (secret or public): one that parses encodes back to one that parses
//     the same;
//   1 a sealed epoch key, opened with the fixture's agent key: only a 32-byte key comes out;
//   2 a ResourceRecord: its `sealed` opened with the fixture's epoch key and place, then
//     spliced into its JSON;
//   3 splice alone: 2 bytes of JSON length, the JSON, then the "opened" data object.
#include <cstdint>
#include <string>
#include <string_view>

#include "bundles/seal.hpp"
#include "bundles/sealed_record.hpp"
#include "tests/fuzz/fixtures.hpp"

using namespace sovdev;

namespace {

void key_file(std::string_view text) {
  if (auto secret = seal::parse_agent_secret(text)) {
    fuzz::expect(secret->secret.size() == seal::kKeySize && secret->public_key.size() == 32,
                 "agent secret key of the wrong size");
    auto again = seal::parse_agent_secret(seal::encode_agent_secret(*secret));
    fuzz::expect(again && again->name == secret->name && again->public_key == secret->public_key &&
                     again->secret.view() == secret->secret.view(),
                 "agent secret key does not round-trip");
  }
  if (auto pub = seal::parse_agent_public(text)) {
    fuzz::expect(pub->public_key.size() == seal::kKeySize && pub->secret.empty(),
                 "agent public key of the wrong size");
    auto again = seal::parse_agent_public(seal::encode_agent_public(*pub));
    fuzz::expect(again && again->name == pub->name && again->public_key == pub->public_key,
                 "agent public key does not round-trip");
  }
}

void sealed_key(std::string_view bytes) {
  auto key = seal::open_sealed(bytes, fuzz::agent_key());
  if (!key) return;
  fuzz::expect(bytes.size() == seal::kBoxOverhead + seal::kKeySize, "opened a box of odd size");
  fuzz::expect(key->size() == seal::kKeySize, "a sealed key opened to other than 32 bytes");
  (void)seal::epoch_key_id("edge", fuzz::kEpoch, *key);  // the agent's check before use
}

void spliced(std::string_view json, const seal::SecretBytes& opened) {
  auto out = sealed::splice(json, opened);
  if (!out) {
    fuzz::expect(!out.error().message.empty(), "splice refused without a reason");
    return;
  }
  sealed::wipe(*out);
  fuzz::expect(out->find_first_not_of('\0') == std::string::npos, "wipe left bytes");
}

void record(std::string_view bytes) {
  pb::ResourceRecord r;
  if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return;
  auto opened = sealed::open_record(r, fuzz::epoch_key(), fuzz::place());
  if (!opened) return;
  fuzz::expect(opened->size() <= sealed::kMaxSealedData, "opened more than a Secret holds");
  spliced(r.json(), *opened);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Params p(data, size);
  switch (p.u8() % 4) {
    case 0: key_file(p.rest()); break;
    case 1: sealed_key(p.rest()); break;
    case 2: record(p.rest()); break;
    default: {
      const std::string_view json = p.take(static_cast<size_t>(p.uint(2)));
      spliced(json, seal::SecretBytes::copy_of(p.rest()));
      break;
    }
  }
  return 0;
}
