// What the harnesses and fuzz_make_seeds share: fixed keys and trust roots, a bundle builder the
// way the hub builds one, and a reader of the fuzz input's leading parameter bytes.
//
// Keys come from fixed seeds and Ed25519 signatures are deterministic, so the committed seed
// corpus (signed bundles, catalogs, trust roots) verifies against the trust root each harness
// builds at startup. These keys sign nothing outside the fuzzers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bundles/blob_wire.hpp"
#include "bundles/keys.hpp"
#include "bundles/payload.hpp"
#include "bundles/seal.hpp"
#include "bundles/sealed_record.hpp"
#include "bundles/sign_objects.hpp"
#include "bundles/trust.hpp"
#include "sovdev.pb.h"

namespace sovdev::fuzz {

// The clock the harnesses judge catalog expiry by (2026-09-21).
inline constexpr int64_t kNow = 1'790'000'000;

// v1: root {root-a, root-b} threshold 1, publisher {pub-a, pub-b} threshold 1, signed by root-a.
// v2: root {root-b, root-c} threshold 2, publisher {pub-a, pub-c} threshold 1, signed by root-a
//     (v1's threshold) and root-b + root-c (its own).
struct Keys {
  SecretKey root_a, root_b, root_c;
  SecretKey pub_a, pub_b, pub_c;
};
const Keys& keys();
const std::string& signed_root_v1();
const std::string& signed_root_v2();
const pb::TrustRoot& root_v1_body();
const pb::TrustRoot& root_v2_body();
const TrustPolicy& trust_v1();  // what an agent pinned from signed_root_v1()

// The (target, base) pair the delta offer seeds are signed for: digests of no real bundle.
const std::string& delta_target_digest();
const std::string& delta_base_digest();

// A serialized Signed of `type` over `body`, signed by each key in order.
std::string sign(std::string_view type, std::string body, const std::vector<SecretKey>& signers);

pb::ResourceRecord record(std::string api_version, std::string kind, std::string namespace_,
                          std::string name, std::string json);

// A bundle made the way `sovdev-hub build` makes one, held in memory.
struct Bundle {
  pb::BundleManifest manifest;
  std::string envelope;  // serialized Signed manifest
  std::string digest;
  std::string payload;
  std::string file;  // header + envelope + payload: the .sdb file
};
Bundle make_bundle(const std::vector<pb::ResourceRecord>& records, const BundleInfo& info,
                   PayloadWriter::Options options, const std::vector<SecretKey>& signers);
BundleInfo default_info();

// An image layer as the hub sends it (bundles/blob_wire.hpp): the blob, its zstd wire form, its
// BlobManifest (serialized, as an answer carries it) and the ImageBlob a bundle lists it by.
struct WireBlob {
  std::string blob;
  std::string wire;  // the chunks in order
  pb::BlobManifest manifest;
  std::string manifest_bytes;
  pb::ImageBlob listing;
};
WireBlob encode_blob(std::string blob, const blobwire::BlobEncoder::Options& options);
// A fixed 12 KB layer-like blob in 4 KiB chunks (level 19, window 2^20): the listing
// fuzz_blob_wire checks answers against.
const WireBlob& image_blob();

// Sealed secrets: the agent's X25519 key, channel edge's epoch key (epoch 3) and the place of
// the sealed record seeds, all fixed; and sealing that takes its randomness from a name, so
// the seeds come out the same on every run. Real sealing is random: these are for seeds only.
inline constexpr uint64_t kEpoch = 3;
const seal::AgentKey& agent_key();
const seal::SecretBytes& epoch_key();
const sealed::Place& place();
// crypto_box_seal's format (ephemeral public key || crypto_box of `key` under the nonce
// BLAKE2b(ephemeral || recipient)), with the ephemeral key made from `seed_name`.
std::string seal_to_fixed(std::string_view agent_public_key, std::string_view key,
                          std::string_view seed_name);
// seal::encrypt's format (nonce || XChaCha20-Poly1305) with a nonce made from `seed_name`.
std::string encrypt_fixed(const seal::SecretBytes& key, std::string_view plaintext,
                          std::string_view associated, std::string_view seed_name);

// A harness found a broken invariant: print what and abort, so libFuzzer saves the input.
[[noreturn]] void fail(std::string_view what);
inline void expect(bool ok, std::string_view what) {
  if (!ok) fail(what);
}

// Leading parameter bytes of a fuzz input; reads past the end give zeros.
class Params {
 public:
  Params(const uint8_t* data, size_t size) : bytes_(reinterpret_cast<const char*>(data), size) {}
  uint8_t u8() {
    if (bytes_.empty()) return 0;
    const auto b = static_cast<uint8_t>(bytes_.front());
    bytes_.remove_prefix(1);
    return b;
  }
  // Little-endian, `n` ≤ 8 bytes.
  uint64_t uint(int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= static_cast<uint64_t>(u8()) << (8 * i);
    return v;
  }
  std::string_view take(size_t n) {
    const auto got = bytes_.substr(0, n);
    bytes_.remove_prefix(got.size());
    return got;
  }
  std::string_view rest() const { return bytes_; }

 private:
  std::string_view bytes_;
};

}  // namespace sovdev::fuzz
