#include "hub/transfer_slots.hpp"

#include <algorithm>

namespace sovdev::hub {

void TransferSlots::expire(Stack& s, time_point now) {
  std::erase_if(s.holders, [&](const auto& h) {
    return now - h.second.last_seen >= (h.second.finishing ? settings_.finishing : settings_.idle);
  });
  std::erase_if(s.queue, [&](const Waiter& w) { return now - w.last_seen >= settings_.idle; });
}

size_t TransferSlots::tracked() const {
  size_t n = 0;
  for (const auto& [name, s] : stacks_) n += s.holders.size() + s.queue.size();
  return n;
}

bool TransferSlots::request(const std::string& stack, const std::string& agent, time_point now,
                            bool last_chunk) {
  if (settings_.per_stack == 0) return true;
  Stack& s = stacks_[stack];
  expire(s, now);
  if (auto h = s.holders.find(agent); h != s.holders.end()) {
    h->second.last_seen = now;
    h->second.finishing = h->second.finishing || last_chunk;
    return true;
  }
  const size_t free = settings_.per_stack - std::min(settings_.per_stack, s.holders.size());
  auto w = std::find_if(s.queue.begin(), s.queue.end(),
                        [&](const Waiter& x) { return x.agent == agent; });
  // Served when fewer agents wait ahead of it than there are free slots: the ones ahead keep
  // their turn for as long as they keep asking.
  const auto ahead = static_cast<size_t>(w - s.queue.begin());
  if (free > 0 && ahead < free) {
    if (w != s.queue.end()) s.queue.erase(w);
    if (tracked() >= settings_.max_agents) {
      counts_.waited++;
      return false;
    }
    s.holders.emplace(agent, Stack::Holder{now, last_chunk});
    counts_.granted++;
    return true;
  }
  if (w != s.queue.end()) {
    w->last_seen = now;
  } else if (tracked() < settings_.max_agents) {
    s.queue.push_back({agent, now});
  }
  counts_.waited++;
  if (s.holders.empty() && s.queue.empty()) stacks_.erase(stack);
  return false;
}

size_t TransferSlots::in_use() const {
  size_t n = 0;
  for (const auto& [name, s] : stacks_) n += s.holders.size();
  return n;
}

size_t TransferSlots::waiting() const {
  size_t n = 0;
  for (const auto& [name, s] : stacks_) n += s.queue.size();
  return n;
}

size_t TransferSlots::place(const std::string& stack, const std::string& agent) const {
  auto it = stacks_.find(stack);
  if (it == stacks_.end()) return 0;
  const auto& q = it->second.queue;
  for (size_t i = 0; i < q.size(); ++i) {
    if (q[i].agent == agent) return i + 1;
  }
  return 0;
}

}  // namespace sovdev::hub
