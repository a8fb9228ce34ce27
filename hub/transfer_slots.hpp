// The floor under rollouts' pacing (issue #21): a hub serves full transfers (a bundle's own
// chunks, not a delta's) of one stack to at most `per_stack` agents at once, and the others
// wait their turn in the order they first asked. Waves and maintenance windows are the pacing an
// operator sets; this keeps a whole wave (or a fleet back from an outage) from asking at once
// for a link's worth of bundles each.
//
// A waiting agent gets no answer: it asks again after its request timeout, as after a lost
// message (agents keep asking with a capped backoff, never give up), and is served when its
// turn has come. Broadcast chunks still reach it meanwhile: what a slot holder asks for is
// published once for every listener, so a waiting agent often finds most chunks already held.
//
// An agent holds its slot while it keeps asking; after `idle` without a request the slot is
// free again (agents crash or go offline without saying so), and after `finishing` once it has
// asked for the transfer's last chunk (agents ask in order: it is done, or nearly). A waiting agent
// that does not ask again within `idle` loses its place. Memory is bounded in bytes: at most
// `max_agents` agents are tracked (slot holders and waiters of every stack together), each
// with its id (≤ 64 bytes, bundles/messages.hpp) and stack name; past it a new agent waits
// without a place, asking again until one frees up. Runs on the serve loop's thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>

namespace sovdev::hub {

struct TransferSlotSettings {
  size_t per_stack = 32;  // 0: no bound
  // Above the agents' request timeout (10 s by default): an agent whose request was lost asks
  // again before its slot is given away.
  std::chrono::seconds idle{15};
  std::chrono::seconds finishing{2};
  size_t max_agents = 4096;
};

struct TransferSlotCounts {
  uint64_t granted = 0;  // transfers started (a slot taken)
  uint64_t waited = 0;   // chunk requests left unanswered to wait for a slot
};

class TransferSlots {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  explicit TransferSlots(TransferSlotSettings settings) : settings_(settings) {}

  // A request for chunks of a full transfer of `stack` by `agent`: whether to serve it now.
  // `last_chunk`: the request asks for the transfer's last chunk.
  bool request(const std::string& stack, const std::string& agent, time_point now,
               bool last_chunk = false);

  // Slots in use and agents waiting, over every stack (for /metrics).
  size_t in_use() const;
  size_t waiting() const;
  // The agent's place in its stack's queue, 1 first; 0 when it is not waiting.
  size_t place(const std::string& stack, const std::string& agent) const;
  const TransferSlotCounts& counts() const { return counts_; }

 private:
  struct Waiter {
    std::string agent;
    time_point last_seen;
  };
  struct Stack {
    struct Holder {
      time_point last_seen;
      bool finishing = false;
    };
    std::map<std::string, Holder> holders;
    std::deque<Waiter> queue;  // in the order they first asked
  };
  // Frees the slots and places of agents idle too long.
  void expire(Stack& s, time_point now);
  size_t tracked() const;

  TransferSlotSettings settings_;
  std::map<std::string, Stack> stacks_;
  TransferSlotCounts counts_;
};

}  // namespace sovdev::hub
