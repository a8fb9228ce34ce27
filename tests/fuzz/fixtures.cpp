#include "tests/fuzz/fixtures.hpp"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include "bundles/bundle_file.hpp"
#include "bundles/hash.hpp"
#include "bundles/image_rules.hpp"
#include "bundles/manifest_rules.hpp"

namespace sovdev::fuzz {
namespace {

SecretKey fixed_key(const std::string& name) {
  ensure_sodium();
  const std::string seed = sha256("sovdev-fuzz-key/" + name);
  SecretKey key{name, std::string(crypto_sign_SECRETKEYBYTES, '\0')};
  std::string pk(crypto_sign_PUBLICKEYBYTES, '\0');
  crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(pk.data()),
                           reinterpret_cast<unsigned char*>(key.secret.data()),
                           reinterpret_cast<const unsigned char*>(seed.data()));
  return key;
}

PublicKeyInfo public_of(const SecretKey& k) {
  return {k.name, k.public_key()};
}

template <class T>
T must(Expected<T> value, std::string_view what) {
  if (!value) fail(std::string(what) + ": " + value.error().message);
  return std::move(value).value();
}

pb::TrustRoot make_root(uint64_t version, std::vector<SecretKey> roots,
                        std::vector<SecretKey> publishers, uint32_t root_threshold) {
  TrustRootSpec spec;
  spec.version = version;
  spec.created_at = kNow - 86400;
  for (const auto& k : roots) spec.root_keys.push_back(public_of(k));
  for (const auto& k : publishers) spec.publisher_keys.push_back(public_of(k));
  spec.root_threshold = root_threshold;
  return must(make_trust_root(spec), "fuzz fixture trust root");
}

}  // namespace

void fail(std::string_view what) {
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

const seal::AgentKey& agent_key() {
  static const seal::AgentKey k = [] {
    ensure_sodium();
    const std::string seed = sha256("sovdev-fuzz-agent/edge-node-01");
    seal::AgentKey key{"edge-node-01", std::string(crypto_box_PUBLICKEYBYTES, '\0'),
                       seal::SecretBytes(crypto_box_SECRETKEYBYTES)};
    crypto_box_seed_keypair(reinterpret_cast<unsigned char*>(key.public_key.data()),
                            key.secret.data(), reinterpret_cast<const unsigned char*>(seed.data()));
    return key;
  }();
  return k;
}

const seal::SecretBytes& epoch_key() {
  static const seal::SecretBytes k = seal::SecretBytes::copy_of(sha256("sovdev-fuzz-epoch/3"));
  return k;
}

const sealed::Place& place() {
  static const sealed::Place p{"sovdev", 12, "edge", kEpoch};
  return p;
}

std::string seal_to_fixed(std::string_view agent_public_key, std::string_view key,
                          std::string_view seed_name) {
  ensure_sodium();
  const std::string seed = sha256("sovdev-fuzz-seal/" + std::string(seed_name));
  std::string epk(crypto_box_PUBLICKEYBYTES, '\0');
  seal::SecretBytes esk(crypto_box_SECRETKEYBYTES);
  crypto_box_seed_keypair(reinterpret_cast<unsigned char*>(epk.data()), esk.data(),
                          reinterpret_cast<const unsigned char*>(seed.data()));
  unsigned char nonce[crypto_box_NONCEBYTES];
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, sizeof nonce);
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(epk.data()), epk.size());
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(agent_public_key.data()),
                            agent_public_key.size());
  crypto_generichash_final(&state, nonce, sizeof nonce);
  std::string box(key.size() + crypto_box_MACBYTES, '\0');
  if (crypto_box_easy(reinterpret_cast<unsigned char*>(box.data()),
                      reinterpret_cast<const unsigned char*>(key.data()), key.size(), nonce,
                      reinterpret_cast<const unsigned char*>(agent_public_key.data()),
                      esk.data()) != 0) {
    fail("seal a fuzz seed");
  }
  return epk + box;
}

std::string encrypt_fixed(const seal::SecretBytes& key, std::string_view plaintext,
                          std::string_view associated, std::string_view seed_name) {
  ensure_sodium();
  std::string out =
      sha256("sovdev-fuzz-nonce/" + std::string(seed_name)).substr(0, seal::kNonceSize);
  out.resize(seal::kNonceSize + plaintext.size() + seal::kTagSize);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(out.data()) + seal::kNonceSize, &written,
      reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
      reinterpret_cast<const unsigned char*>(associated.data()), associated.size(), nullptr,
      reinterpret_cast<const unsigned char*>(out.data()), key.data());
  return out;
}

const Keys& keys() {
  static const Keys k{fixed_key("root-a"), fixed_key("root-b"), fixed_key("root-c"),
                      fixed_key("pub-a"),  fixed_key("pub-b"),  fixed_key("pub-c")};
  return k;
}

const pb::TrustRoot& root_v1_body() {
  static const pb::TrustRoot r =
      make_root(1, {keys().root_a, keys().root_b}, {keys().pub_a, keys().pub_b}, 1);
  return r;
}

