#pragma once

#include <cstdint>
#include <string>

namespace sovdev {

// "512 B", "140.2 KiB", "5.6 MiB": sizes as people read them.
std::string human_bytes(uint64_t bytes);

// "2026-11-27T11:10:05Z"
std::string utc_time(int64_t unix_seconds);

}  // namespace sovdev
