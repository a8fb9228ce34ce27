#pragma once

#include <string>
#include <vector>

#include "bundles/keys.hpp"
#include "common/error.hpp"

namespace sovdev::hub {

// Refuses a secret key file that others can read, as ssh does: a leaked publisher key lets
// anyone sign bundles for the whole fleet.
Expected<SecretKey> load_secret_key(const std::string& path);
Expected<std::vector<SecretKey>> load_secret_keys(const std::vector<std::string>& paths);
Expected<PublicKeyInfo> load_public_key(const std::string& path);
Expected<std::vector<PublicKeyInfo>> load_public_keys(const std::vector<std::string>& paths);

}  // namespace sovdev::hub
