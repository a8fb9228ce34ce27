// Memory bars hold for the real build only. AddressSanitizer keeps freed blocks in a quarantine
// (256 MiB by default) and pads every allocation, so a process that frees what a flood brought
// in still shows it in its RSS. The sanitized stage checks what the sanitizers check; the gcc
// stage checks the memory bars. Header only.
#pragma once

namespace sovdev::testing {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kMemoryBarsApply = false;
#else
inline constexpr bool kMemoryBarsApply = true;
#endif

}  // namespace sovdev::testing
