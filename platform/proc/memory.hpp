// What this process costs in memory, from /proc/self/status, for the status it reports.
#pragma once

#include <cstdint>

namespace sovdev::proc {

struct Memory {
  uint64_t rss_bytes = 0;   // VmRSS: all resident pages, shared library pages included
  uint64_t anon_bytes = 0;  // RssAnon: private memory, what the agent itself costs
};

// Zeros where /proc is not available.
Memory read_memory();

}  // namespace sovdev::proc
