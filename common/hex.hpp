#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sovdev {

// Lower-case hex of raw bytes (bytes are held in std::string, as protobuf does).
std::string to_hex(std::string_view bytes);
// nullopt when `hex` has an odd length or a non-hex character.
std::optional<std::string> from_hex(std::string_view hex);

}  // namespace sovdev
