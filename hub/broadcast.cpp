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

BroadcastStreams::BroadcastStreams(size_t max_streams)
    : max_streams_(max_streams == 0 ? 1 : max_streams) {}

BroadcastStream& BroadcastStreams::get(const std::string& topic, uint32_t chunks) {
  if (auto it = by_topic_.find(topic); it != by_topic_.end()) {
    streams_.splice(streams_.begin(), streams_, it->second);
    if (streams_.front().sent_seq.size() < chunks) streams_.front().sent_seq.resize(chunks, 0);
    return streams_.front();
  }
  BroadcastStream s;
  s.topic = topic;
  do {
    s.id = rng_();
  } while (s.id == 0);  // 0 means "no stream" on the wire
  s.sent_seq.assign(chunks, 0);
  streams_.push_front(std::move(s));
  by_topic_[topic] = streams_.begin();
  while (streams_.size() > max_streams_) {
    by_topic_.erase(streams_.back().topic);
    streams_.pop_back();
  }
  return streams_.front();
}

}  // namespace sovdev::hub
