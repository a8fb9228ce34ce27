#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sovdev {

// "512 B", "140.2 KiB", "5.6 MiB": sizes as people read them.
std::string human_bytes(uint64_t bytes);

// "2026-11-27T11:10:05Z"
std::string utc_time(int64_t unix_seconds);

// Text from outside the process (a hub's or API server's error message, a command's stderr)
// made safe for one log line or status field: CR, LF, tabs, ESC and other control bytes become
// visible escapes (\r, \n, \t, \x1b). A remote peer can then neither start a forged log line nor
// move a terminal's cursor. Backslashes stay as they are (a forged "\n" forges nothing), so
// paths and JSON in messages stay readable.
std::string escape_control(std::string_view text);

}  // namespace sovdev
