// The hub's broadcast streams: one per object being fetched (a bundle's payload, or a delta),
// published on <prefix>/blob/<object hex> for every agent fetching it at once. A chunk goes
// out there once however many agents ask for it while it is on its way, so 200 agents pulling
// one bundle cost the hub (and the broker's intake) about one copy instead of 200. A chunk is
// broadcast once per stream; whoever asks for it later gets it on its own data topic. A stream
// nobody has asked about for a while starts afresh, so the next fleet to pull the object (a wave
// of agents back online, a batch of new boxes) gets each chunk broadcast again.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace sovdev::hub {

// The topic agents listen on while they fetch `object` (a manifest digest, or a delta's
// SHA-256). agent/fetch.cpp names it the same way.
std::string blob_topic(const std::string& prefix, std::string_view object);

struct BroadcastStream {
  std::string topic;
  uint64_t id = 0;        // random, so a position from another replica or run never matches
  uint64_t last_seq = 0;  // numbers 1, 2, ... in publishing order
  std::vector<uint64_t> sent_seq;  // chunk index → number it last went out with (0: never)
  int64_t last_used = 0;           // when it was last asked about (the caller's clock)

  // Whether chunk `index` was published after the position an agent reports (stream `id`,
  // everything up to `seen` handled): then it is still on its way to that agent, which
  // listened before it went out, and need not go again. A chunk sent at or before `seen` and
  // asked for again was lost (a full queue, QoS 0): it goes again.
  bool on_its_way(uint32_t index, uint64_t stream, uint64_t seen) const;
  // Whether chunk `index` has gone out on this stream before. Asked for again (by an agent
  // that started listening after it, or lost it), it goes to the asker alone: everyone else
  // still listening had it, and on a metered edge link a copy nobody needs is not free.
  bool sent(uint32_t index) const { return index < sent_seq.size() && sent_seq[index] != 0; }
};

class BroadcastStreams {
 public:
  // `idle`: in the unit of the callers' `now` (the hub's: seconds).
  explicit BroadcastStreams(size_t max_streams = 64, int64_t idle = 30);

  // The stream of `topic` for an object of `chunks` chunks at time `now`, made on first use and
  // made again (a new id, nothing sent) when it was last asked about `idle` or more before. The
  // least recently used stream is forgotten past max_streams: its agents just get chunks again.
  BroadcastStream& get(const std::string& topic, uint32_t chunks, int64_t now);
  size_t size() const { return streams_.size(); }

 private:
  uint64_t new_id();

  size_t max_streams_;
  int64_t idle_;
  std::list<BroadcastStream> streams_;  // most recently used first
  std::map<std::string, std::list<BroadcastStream>::iterator> by_topic_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace sovdev::hub
