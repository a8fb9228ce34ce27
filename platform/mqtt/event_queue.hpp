// The bounded hand-over between the library's thread (producer, must never block) and the
// owner's thread (consumer).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "platform/mqtt/client.hpp"

namespace sovdev::mqtt {

// The bytes a message holds while it waits: what the sender chose (payload, topic, MQTT v5
// properties) plus the event's own fixed cost, so a flood of empty messages counts too.
size_t queued_size(const Message& message);

class EventQueue {
 public:
  // At most `capacity` messages and `max_bytes` bytes (queued_size) wait at once; 0 bytes means
  // no byte limit. One message larger than `max_bytes` is still taken when nothing else waits,
  // so memory stays within max_bytes plus one message (the transport's MAXIMUM_PACKET_SIZE).
  explicit EventQueue(size_t capacity, size_t max_bytes = 0)
      : capacity_(capacity == 0 ? 1 : capacity), max_bytes_(max_bytes) {}
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;

  // Returns false, and counts the drop, when `capacity` messages are already waiting or the
  // message would take the bytes waiting past `max_bytes`. QoS 0 messages go first: they are
  // dropped once three quarters of either limit is taken, so a flood of them (the sync
  // protocol's broadcast chunks) leaves room for the QoS 1 messages (manifests, catalogs)
  // whose sender does not expect to send them again soon.
  bool push_message(Message message);
  // Connection events never count against the capacity and are never dropped; a run of them
  // with no message in between collapses (lost, connected, lost → lost) so that a flapping
  // link cannot grow the queue while the owner is busy.
  void push_connected();
  void push_connection_lost(std::string reason);
  // Makes a waiting pop() return early (with nothing) so the owner can look at its timers.
  void wake();
  // The oldest event, waiting until `deadline` at the latest.
  std::optional<Event> pop(std::chrono::steady_clock::time_point deadline);

  uint64_t dropped() const;
  size_t size() const;
  // Bytes (queued_size) of the messages waiting now, and the most that ever waited at once.
  size_t bytes() const;
  size_t peak_bytes() const;

 private:
  void push_control(Event event);

  const size_t capacity_;
  const size_t max_bytes_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Event> events_;
  size_t messages_ = 0;
  size_t bytes_ = 0;
  size_t peak_bytes_ = 0;
  uint64_t dropped_ = 0;
  bool woken_ = false;
};

}  // namespace sovdev::mqtt
