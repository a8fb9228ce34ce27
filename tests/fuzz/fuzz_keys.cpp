// Key files (`sovdev-ed25519-secret|public <name> <hex>`), read by the hub's and agent's CLIs from
// paths an operator gives. A key that parses must encode back to a file that parses the same.
#include <cstdint>
#include <string_view>

#include "bundles/keys.hpp"
#include "tests/fuzz/fixtures.hpp"

using namespace sovdev;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto secret = parse_secret_key(text)) {
    fuzz::expect(secret->secret.size() == 64, "secret key of the wrong size");
    auto again = parse_secret_key(encode_secret_key(*secret));
    fuzz::expect(again && again->name == secret->name && again->secret == secret->secret,
                 "secret key does not round-trip");
  }
  if (auto pub = parse_public_key(text)) {
    fuzz::expect(pub->public_key.size() == 32, "public key of the wrong size");
    auto again = parse_public_key(encode_public_key(*pub));
    fuzz::expect(again && again->name == pub->name && again->public_key == pub->public_key,
                 "public key does not round-trip");
  }
  return 0;
}
