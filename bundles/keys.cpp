#include "bundles/keys.hpp"

#include <algorithm>
#include <set>
#include <sstream>
#include <vector>

#include "bundles/hash.hpp"
#include "common/hex.hpp"

namespace sovdev {
namespace {

constexpr std::string_view kSecretTag = "sovdev-ed25519-secret";
constexpr std::string_view kPublicTag = "sovdev-ed25519-public";

const unsigned char* bytes_of(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

struct KeyLine {
  std::string name;
  std::string key;
};

Expected<KeyLine> parse_key_line(std::string_view text, std::string_view tag, size_t key_size) {
  std::istringstream in{std::string(text)};
  std::string got_tag, name, hex, extra;
  in >> got_tag >> name >> hex;
  if (got_tag != tag) {
    if (got_tag == kSecretTag || got_tag == kPublicTag) {
      return make_error(Errc::invalid,
                        "this is a " + got_tag + " key file, expected " + std::string(tag));
    }
    return make_error(Errc::invalid, "not a sovdev key file (expected a line starting with " +
                                         std::string(tag) + ")");
  }
  if (in >> extra) return make_error(Errc::invalid, "unexpected text after the key");
  auto raw = from_hex(hex);
  if (!raw || raw->size() != key_size) {
    return make_error(Errc::invalid, "key is not " + std::to_string(key_size * 2) + " hex digits");
  }
  return KeyLine{name, std::move(*raw)};
}

}  // namespace

bool valid_key_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

SecretKey generate_key(std::string_view name) {
  ensure_sodium();
  SecretKey key{std::string(name), std::string(crypto_sign_SECRETKEYBYTES, '\0')};
  std::string pk(crypto_sign_PUBLICKEYBYTES, '\0');
  crypto_sign_keypair(reinterpret_cast<unsigned char*>(pk.data()),
                      reinterpret_cast<unsigned char*>(key.secret.data()));
  return key;
}

std::string key_id(std::string_view public_key) {
  return sha256(public_key);
}

std::string encode_secret_key(const SecretKey& key) {
  return std::string(kSecretTag) + " " + key.name + " " + to_hex(key.secret) + "\n";
}

std::string encode_public_key(const PublicKeyInfo& key) {
  return std::string(kPublicTag) + " " + key.name + " " + to_hex(key.public_key) + "\n";
}

Expected<SecretKey> parse_secret_key(std::string_view text) {
  SOVDEV_ASSIGN(KeyLine line, parse_key_line(text, kSecretTag, crypto_sign_SECRETKEYBYTES));
  if (!valid_key_name(line.name)) return make_error(Errc::invalid, "bad key name");
  // The secret embeds its public half; a file whose halves disagree was edited or damaged.
  ensure_sodium();
  std::string derived(crypto_sign_PUBLICKEYBYTES, '\0');
  crypto_sign_ed25519_sk_to_pk(reinterpret_cast<unsigned char*>(derived.data()),
                               bytes_of(line.key));
  std::string seed(crypto_sign_SEEDBYTES, '\0');
  crypto_sign_ed25519_sk_to_seed(reinterpret_cast<unsigned char*>(seed.data()), bytes_of(line.key));
  std::string pk(crypto_sign_PUBLICKEYBYTES, '\0'), sk(crypto_sign_SECRETKEYBYTES, '\0');
  crypto_sign_seed_keypair(reinterpret_cast<unsigned char*>(pk.data()),
                           reinterpret_cast<unsigned char*>(sk.data()), bytes_of(seed));
  sodium_memzero(seed.data(), seed.size());
  if (pk != derived) return make_error(Errc::invalid, "secret key is damaged (halves disagree)");
  return SecretKey{line.name, std::move(line.key)};
}

Expected<PublicKeyInfo> parse_public_key(std::string_view text) {
  SOVDEV_ASSIGN(KeyLine line, parse_key_line(text, kPublicTag, crypto_sign_PUBLICKEYBYTES));
  if (!valid_key_name(line.name)) return make_error(Errc::invalid, "bad key name");
  return PublicKeyInfo{line.name, std::move(line.key)};
}

std::string signing_input(std::string_view type, std::string_view body) {
  std::string out = "sovdev/v1/";
  out.append(type);
  out.push_back('\0');
  out.append(body);
  return out;
}

pb::Signed make_signed(std::string_view type, std::string body) {
  pb::Signed envelope;
  envelope.set_schema(1);
  envelope.set_type(std::string(type));
  envelope.set_body(std::move(body));
  return envelope;
}

void add_signature(pb::Signed& envelope, const SecretKey& key) {
  ensure_sodium();
  const std::string input = signing_input(envelope.type(), envelope.body());
  std::string sig(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(sig.data()), nullptr, bytes_of(input),
                       input.size(), bytes_of(key.secret));
  auto* s = envelope.add_signatures();
  s->set_key_id(key_id(key.public_key()));
  s->set_signature(std::move(sig));
}

Status verify_threshold(const pb::Signed& envelope, std::string_view type, const pb::Role& role,
                        const KeyRing& keys, std::string_view what, std::string_view role_name) {
  const std::string role_keys =
      role_name.empty() ? std::string("keys of the role") : std::string(role_name) + " keys";
  if (envelope.type() != type) {
    return make_error(Errc::signature, std::string(what) + " is a '" + envelope.type() +
                                           "' object, expected '" + std::string(type) + "'");
  }
  if (envelope.signatures_size() == 0) {
    return make_error(Errc::signature, std::string(what) + " has no signatures (" +
                                           std::to_string(role.threshold()) + " of the " +
                                           role_keys + " must sign it)");
  }
  if (role.threshold() == 0) {
    return make_error(Errc::signature, std::string(what) + ": role threshold is 0");
  }
  ensure_sodium();
  const std::set<std::string> in_role(role.key_ids().begin(), role.key_ids().end());
  const std::string input = signing_input(type, envelope.body());
  std::set<std::string> valid;
  std::vector<std::string> problems;
  for (const auto& sig : envelope.signatures()) {
    const std::string who = "key " + short_hex(sig.key_id());
    if (!in_role.count(sig.key_id())) {
      problems.push_back(who + ": unknown key (not one of the " + role_keys + ")");
      continue;
    }
    auto key = keys.find(sig.key_id());
    if (key == keys.end() || key->second.size() != crypto_sign_PUBLICKEYBYTES) {
      problems.push_back(who + ": no public key for it in the trust root");
      continue;
    }
    if (sig.signature().size() != crypto_sign_BYTES ||
        crypto_sign_verify_detached(bytes_of(sig.signature()), bytes_of(input), input.size(),
                                    bytes_of(key->second)) != 0) {
      problems.push_back(who + ": signature does not verify");
      continue;
    }
    if (!valid.insert(sig.key_id()).second) {
      problems.push_back(who + ": duplicate signature counted once");
    }
  }
  if (valid.size() >= role.threshold()) return {};
  std::string msg =
      std::string(what) + ": signature threshold not met: " + std::to_string(valid.size()) +
      " of " + std::to_string(role.threshold()) + " required valid signature(s) by " + role_keys;
  for (const auto& p : problems) msg += "; " + p;
  return make_error(Errc::signature, msg);
}

Expected<pb::Signed> parse_signed(std::string_view bytes, std::string_view type, size_t max_size) {
  if (bytes.size() > max_size) {
    return make_error(Errc::too_large, "signed " + std::string(type) + " is " +
                                           std::to_string(bytes.size()) + " bytes, over the " +
                                           std::to_string(max_size) + "-byte limit");
  }
  pb::Signed envelope;
  if (!envelope.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return make_error(Errc::invalid, "signed " + std::string(type) + " is not a valid envelope");
  }
  if (envelope.type() != type) {
    return make_error(Errc::signature, "expected a signed '" + std::string(type) + "', got '" +
                                           envelope.type() + "'");
  }
  return envelope;
}

}  // namespace sovdev
