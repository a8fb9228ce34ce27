// What runs on Paho's thread: short, never blocking, never holding mutex_ across a Paho call.
#include "platform/mqtt/backoff.hpp"
#include "platform/mqtt/nodelay.hpp"
#include "platform/mqtt/paho_client.hpp"
#include "platform/mqtt/paho_options.hpp"

namespace sovdev::mqtt {

void PahoClient::on_message(const ::mqtt::message& message) {
  received_++;
  const size_t size = message.get_payload().size();
  bytes_in_ += size;
  // Before anything is copied or queued: a sender allowed on a topic of small messages (an
  // agent's fetch requests) must not make us hold megabytes (issue #19: 400 × 1.1 MB took the
  // hub from 20 MB to 473 MB).
  for (const auto& limit : options_.topic_limits) {
    if (!topic_matches(limit.filter, message.get_topic())) continue;
    if (size > limit.max_payload) {
      oversize_++;
      return;
    }
    break;
  }
  // Full queue: the message is dropped and counted. The sync protocol asks again for what it
  // misses, and memory stays bounded whatever the broker sends.
  Message m = from_paho(message);
  if (has_aliases_) {
    m.topic = deliver_name(m.topic);
    if (m.topic.empty()) return;  // unsubscribed a moment ago: nobody wants it any more
  }
  (void)queue_.push_message(std::move(m));
}

void PahoClient::on_success(const ::mqtt::token& token) {
  if (token.get_type() == ::mqtt::token::CONNECT) on_connected();
  if (token.get_type() == ::mqtt::token::PUBLISH) on_publish_done(token, true);
  if (token.get_type() == ::mqtt::token::UNSUBSCRIBE) on_nudge_done(token);
}

void PahoClient::on_failure(const ::mqtt::token& token) {
  if (token.get_type() == ::mqtt::token::CONNECT) {
    // A refusing CONNACK arrives as the return code in 1.2.0, not as the reason code.
    const int rc = token.get_return_code();
    const int reason = token.get_reason_code() >= 0x80 ? token.get_reason_code()
                       : rc >= 0x80                    ? rc
                                                       : 0;
    on_connect_failed(rc, reason);
  }
  if (token.get_type() == ::mqtt::token::PUBLISH) on_publish_done(token, false);
  if (token.get_type() == ::mqtt::token::UNSUBSCRIBE) on_nudge_done(token);
  // A refused re-subscription leaves nothing to do here: the filter was accepted before.
}

void PahoClient::on_connected() {
  // Before anything is sent on the new connection (see nodelay.hpp).
  (void)set_nodelay_on_tcp_sockets(static_cast<int>(options_.send_buffer_bytes));
  Subscriptions subscriptions;
  bool too_late = false, closing = false;
  {
    std::lock_guard lock(mutex_);
    too_late = state_ == State::closed;
    closing = closing_;
    if (!too_late) state_ = State::connected;
    if (!closing) {
      if (connections_++ > 0) reconnects_++;
      attempt_ = 0;
      generation_++;
      pending_ = 0;
      nudges_in_flight_ = 0;  // nudges of the old connection are never answered
      nudge_delay_ = nudge_first_;
      subscriptions = subscriptions_;
    }
  }
  state_changed_.notify_all();
  if (too_late) {
    // disconnect() stopped waiting for this attempt: close what it could not.
    try {
      cli_->disconnect();
    } catch (const ::mqtt::exception&) {
    }
    return;
  }
  if (closing) return;
  // Subscribe before announcing: anything the owner publishes on `connected` is queued after
  // these SUBSCRIBEs, so the broker knows the filters before any answer comes back.
  for (const auto& [filter, qos] : subscriptions) {
    try {
      cli_->subscribe(filter, qos, nullptr, *this);
    } catch (const ::mqtt::exception&) {
    }
  }
  start_waker();
  queue_.push_connected();
}

void PahoClient::WakerListener::on_success(const ::mqtt::token& token) {
  // Null once the owner's destructor has begun resetting it.
  ::mqtt::async_client* waker = client.waker_.get();
  if (waker == nullptr) return;
  if (token.get_type() == ::mqtt::token::CONNECT) {
    try {
      waker->subscribe(client.options_.wake_topic, 0, nullptr, *this);
    } catch (const ::mqtt::exception&) {
      // Left without: the next connection of the main client tries again.
    }
  }
  if (token.get_type() == ::mqtt::token::SUBSCRIBE) client.waker_ready_ = true;
}

void PahoClient::on_connect_failed(int rc, int reason) {
  {
    std::lock_guard lock(mutex_);
    last_rc_ = rc;
    last_reason_ = reason;
    if (closing_ || state_ == State::closed) {
      state_ = State::closed;
    } else {
      state_ = State::waiting;
      next_attempt_ = Clock::now() + reconnect_delay(attempt_++, options_.reconnect_min,
                                                     options_.reconnect_max, rng_);
    }
  }
  state_changed_.notify_all();
  queue_.wake();
}

void PahoClient::on_lost(std::string reason) {
  {
    std::lock_guard lock(mutex_);
    if (state_ != State::connected || closing_) return;  // already known, or on purpose
    state_ = State::waiting;
    generation_++;
    pending_ = 0;
    nudges_in_flight_ = 0;
    attempt_ = 0;
    next_attempt_ = Clock::now() + reconnect_delay(attempt_++, options_.reconnect_min,
                                                   options_.reconnect_max, rng_);
  }
  queue_.push_connection_lost(std::move(reason));
}

// Only nudges (paho_client.cpp) unsubscribe with this client as the listener.
void PahoClient::on_nudge_done(const ::mqtt::token& token) {
  std::lock_guard lock(mutex_);
  if (from_context(token.get_user_context()) == generation_ && nudges_in_flight_ > 0) {
    nudges_in_flight_--;
  }
}

void PahoClient::on_publish_done(const ::mqtt::token& token, bool ok) {
  bool drained = false;
  {
    std::lock_guard lock(mutex_);
    if (from_context(token.get_user_context()) == generation_ && pending_ > 0) pending_--;
    drained = pending_ == 0;
    progress_at_ = Clock::now();
    nudge_delay_ = nudge_first_;
  }
  if (drained) state_changed_.notify_all();  // disconnect() may be waiting for the last ack
  if (ok) {
    published_++;
    if (const auto* delivery = dynamic_cast<const ::mqtt::delivery_token*>(&token)) {
      if (const auto message = delivery->get_message()) {
        bytes_out_ += message->get_payload().size();
      }
    }
  } else if (token.get_reason_code() >= 0x80) {
    publish_failed_++;
  }
}

}  // namespace sovdev::mqtt
