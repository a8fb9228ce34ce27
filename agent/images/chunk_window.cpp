#include "agent/images/chunk_window.hpp"

#include <algorithm>

#include "bundles/messages.hpp"

namespace sovdev::agent::images {

void ChunkWindow::reset(std::vector<uint32_t> missing, uint32_t total) {
  missing_ = std::move(missing);
  in_flight_.clear();
  total_ = total;
}

size_t ChunkWindow::fill(pb::FetchRequest& request, int64_t now_ms) {
  if (!may_send(now_ms)) return 0;
  size_t taken = 0;
  while (in_flight_.size() < settings_.window && taken < missing_.size()) {
    const uint32_t index = missing_[taken++];
    in_flight_[index] = now_ms;
    add_chunk(request, index);
  }
  missing_.erase(missing_.begin(), missing_.begin() + static_cast<std::ptrdiff_t>(taken));
  return taken;
}

bool ChunkWindow::arrived(uint32_t index, int64_t now_ms) {
  if (in_flight_.erase(index) == 0) {
    const auto lacking = std::lower_bound(missing_.begin(), missing_.end(), index);
    if (lacking == missing_.end() || *lacking != index) return false;  // held already
    missing_.erase(lacking);
  }
  last_arrival_ms_ = now_ms;
  return true;
}

void ChunkWindow::again(uint32_t index) {
  const auto at = std::lower_bound(missing_.begin(), missing_.end(), index);
  if (at == missing_.end() || *at != index) missing_.insert(at, index);
}

void ChunkWindow::all_again() {
  for (const auto& [index, when] : in_flight_) again(index);
  in_flight_.clear();
}

bool ChunkWindow::expire(int64_t now_ms) {
  bool expired = false;
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (now_ms - std::max(it->second, last_arrival_ms_) >= settings_.request_timeout_ms) {
      again(it->first);
      it = in_flight_.erase(it);
      expired = true;
    } else {
      ++it;
    }
  }
  if (!expired) return false;
  // Whatever the hub numbered after our position did not come either: forget the position,
  // so the hub sends again instead of counting it as on its way.
  forget_position();
  attempts_++;
  back_off(now_ms);
  return true;
}

void ChunkWindow::follow(const pb::FetchResponse& response, bool listening) {
  const uint64_t seq = response.broadcast_seq();
  if (seq == 0 || !listening) return;
  if (response.broadcast_stream() != stream_) {
    stream_ = response.broadcast_stream();
    seen_ = seq;
    return;
  }
  if (seq > seen_ + 1 && !in_flight_.empty()) all_again();
  seen_ = std::max(seen_, seq);
}

void ChunkWindow::put_position(pb::FetchRequest& request) const {
  request.set_broadcast(true);
  request.set_broadcast_stream(stream_);
  request.set_broadcast_seen(seen_);
}

int64_t ChunkWindow::back_off(int64_t now_ms) {
  not_before_ = now_ms + backoff_ms();
  return not_before_ - now_ms;
}

int64_t ChunkWindow::backoff_ms() {
  const int64_t base = std::min<int64_t>(
      settings_.backoff_max_ms, settings_.backoff_min_ms << std::min<uint32_t>(attempts_, 20));
  std::uniform_int_distribution<int64_t> jitter(0, base / 2);
  return base / 2 + jitter(rng_);
}

uint32_t ChunkWindow::progress_permille() const {
  if (total_ == 0) return 0;
  const uint32_t have = total_ - static_cast<uint32_t>(missing_.size() + in_flight_.size());
  return static_cast<uint32_t>(uint64_t{have} * 1000 / total_);
}

}  // namespace sovdev::agent::images
