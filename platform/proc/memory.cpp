#include "platform/proc/memory.hpp"

#include <malloc.h>
#include <sys/resource.h>

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

double cpu_seconds() {
  rusage usage{};
  if (::getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  const auto secs = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return secs(usage.ru_utime) + secs(usage.ru_stime);
}

void tune_allocator() {
#ifdef __GLIBC__
  (void)mallopt(M_ARENA_MAX, 1);
  (void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  // A pull's window of chunks (16 x 64 KiB) comes and goes at the heap's top: a threshold below
  // it gave that memory back and faulted it in again for every burst. Going idle trims anyway
  // (release_free_memory).
  (void)mallopt(M_TRIM_THRESHOLD, 2 * 1024 * 1024);
#endif
}

void release_free_memory() {
#ifdef __GLIBC__
  (void)malloc_trim(0);
#endif
}

}  // namespace sovdev::proc