const pb::TrustRoot& root_v2_body() {
  static const pb::TrustRoot r =
      make_root(2, {keys().root_b, keys().root_c}, {keys().pub_a, keys().pub_c}, 2);
  return r;
}

const std::string& signed_root_v1() {
  static const std::string s =
      must(sign_trust_root(root_v1_body(), {keys().root_a}), "sign fuzz trust root v1");
  return s;
}

const std::string& signed_root_v2() {
  static const std::string s =
      must(sign_trust_root(root_v2_body(), {keys().root_a, keys().root_b, keys().root_c}),
           "sign fuzz trust root v2");
  return s;
}

const TrustPolicy& trust_v1() {
  static const TrustPolicy p =
      must(TrustPolicy::from_initial(signed_root_v1()), "pin fuzz trust root v1");
  return p;
}

const std::string& delta_target_digest() {
  static const std::string d = sha256("sovdev-fuzz-delta/target");
  return d;
}

const std::string& delta_base_digest() {
  static const std::string d = sha256("sovdev-fuzz-delta/base");
  return d;
}

std::string sign(std::string_view type, std::string body, const std::vector<SecretKey>& signers) {
  pb::Signed envelope = make_signed(type, std::move(body));
  for (const auto& k : signers) add_signature(envelope, k);
  return envelope.SerializeAsString();
}

pb::ResourceRecord record(std::string api_version, std::string kind, std::string namespace_,
                          std::string name, std::string json) {
  pb::ResourceRecord r;
  r.set_api_version(std::move(api_version));
  r.set_kind(std::move(kind));
  r.set_namespace_(std::move(namespace_));
  r.set_name(std::move(name));
  r.set_json(std::move(json));
  r.set_source("fuzz.yaml:1");
  return r;
}

BundleInfo default_info() {
  return BundleInfo{"sovdev", "edge", 12, {"amd64", "arm64"}, "edge", "fuzz", kNow - 3600};
}

Bundle make_bundle(const std::vector<pb::ResourceRecord>& records, const BundleInfo& info,
                   PayloadWriter::Options options, const std::vector<SecretKey>& signers) {
  Bundle b;
  auto writer = must(PayloadWriter::create(options,
                                           [&](std::string_view bytes) -> Status {
                                             b.payload.append(bytes);
                                             return {};
                                           }),
                     "fuzz payload writer");
  for (const auto& r : records) {
    auto added = writer.add(r);
    if (!added) fail("fuzz payload writer: " + added.error().message);
  }
  const PayloadSummary summary = must(writer.finish(), "fuzz payload writer");
  b.manifest = make_manifest(info, summary, options);
  auto shape = check_manifest_shape(b.manifest);
  if (!shape) fail("fuzz bundle: " + shape.error().message);
  SignedManifest signed_manifest = sign_manifest(b.manifest, signers);
  b.envelope = std::move(signed_manifest.envelope);
  b.digest = std::move(signed_manifest.digest);
  b.file = encode_bundle_header(static_cast<uint32_t>(b.envelope.size())) + b.envelope + b.payload;
  return b;
}

WireBlob encode_blob(std::string blob, const blobwire::BlobEncoder::Options& options) {
  WireBlob w;
  w.blob = std::move(blob);
  auto encoder = must(blobwire::BlobEncoder::create(options,
                                                    [&](uint32_t, std::string_view chunk) {
                                                      w.wire.append(chunk);
                                                      return Status{};
                                                    }),
                      "fuzz blob encoder");
  auto written = encoder.write(w.blob);
  if (!written) fail("fuzz blob encoder: " + written.error().message);
  w.manifest = must(encoder.finish(), "fuzz blob encoder");
  w.manifest_bytes = w.manifest.SerializeAsString();
  w.listing.set_digest(w.manifest.digest());
  w.listing.set_size(w.manifest.size());
  w.listing.set_media_type(std::string(kMediaLayer));
  w.listing.set_arch("arm64");
  w.listing.set_wire_digest(sha256(w.manifest_bytes));
  w.listing.set_wire_size(w.manifest.wire_size());
  w.listing.set_repository("docker.io/library/postgres");
  w.listing.set_layer(1);
  return w;
}

const WireBlob& image_blob() {
  static const WireBlob w = [] {
    // Runs of letters between random bytes: compresses to about half, so it spans two chunks.
    std::mt19937 rng(22);
    std::string blob(12000, '\0');
    for (size_t i = 0; i < blob.size(); i++) {
      blob[i] = (i / 512) % 2 ? static_cast<char>('a' + i % 7) : static_cast<char>(rng());
    }
    blobwire::BlobEncoder::Options options;
    options.chunk_size = kMinChunkSize;
    options.window_log = 20;
    WireBlob encoded = encode_blob(std::move(blob), options);
    if (encoded.manifest.chunk_sha256_size() < 2) fail("the fuzz image blob fits one chunk");
    return encoded;
  }();
  return w;
}

}  // namespace sovdev::fuzz
