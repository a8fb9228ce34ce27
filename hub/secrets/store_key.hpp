// The hub's secret-store key: 32 random bytes in a 0600 file, one line
//   sovdev-secret-store <hex of 32 bytes>
// that seals every secret value (and, later, every epoch key) kept in hub.db. The offline
// commands (`secret`, `agents`, `build`) load it; `serve` never does (docs/design-secrets.md).
#pragma once

#include <string>

#include "bundles/seal.hpp"
#include "common/error.hpp"

namespace sovdev::hub::secrets {

struct StoreKey {
  seal::SecretBytes key;
  std::string id;  // seal::kKeyIdSize bytes naming the key (BLAKE2b with a domain tag)
};

// Makes a new key file (0600), refusing to replace one.
[[nodiscard]] Status create_store_key(const std::string& path);

// Opens the path without following a symlink and checks the open descriptor: a regular file,
// owned by this user (root may read anyone's), no group or other permission bits (as ssh does
// with private keys); then reads at most 256 bytes from it and refuses anything that is not
// one well-formed line.
[[nodiscard]] Expected<StoreKey> load_store_key(const std::string& path);

// The path given, else $CREDENTIALS_DIRECTORY/secret-store.key under systemd
// (LoadCredential=secret-store.key:...), else a usage error that says how to give one.
[[nodiscard]] Expected<std::string> store_key_path(const std::string& given);

}  // namespace sovdev::hub::secrets
