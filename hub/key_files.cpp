#include "hub/key_files.hpp"

#include <sys/stat.h>

#include <cstdio>

#include "platform/fs/files.hpp"

namespace sovdev::hub {

Expected<SecretKey> load_secret_key(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fs::errno_error("open key", path, errno);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return make_error(Errc::invalid, "secret key " + path + " has permissions " + mode +
                                         ": others can read it; run chmod 600 " + path);
  }
  SOVDEV_ASSIGN(std::string text, fs::read_file(path, 4096));
  auto key = parse_secret_key(text);
  if (!key) return std::move(key).error().context(path);
  return key;
}

Expected<std::vector<SecretKey>> load_secret_keys(const std::vector<std::string>& paths) {
  std::vector<SecretKey> keys;
  for (const auto& p : paths) {
    SOVDEV_ASSIGN(SecretKey k, load_secret_key(p));
    keys.push_back(std::move(k));
  }
  return keys;
}

Expected<PublicKeyInfo> load_public_key(const std::string& path) {
  SOVDEV_ASSIGN(std::string text, fs::read_file(path, 4096));
  auto key = parse_public_key(text);
  if (!key) return std::move(key).error().context(path);
  return key;
}

Expected<std::vector<PublicKeyInfo>> load_public_keys(const std::vector<std::string>& paths) {
  std::vector<PublicKeyInfo> keys;
  for (const auto& p : paths) {
    SOVDEV_ASSIGN(PublicKeyInfo k, load_public_key(p));
    keys.push_back(std::move(k));
  }
  return keys;
}

Expected<TrustPolicy> load_trust_file(const std::string& path) {
  SOVDEV_ASSIGN(std::string bytes, fs::read_file(path, kMaxTrustRootBytes));
  auto policy = TrustPolicy::from_initial(bytes);
  if (!policy) return std::move(policy).error().context(path);
  return policy;
}

Expected<std::vector<SecretKey>> load_role_keys(const std::vector<std::string>& paths,
                                                const TrustPolicy& trust, TrustRole role,
                                                std::string_view what) {
  SOVDEV_ASSIGN(auto keys, load_secret_keys(paths));
  SOVDEV_TRY(trust.check_signers(role, keys, what));
  if (trust.legacy()) {
    std::fprintf(stderr,
                 "warning: trust root v%llu is a legacy root: its publisher keys sign bundles as "
                 "well as catalogs, so a stolen hub could sign content; rotate to targets and "
                 "online keys (sovdev-hub trust rotate --targets ... --online ...)\n",
                 static_cast<unsigned long long>(trust.version()));
  }
  return keys;
}

}  // namespace sovdev::hub
