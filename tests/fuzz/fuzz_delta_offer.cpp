// A delta offer as the agent receives it on its data topic (verify_offered_delta): anyone on the
// broker can send one. Input: byte 0 flags (bit 0: the pair's digests follow, 32 + 32 bytes;
// otherwise the fixed pair the seeds were signed for), 2 bytes little-endian length of the
// inline delta, the digests if any, the inline delta, then the serialized pb::Signed envelope.
// An accepted offer must name exactly the pair asked for, be well formed, verify the same way
// again, be refused for any other pair, and, when the inline delta's size and hash were left
// out of it, hold exactly the delta sent beside it.
#include <cstdint>
#include <string>
#include <string_view>

#include "bundles/delta.hpp"
#include "tests/fuzz/fixtures.hpp"
#include "tests/fuzz/wire_mutator.hpp"

using namespace sovdev;

namespace {

struct Input {
  std::string target, base;
  std::string_view inline_data;
  std::string_view envelope;
  size_t header = 0;  // bytes before the envelope
};

Input split(const uint8_t* data, size_t size) {
  fuzz::Params p(data, size);
  Input in;
  const uint8_t flags = p.u8();
  const auto inline_size = static_cast<size_t>(p.uint(2));
  if (flags & 1) {
    in.target = std::string(p.take(kDigestSize));
    in.base = std::string(p.take(kDigestSize));
  } else {
    in.target = fuzz::delta_target_digest();
    in.base = fuzz::delta_base_digest();
  }
  in.inline_data = p.take(inline_size);
  in.envelope = p.rest();
  in.header = size - in.envelope.size();
  return in;
}

std::string flipped(std::string digest) {
  if (digest.empty()) return "x";
  digest[0] = static_cast<char>(digest[0] ^ 1);
  return digest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Input in = split(data, size);
  pb::Signed envelope;
  if (!envelope.ParseFromString(std::string(in.envelope))) return 0;
  const TrustPolicy& trust = fuzz::trust_v1();
  auto offer = verify_offered_delta(trust, envelope, in.target, in.base, in.inline_data);
  if (!offer) return 0;

  fuzz::expect(offer->manifest_digest() == in.target && offer->base_digest() == in.base,
               "an offer accepted for another pair than the one asked for");
  auto shape = check_delta_shape(*offer);
  fuzz::expect(shape.has_value(), "an accepted offer is not well formed: " +
                                      (shape ? std::string() : shape.error().message));
  auto again = verify_offered_delta(trust, envelope, in.target, in.base, in.inline_data);
  fuzz::expect(again && again->SerializeAsString() == offer->SerializeAsString(),
               "an accepted offer verifies differently the second time");
  fuzz::expect(!verify_offered_delta(trust, envelope, flipped(in.target), in.base, in.inline_data),
               "an accepted offer also verifies for another target");
  fuzz::expect(!verify_offered_delta(trust, envelope, in.target, flipped(in.base), in.inline_data),
               "an accepted offer also verifies for another base");

  pb::DeltaManifest sent;
  const bool parsed = sent.ParseFromString(envelope.body());
  fuzz::expect(parsed, "an accepted offer's body does not parse");
  const bool size_left_out = is_inline_delta(sent) && sent.delta_size() == 0 &&
                             sent.delta_sha256().empty() && !in.inline_data.empty();
  if (size_left_out) {
    fuzz::expect(verify_inline_delta(*offer, in.inline_data).has_value(),
                 "an inline offer accepted with a delta other than the one it was signed for");
    const std::string longer = std::string(in.inline_data) + "x";
    fuzz::expect(!verify_offered_delta(trust, envelope, in.target, in.base, longer),
                 "an inline offer accepted with another delta beside it");
  }
  return 0;
}

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned seed) {
  // Boundary varints go into the envelope, after the header this input carries.
  return fuzz::mutate_message(data, size, max_size, seed, split(data, size).header);
}
