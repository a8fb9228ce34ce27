// Makes deltas on a thread of its own, so the serve loop keeps answering every other agent
// while zstd spends seconds on one (a 16 MiB record stream takes ~6 s at level 19).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bundles/delta.hpp"
#include "platform/store/hub_store.hpp"

namespace sovdev::hub {

struct DeltaJob {
  std::string key;  // the cache's key for the pair
  store::HubBundle target;
  store::HubBundle base;
};

struct DeltaResult {
  std::string key;
  store::HubBundle target;
  uint64_t base_version = 0;
  Expected<Delta> delta;
  std::chrono::milliseconds took{0};
};

// Runs on the worker's thread only.
using MakeDelta = std::function<Expected<Delta>(const DeltaJob&)>;

// Reads both record streams from hub.db through a read-only connection of its own, opened on
// the worker's thread at its first job: SQLite connections are not shared between threads,
// and WAL lets it read while the loop writes. Handing the streams over from the loop instead
// would leave their reading and decoding (a large part of the work) on the loop, and every
// queued job would hold two whole streams in memory rather than two digests.
MakeDelta delta_from_database(std::string db_path);

// One thread, at most `max_pending` jobs queued or being made: a fleet asking for many pairs
// at once gets "no delta" beyond that and fetches in full, rather than waiting behind a queue
// that takes minutes to drain. Results wait in a list the serve loop takes them from, so the
// cache, the signing keys and the logger stay on the loop's thread.
class DeltaWorker {
 public:
  explicit DeltaWorker(MakeDelta make, size_t max_pending = 8);
  // Waits for the job being made (zstd cannot be interrupted); queued jobs are dropped.
  ~DeltaWorker();
  DeltaWorker(const DeltaWorker&) = delete;
  DeltaWorker& operator=(const DeltaWorker&) = delete;

  // false when `max_pending` jobs are already queued or being made.
  [[nodiscard]] bool submit(DeltaJob job);
  // The jobs finished since the last call.
  std::vector<DeltaResult> take_finished();
  // Queued or being made.
  size_t pending() const;

 private:
  void run();

  MakeDelta make_;
  const size_t max_pending_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<DeltaJob> jobs_;
  bool busy_ = false;  // a job is being made
  bool stop_ = false;
  std::vector<DeltaResult> finished_;
  std::thread thread_;  // last: starts once everything it uses is in place
};

}  // namespace sovdev::hub
