#include "platform/mqtt/event_queue.hpp"

#include <algorithm>
#include <utility>

namespace sovdev::mqtt {

size_t queued_size(const Message& message) {
  // An Event in the deque, the strings' and the shared payload's heap blocks.
  constexpr size_t kOverhead = sizeof(Event) + 64;
  return kOverhead + message.topic.size() + message.payload.size() + message.response_topic.size() +
         message.correlation_data.size();
}

bool EventQueue::push_message(Message message) {
  const size_t size = queued_size(message);
  {
    std::lock_guard lock(mutex_);
    const bool qos0 = message.qos == 0;
    const size_t limit = qos0 ? capacity_ - capacity_ / 4 : capacity_;
    const size_t byte_limit = qos0 ? max_bytes_ - max_bytes_ / 4 : max_bytes_;
    const bool over_bytes = max_bytes_ > 0 && messages_ > 0 && bytes_ + size > byte_limit;
    if (messages_ >= limit || over_bytes) {
      dropped_++;
      return false;
    }
    Event event;
    event.kind = Event::Kind::message;
    event.message = std::move(message);
    events_.push_back(std::move(event));
    messages_++;
    bytes_ += size;
    peak_bytes_ = std::max(peak_bytes_, bytes_);
  }
  ready_.notify_one();
  return true;
}

void EventQueue::push_connected() {
  Event event;
  event.kind = Event::Kind::connected;
  push_control(std::move(event));
}

void EventQueue::push_connection_lost(std::string reason) {
  Event event;
  event.kind = Event::Kind::connection_lost;
  event.reason = std::move(reason);
  push_control(std::move(event));
}

void EventQueue::push_control(Event event) {
  using Kind = Event::Kind;
  {
    std::lock_guard lock(mutex_);
    const size_t n = events_.size();
    const Kind last = n > 0 ? events_[n - 1].kind : Kind::message;
    if (event.kind == Kind::connected && last == Kind::connected) {
      // Already announced and not yet seen.
    } else if (event.kind == Kind::connection_lost && last == Kind::connection_lost) {
      events_.back().reason = std::move(event.reason);
    } else if (event.kind == Kind::connection_lost && last == Kind::connected && n >= 2 &&
               events_[n - 2].kind == Kind::connection_lost) {
      // lost, connected, lost: the owner only needs to know the link is down again.
      events_.pop_back();
      events_.back().reason = std::move(event.reason);
    } else {
      events_.push_back(std::move(event));
    }
  }
  ready_.notify_one();
}

void EventQueue::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  ready_.notify_one();
}

std::optional<Event> EventQueue::pop(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  ready_.wait_until(lock, deadline, [this] { return !events_.empty() || woken_; });
  woken_ = false;
  if (events_.empty()) return std::nullopt;
  Event event = std::move(events_.front());
  events_.pop_front();
  if (event.kind == Event::Kind::message) {
    messages_--;
    bytes_ -= std::min(bytes_, queued_size(event.message));
  }
  return event;
}

uint64_t EventQueue::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

size_t EventQueue::size() const {
  std::lock_guard lock(mutex_);
  return events_.size();
}

}  // namespace sovdev::mqtt

namespace sovdev::mqtt {

size_t EventQueue::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

size_t EventQueue::peak_bytes() const {
  std::lock_guard lock(mutex_);
  return peak_bytes_;
}

}  // namespace sovdev::mqtt
