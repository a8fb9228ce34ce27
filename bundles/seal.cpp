#include "bundles/seal.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <sstream>
#include <utility>

#include "bundles/hash.hpp"
#include "bundles/keys.hpp"

namespace sovdev::seal {
namespace {

constexpr std::string_view kSecretTag = "sovdev-x25519-secret";
constexpr std::string_view kPublicTag = "sovdev-x25519-public";
constexpr std::string_view kEpochIdDomain = "sovdev/v1/epoch-key-id";

static_assert(kKeySize == crypto_box_PUBLICKEYBYTES && kKeySize == crypto_box_SECRETKEYBYTES);
static_assert(kKeySize == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(kNonceSize == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(kTagSize == crypto_aead_xchacha20poly1305_ietf_ABYTES);
static_assert(kBoxOverhead == crypto_box_SEALBYTES);

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

void append_length(std::string& out, uint64_t n) {
  for (int i = 0; i < 8; i++) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
}

struct KeyLine {
  std::string tag, name, hex;
};

// "<tag> <name> <hex>" and nothing after it.
Expected<KeyLine> split_line(std::string_view text) {
  std::istringstream in{std::string(text)};
  KeyLine line;
  std::string extra;
  in >> line.tag >> line.name >> line.hex;
  if (in >> extra) return make_error(Errc::invalid, "unexpected text after the key");
  return line;
}

Expected<KeyLine> parse_line(std::string_view text, std::string_view tag) {
  SOVDEV_ASSIGN(KeyLine line, split_line(text));
  if (line.tag != tag) {
    if (line.tag == kSecretTag || line.tag == kPublicTag) {
      return make_error(Errc::invalid,
                        "this is a " + line.tag + " key file, expected " + std::string(tag));
    }
    return make_error(Errc::invalid, "not a sovdev agent key file (expected a line starting with " +
                                         std::string(tag) + ")");
  }
  if (!valid_key_name(line.name)) return make_error(Errc::invalid, "bad key name");
  if (line.hex.size() != kKeySize * 2) {
    return make_error(Errc::invalid, "key is not " + std::to_string(kKeySize * 2) + " hex digits");
  }
  return line;
}

// Hex into locked memory: the secret half never passes through an ordinary string.
Expected<SecretBytes> decode_hex(const std::string& hex) {
  SecretBytes out(kKeySize);
  size_t written = 0;
  if (sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &written, nullptr) !=
          0 ||
      written != kKeySize) {
    return make_error(Errc::invalid, "key is not " + std::to_string(kKeySize * 2) + " hex digits");
  }
  return out;
}

std::string public_of(const SecretBytes& secret) {
  std::string pk(kKeySize, '\0');
  crypto_scalarmult_base(reinterpret_cast<unsigned char*>(pk.data()), secret.data());
  return pk;
}

}  // namespace

SecretBytes::SecretBytes(size_t size) : size_(size) {
  ensure_sodium();
  if (size == 0) return;
  data_ = static_cast<unsigned char*>(sodium_malloc(size));
  if (data_ == nullptr) throw std::bad_alloc();
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) sodium_free(data_);  // zeroes before it frees
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SecretBytes::~SecretBytes() {
  if (data_ != nullptr) sodium_free(data_);
}

SecretBytes SecretBytes::copy_of(std::string_view bytes) {
  SecretBytes out(bytes.size());
  if (!bytes.empty()) std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(out.data()));
  return out;
}

SecretBytes random_key() {
  SecretBytes key(kKeySize);
  randombytes_buf(key.data(), key.size());
  return key;
}

AgentKey generate_agent_key(std::string_view name) {
  AgentKey key{std::string(name), std::string(kKeySize, '\0'), SecretBytes(kKeySize)};
  crypto_box_keypair(reinterpret_cast<unsigned char*>(key.public_key.data()), key.secret.data());
  return key;
}

std::string encode_agent_secret(const AgentKey& key) {
  std::string hex(kKeySize * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), key.secret.data(), key.secret.size());
  hex.pop_back();
  std::string line = std::string(kSecretTag) + " " + key.name + " " + hex + "\n";
  sodium_memzero(hex.data(), hex.size());
  return line;
}

std::string encode_agent_public(const AgentKey& key) {
  std::string hex(kKeySize * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), bytes_of(key.public_key), key.public_key.size());
  hex.pop_back();
  return std::string(kPublicTag) + " " + key.name + " " + hex + "\n";
}

Expected<AgentKey> parse_agent_secret(std::string_view text) {
  ensure_sodium();
  SOVDEV_ASSIGN(KeyLine line, parse_line(text, kSecretTag));
  auto secret = decode_hex(line.hex);
  sodium_memzero(line.hex.data(), line.hex.size());
  if (!secret) return std::move(secret).error();
  AgentKey key{std::move(line.name), public_of(*secret), std::move(*secret)};
  return key;
}

