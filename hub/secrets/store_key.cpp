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
  // One descriptor from open to read: what is checked is what is read. O_NOFOLLOW refuses a
  // symlink (a link planted where the key should be, pointing at a file someone else controls).
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return make_error(Errc::io, "secret-store key " + path +
                                      ": not found (make one with `sovdev-hub secret init "
                                      "--store-key " +
                                      path + "`)");
    }
    if (err == ELOOP) {
      return make_error(Errc::denied, "secret-store key " + path +
                                          " is a symbolic link: give the key file itself");
    }
    return fs::errno_error("open the secret-store key", path, err);
  }
  struct Closer {
    int held;
    ~Closer() { ::close(held); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fs::errno_error("stat the secret-store key", path, errno);
  if (!S_ISREG(st.st_mode)) {
    return make_error(Errc::denied, "secret-store key " + path + " is not a regular file");
  }
  // Root may read a key another user keeps (an operator's sudo); anyone else only their own.
  const uid_t self = ::geteuid();
  if (self != 0 && st.st_uid != self) {
    return make_error(Errc::denied, "secret-store key " + path + " belongs to uid " +
                                        std::to_string(st.st_uid) + ", not to this user (uid " +
                                        std::to_string(self) +
                                        "): run as its owner, or chown it to this user");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(Errc::denied, "secret-store key " + path +
                                        " may be read or changed by others (mode " + mode +
                                        "): chmod 600 it");
  }
  std::string text(kMaxFileBytes + 1, '\0');
  size_t used = 0;
  while (used < text.size()) {
    const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      sodium_memzero(text.data(), text.size());
      return fs::errno_error("read the secret-store key", path, err);
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > kMaxFileBytes) {
    sodium_memzero(text.data(), text.size());
    return make_error(Errc::invalid, "secret-store key " + path + ": over " +
                                         std::to_string(kMaxFileBytes) + " bytes, not a key file");
  }
  text.resize(used);
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
