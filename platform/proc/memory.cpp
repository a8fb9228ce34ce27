#include "platform/proc/memory.hpp"

#include <cstdio>
#include <cstring>

namespace sovdev::proc {

Memory read_memory() {
  Memory m;
  std::FILE* f = std::fopen("/proc/self/status", "re");
  if (!f) return m;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long kib = 0;
    if (std::sscanf(line, "VmRSS: %llu kB", &kib) == 1) m.rss_bytes = kib * 1024;
    if (std::sscanf(line, "RssAnon: %llu kB", &kib) == 1) m.anon_bytes = kib * 1024;
  }
  std::fclose(f);
  return m;
}

}  // namespace sovdev::proc