Expected<AgentKey> parse_agent_public(std::string_view text) {
  ensure_sodium();
  SOVDEV_ASSIGN(KeyLine line, parse_line(text, kPublicTag));
  SOVDEV_ASSIGN(SecretBytes raw, decode_hex(line.hex));
  return AgentKey{std::move(line.name), std::string(raw.view()), SecretBytes()};
}

std::string epoch_key_id(std::string_view channel, uint64_t epoch, const SecretBytes& key) {
  ensure_sodium();
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, kKeyIdSize);
  std::string head = associated_data(kEpochIdDomain, {channel});
  append_length(head, epoch);
  crypto_generichash_update(&state, bytes_of(head), head.size());
  crypto_generichash_update(&state, key.data(), key.size());
  std::string id(kKeyIdSize, '\0');
  crypto_generichash_final(&state, reinterpret_cast<unsigned char*>(id.data()), id.size());
  return id;
}

std::string seal_to(std::string_view agent_public_key, const SecretBytes& key) {
  ensure_sodium();
  if (agent_public_key.size() != kKeySize) std::abort();  // callers hold parsed keys only
  std::string sealed(kBoxOverhead + key.size(), '\0');
  crypto_box_seal(reinterpret_cast<unsigned char*>(sealed.data()), key.data(), key.size(),
                  bytes_of(agent_public_key));
  return sealed;
}

Expected<SecretBytes> open_sealed(std::string_view sealed, const AgentKey& self) {
  ensure_sodium();
  if (self.secret.size() != kKeySize || self.public_key.size() != kKeySize) {
    return make_error(Errc::usage, "no agent secret key to open a sealed key with");
  }
  if (sealed.size() != kBoxOverhead + kKeySize) {
    return make_error(Errc::invalid, "a sealed key is " + std::to_string(kBoxOverhead + kKeySize) +
                                         " bytes, got " + std::to_string(sealed.size()));
  }
  SecretBytes key(kKeySize);
  if (crypto_box_seal_open(key.data(), bytes_of(sealed), sealed.size(), bytes_of(self.public_key),
                           self.secret.data()) != 0) {
    return make_error(Errc::signature,
                      "the sealed key does not open with this agent's key (sealed to another "
                      "agent, or changed)");
  }
  return key;
}

std::string associated_data(std::string_view domain,
                            std::initializer_list<std::string_view> fields) {
  std::string out(domain);
  out.push_back('\0');
  for (const auto field : fields) {
    append_length(out, field.size());
    out.append(field);
  }
  return out;
}

std::string encrypt(const SecretBytes& key, std::string_view plaintext,
                    std::string_view associated) {
  ensure_sodium();
  if (key.size() != kKeySize) std::abort();  // callers hold keys this module made or parsed
  std::string out(kNonceSize + plaintext.size() + kTagSize, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(nonce, kNonceSize);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + kNonceSize, &written, bytes_of(plaintext),
                                             plaintext.size(), bytes_of(associated),
                                             associated.size(), nullptr, nonce, key.data());
  out.resize(kNonceSize + written);
  return out;
}

Expected<SecretBytes> decrypt(const SecretBytes& key, std::string_view sealed,
                              std::string_view associated, size_t max_plaintext) {
  ensure_sodium();
  if (key.size() != kKeySize) return make_error(Errc::usage, "no key to open a sealed value with");
  if (sealed.size() < kNonceSize + kTagSize) {
    return make_error(Errc::invalid, "a sealed value is at least " +
                                         std::to_string(kNonceSize + kTagSize) + " bytes, got " +
                                         std::to_string(sealed.size()));
  }
  const size_t size = sealed.size() - kNonceSize - kTagSize;
  if (size > max_plaintext) {
    return make_error(Errc::too_large, "a sealed value of " + std::to_string(size) +
                                           " bytes is over the limit of " +
                                           std::to_string(max_plaintext));
  }
  SecretBytes plain(size);
  unsigned long long written = 0;
  const auto* nonce = bytes_of(sealed);
  unsigned char empty = 0;  // sodium_malloc(0) is not called: a zero-size value still decrypts
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(size > 0 ? plain.data() : &empty, &written,
                                                 nullptr, nonce + kNonceSize,
                                                 sealed.size() - kNonceSize, bytes_of(associated),
                                                 associated.size(), nonce, key.data()) != 0) {
    return make_error(Errc::signature,
                      "a sealed value does not open: another key, another place, or changed bytes");
  }
  return plain;
}

}  // namespace sovdev::seal
