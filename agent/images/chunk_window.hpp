// The windowed, resumable request logic of one chunked transfer, as BundleFetch (agent/fetch.hpp)
// runs it for a payload: the chunks still missing, at most `window` in flight, a chunk in flight
// given up on only once nothing has arrived for request_timeout since it was asked for (the
// last_arrival rule), the hub's broadcast stream position, and capped jittered backoff.
// No I/O: the owner sends the requests this fills and stores what arrives.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "sovdev.pb.h"

namespace sovdev::agent::images {

struct WindowSettings {
  uint32_t window = 16;
  int64_t request_timeout_ms = 10000;
  int64_t backoff_min_ms = 1000;
  int64_t backoff_max_ms = 300000;
};

class ChunkWindow {
 public:
  explicit ChunkWindow(WindowSettings settings) : settings_(settings) {}

  // Starts over with these chunks missing (ascending) out of `total`.
  void reset(std::vector<uint32_t> missing, uint32_t total);
  // Adds to `request` the lowest missing chunks until `window` are in flight, unless a backoff
  // holds requests back. Returns how many were added.
  size_t fill(pb::FetchRequest& request, int64_t now_ms);
  // A chunk arrived (asked for by us or, on the broadcast topic, by another agent): true when
  // it is still lacking, and it leaves the window; false for a late duplicate.
  bool arrived(uint32_t index, int64_t now_ms);
  // Missing again: it failed its check, or was not stored.
  void again(uint32_t index);
  // Everything in flight is missing again (a reconnect, a gap in the broadcast numbers).
  void all_again();
  // Gives up on requests unanswered for request_timeout (since asked and since the last
  // arrival): true when some were, and then a backoff starts and the position is forgotten.
  bool expire(int64_t now_ms);
  // Follows the hub's numbering of broadcast chunks; a gap means some never reached us.
  void follow(const pb::FetchResponse& response, bool listening);
  void set_position(uint64_t stream, uint64_t seen) {
    stream_ = stream;
    seen_ = seen;
  }
  void forget_position() { set_position(0, 0); }
  // The position as a broadcast request carries it.
  void put_position(pb::FetchRequest& request) const;

  // Backoff: the next request waits (sending failed, or the hub was silent).
  int64_t back_off(int64_t now_ms);
  // The hub did not answer in time: the backoff grows with each such silence in a row.
  int64_t silent(int64_t now_ms) {
    attempts_++;
    return back_off(now_ms);
  }
  void answered() { attempts_ = 0; }
  void clear_backoff() {
    attempts_ = 0;
    not_before_ = 0;
  }
  bool may_send(int64_t now_ms) const { return now_ms >= not_before_; }

  bool complete() const { return missing_.empty() && in_flight_.empty(); }
  uint32_t total() const { return total_; }
  uint32_t progress_permille() const;

 private:
  int64_t backoff_ms();

  WindowSettings settings_;
  std::vector<uint32_t> missing_;          // ascending, not yet received
  std::map<uint32_t, int64_t> in_flight_;  // index → when asked
  int64_t last_arrival_ms_ = 0;
  uint32_t total_ = 0;
  uint32_t attempts_ = 0;   // consecutive timeouts
  int64_t not_before_ = 0;  // no request before this time
  uint64_t stream_ = 0;     // the broadcast stream followed, 0 = position unknown
  uint64_t seen_ = 0;       // its highest number handled
  std::mt19937 rng_{std::random_device{}()};
};

}  // namespace sovdev::agent::images
