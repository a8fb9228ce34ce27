// The receiving side's bounds: the queue's byte limit, and the topic filter matching of the
// per-topic size limits applied on Paho's thread.
#include <cstdint>

#include "platform/mqtt/client.hpp"

namespace sovdev::mqtt {

size_t queue_byte_limit(const Options& options) {
  constexpr size_t kPerMessage = 256 * 1024;
  if (options.queue_bytes == SIZE_MAX) return 0;  // EventQueue: no limit
  if (options.queue_bytes > 0) return options.queue_bytes;
  const size_t capacity = options.queue_capacity == 0 ? 1 : options.queue_capacity;
  return capacity > SIZE_MAX / kPerMessage ? 0 : capacity * kPerMessage;
}

bool topic_matches(std::string_view filter, std::string_view topic) {
  // Level by level: "+" takes one whole level, "#" (last) takes the rest, even none.
  for (;;) {
    const size_t f_end = filter.find('/');
    const size_t t_end = topic.find('/');
    const std::string_view f_level = filter.substr(0, f_end);
    const std::string_view t_level = topic.substr(0, t_end);
    if (f_level == "#") return true;
    if (f_level != "+" && f_level != t_level) return false;
    if (f_end == std::string_view::npos || t_end == std::string_view::npos) {
      // "a/#" also matches "a" (the parent level).
      if (f_end != std::string_view::npos) return filter.substr(f_end + 1) == "#";
      return t_end == std::string_view::npos;
    }
    filter.remove_prefix(f_end + 1);
    topic.remove_prefix(t_end + 1);
  }
}

}  // namespace sovdev::mqtt
