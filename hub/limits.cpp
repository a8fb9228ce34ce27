#include "hub/limits.hpp"

#include <algorithm>

namespace sovdev::hub {

SteadyClock real_steady_clock() {
  return [] { return std::chrono::steady_clock::now(); };
}

void TokenBucket::refill(std::chrono::steady_clock::time_point now) {
  if (now <= last_) return;
  const double seconds = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + seconds * rate_);
  last_ = now;
}

bool TokenBucket::take(double n, std::chrono::steady_clock::time_point now) {
  refill(now);
  if (tokens_ < n) return false;
  tokens_ -= n;
  return true;
}

AgentLimits::AgentLimits(AgentLimitSettings settings, SteadyClock clock)
    : settings_(settings), clock_(std::move(clock)) {}

AgentLimits::Agent& AgentLimits::find(const std::string& agent,
                                      std::chrono::steady_clock::time_point now) {
  if (auto it = agents_.find(agent); it != agents_.end()) {
    order_.splice(order_.begin(), order_, it->second.lru);
    return it->second;
  }
  // Forgetting an agent gives it fresh budgets: only an idle one is forgotten in practice,
  // since max_agents is far above the agents syncing at one moment.
  while (agents_.size() >= std::max<size_t>(settings_.max_agents, 1)) {
    agents_.erase(order_.back());
    order_.pop_back();
  }
  order_.push_front(agent);
  const auto d = [](uint64_t n) { return static_cast<double>(n); };
  Agent fresh{TokenBucket(d(settings_.requests_per_second), d(settings_.request_burst), now),
              TokenBucket(d(settings_.bytes_per_second), d(settings_.byte_burst), now),
              {},
              order_.begin()};
  return agents_.emplace(agent, std::move(fresh)).first->second;
}

Verdict AgentLimits::request(const std::string& agent) {
  const auto now = clock_();
  if (find(agent, now).requests.take(1, now)) return Verdict::ok;
  counts_.requests_throttled++;
  return Verdict::throttled;
}

Verdict AgentLimits::chunk(const std::string& agent, const std::string& object, uint32_t index,
                           uint32_t chunk_count, uint64_t bytes) {
  const auto now = clock_();
  Agent& a = find(agent, now);
  if (index >= chunk_count) {
    counts_.chunks_refused++;
    return Verdict::refused;
  }
  std::erase_if(a.served, [&](const Served& s) { return now - s.since >= settings_.serve_window; });
  auto served = std::find_if(a.served.begin(), a.served.end(),
                             [&](const Served& s) { return s.object == object; });
  if (served == a.served.end()) {
    if (a.served.size() >= settings_.objects_per_agent) {
      counts_.chunks_refused++;
      return Verdict::refused;
    }
    a.served.push_back({object, now, std::vector<uint8_t>(chunk_count, 0)});
    served = a.served.end() - 1;
  }
  if (served->count.size() < chunk_count) served->count.resize(chunk_count, 0);
  uint8_t& count = served->count[index];
  if (count >= settings_.serves_per_chunk) {
    counts_.chunks_refused++;
    return Verdict::refused;
  }
  if (!a.bytes.take(static_cast<double>(bytes), now)) {
    counts_.chunks_throttled++;
    return Verdict::throttled;
  }
  if (count < 255) count++;
  return Verdict::ok;
}

}  // namespace sovdev::hub
