#include "hub/secrets/store_key.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "bundles/hash.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::hub::secrets {
namespace {

constexpr std::string_view kTag = "sovdev-secret-store";
constexpr std::string_view kIdDomain = "sovdev/v1/secret-store-key-id";
constexpr size_t kMaxFileBytes = 256;

std::string id_of(const seal::SecretBytes& key) {
  ensure_sodium();
  std::string id(seal::kKeyIdSize, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(id.data()), id.size(),
                     reinterpret_cast<const unsigned char*>(kIdDomain.data()), kIdDomain.size(),
                     key.data(), key.size());
  return id;
}

}  // namespace

Status create_store_key(const std::string& path) {
  const seal::SecretBytes key = seal::random_key();
  std::string hex(key.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), key.data(), key.size());
  hex.pop_back();
  std::string line = std::string(kTag) + " " + hex + "\n";
  sodium_memzero(hex.data(), hex.size());
  Status written = fs::write_file_exclusive(path, line, 0600);
  sodium_memzero(line.data(), line.size());
  return written;
}

Expected<StoreKey> load_store_key(const std::string& path) {
  // One descriptor from open to read (fs::read_private_file): what is checked is what is read,
  // and a symlink planted where the key should be is refused.
  auto read = fs::read_private_file(path, kMaxFileBytes, "secret-store key");
  if (!read) {
    if (read.error().code != Errc::not_found) return std::move(read).error();
    return make_error(Errc::io, "secret-store key " + path +
                                    ": not found (make one with `sovdev-hub secret init "
                                    "--store-key " +
                                    path + "`)");
  }
  std::string text = std::move(*read);
  std::istringstream in(text);
  std::string tag, hex, extra;
  in >> tag >> hex;
  const bool more = static_cast<bool>(in >> extra);
  sodium_memzero(text.data(), text.size());
  StoreKey out{seal::SecretBytes(seal::kKeySize), {}};
  size_t written = 0;
  const bool decoded = sodium_hex2bin(out.key.data(), out.key.size(), hex.data(), hex.size(),
                                      nullptr, &written, nullptr) == 0 &&
                       written == seal::kKeySize && hex.size() == seal::kKeySize * 2;
  sodium_memzero(hex.data(), hex.size());
  if (tag != kTag || more || !decoded) {
    return make_error(Errc::invalid, "secret-store key " + path + ": not a key file (one line: " +
                                         std::string(kTag) + " and 64 hex digits)");
  }
  out.id = id_of(out.key);
  return out;
}

Expected<std::string> store_key_path(const std::string& given) {
  if (!given.empty()) return given;
  const char* credentials = std::getenv("CREDENTIALS_DIRECTORY");
  if (credentials != nullptr && *credentials != '\0') {
    return std::string(credentials) + "/secret-store.key";
  }
  return make_error(Errc::usage,
                    "no secret-store key: give --store-key FILE (made once with `sovdev-hub "
                    "secret init --store-key FILE`), or run under systemd with "
                    "LoadCredential=secret-store.key:FILE");
}

}  // namespace sovdev::hub::secrets
