// OCI content digests. Only sha256 is accepted: every registry and layout we read uses it, and
// a second algorithm would be a second way for a digest to name bytes we never checked.
#pragma once

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace sovdev::oci {

// "sha256:<64 lowercase hex>" -> the raw 32 bytes; anything else is Errc::invalid.
Expected<std::string> parse_digest(std::string_view text);
// Raw 32 bytes -> "sha256:<hex>".
std::string format_digest(std::string_view raw);

}  // namespace sovdev::oci
