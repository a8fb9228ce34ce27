// What this process costs in memory (from /proc/self/status) and CPU, for what it reports.
#pragma once

#include <cstdint>

namespace sovdev::proc {

struct Memory {
  uint64_t rss_bytes = 0;   // VmRSS: all resident pages, shared library pages included
  uint64_t anon_bytes = 0;  // RssAnon: private memory, what the agent itself costs
};

// Zeros where /proc is not available.
Memory read_memory();

// User + system CPU time of every thread of this process so far, in seconds (getrusage).
double cpu_seconds();

// For a small long-running process: one malloc arena instead of one per thread (Paho's
// threads each got their own, holding freed message buffers), and a fixed mmap threshold so
// large buffers (chunks, zstd windows) go back to the system when freed instead of raising
// glibc's dynamic thresholds and staying on the heap. Call first thing in main().
void tune_allocator();

// Returns the heap's free pages to the system (glibc malloc_trim): after a burst of work,
// before a long idle period.
void release_free_memory();

}  // namespace sovdev::proc
