#include "hub/broadcast.hpp"

#include "common/hex.hpp"

namespace sovdev::hub {

std::string blob_topic(const std::string& prefix, std::string_view object) {
  return prefix + "/blob/" + to_hex(object);
}

bool BroadcastStream::on_its_way(uint32_t index, uint64_t stream, uint64_t seen) const {
  if (stream != id || index >= sent_seq.size()) return false;
  return sent_seq[index] > seen;
}

BroadcastStreams::BroadcastStreams(size_t max_streams, int64_t idle)
    : max_streams_(max_streams == 0 ? 1 : max_streams), idle_(idle) {}

uint64_t BroadcastStreams::new_id() {
  uint64_t id = 0;
  while (id == 0) id = rng_();  // 0 means "no stream" on the wire
  return id;
}

BroadcastStream& BroadcastStreams::get(const std::string& topic, uint32_t chunks, int64_t now) {
  if (auto it = by_topic_.find(topic); it != by_topic_.end()) {
    streams_.splice(streams_.begin(), streams_, it->second);
    BroadcastStream& s = streams_.front();
    if (now - s.last_used >= idle_) {
      // The fleet that pulled it is done: positions agents still report are of the old id.
      s.id = new_id();
      s.last_seq = 0;
      s.sent_seq.assign(chunks, 0);
    }
    if (s.sent_seq.size() < chunks) s.sent_seq.resize(chunks, 0);
    s.last_used = now;
    return s;
  }
  BroadcastStream s;
  s.topic = topic;
  s.id = new_id();
  s.sent_seq.assign(chunks, 0);
  s.last_used = now;
  streams_.push_front(std::move(s));
  by_topic_[topic] = streams_.begin();
  while (streams_.size() > max_streams_) {
    by_topic_.erase(streams_.back().topic);
    streams_.pop_back();
  }
  return streams_.front();
}

}  // namespace sovdev::hub
