#pragma once

#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "bundles/trust.hpp"
#include "common/error.hpp"

namespace sovdev::hub {

// Refuses a secret key file that others can read, as ssh does: a leaked targets key lets
// anyone sign bundles for the whole fleet.
Expected<SecretKey> load_secret_key(const std::string& path);
Expected<std::vector<SecretKey>> load_secret_keys(const std::vector<std::string>& paths);
Expected<PublicKeyInfo> load_public_key(const std::string& path);
Expected<std::vector<PublicKeyInfo>> load_public_keys(const std::vector<std::string>& paths);

// A trust root file, checked as an agent checks it.
Expected<TrustPolicy> load_trust_file(const std::string& path);

// Loads the secret keys a command signs with and checks them against the trust root's `role`
// (TrustPolicy::check_signers) before anything is signed: `serve` and `publish` sign with online
// keys only, `build` with targets keys only. A legacy (schema 1) root gets a warning on stderr,
// since its publisher keys still hold both roles.
Expected<std::vector<SecretKey>> load_role_keys(const std::vector<std::string>& paths,
                                                const TrustPolicy& trust, TrustRole role,
                                                std::string_view what);

}  // namespace sovdev::hub
