#include "platform/mqtt/paho_client.hpp"

#include <MQTTAsync.h>

#include <algorithm>
#include <cstdlib>
#include <functional>

#include "platform/mqtt/paho_options.hpp"
#include "platform/mqtt/probe.hpp"

namespace sovdev::mqtt {

PahoClient::PahoClient(const Options& options)
    : options_(options),
      setup_(validate(options)),
      queue_(options.queue_capacity, queue_byte_limit(options)),
      rng_(std::random_device{}() ^ std::hash<std::string>{}(options.client_id)) {
  if (!setup_) return;
  try {
    connect_options_ = paho_connect_options(options_);
    ::mqtt::create_options create(MQTTVERSION_5);
    // publish() refuses while disconnected, so nothing waits in an offline buffer. The same
    // limit caps the publishes queued inside Paho while connected; ours is never above it.
    create.set_send_while_disconnected(false);
    create.set_max_buffered_messages(static_cast<int>(options_.max_pending_publishes));
    cli_ = std::make_unique<::mqtt::async_client>(options_.servers.front(), options_.client_id,
                                                  create, nullptr);
    cli_->set_message_callback([this](::mqtt::const_message_ptr m) { on_message(*m); });
    cli_->set_connection_lost_handler([this](const std::string& cause) {
      on_lost(cause.empty() ? "connection to the broker lost" : cause);
    });
    // A v5 broker may say why it closes the link (e.g. 0x8B, shutting down).
    cli_->set_disconnected_handler([this](const ::mqtt::properties&, ::mqtt::ReasonCode code) {
      on_lost("the broker closed the connection (MQTT reason code " +
              std::to_string(static_cast<int>(code)) + ")");
    });
    if (!options_.wake_topic.empty()) {
      waker_ = std::make_unique<::mqtt::async_client>(
          options_.servers.front(), options_.client_id + "-wake", create, nullptr);
      // Its messages only wake the library; they are dropped here.
      waker_->set_message_callback([](::mqtt::const_message_ptr) {});
      nudge_first_ = nudge_delay_ = kWakeFirst;
    }
  } catch (const ::mqtt::exception& e) {
    setup_ = make_error(Errc::invalid, std::string("MQTT client setup: ") + e.what());
    cli_.reset();
  }
}

PahoClient::~PahoClient() {
  if (!cli_) return;
  (void)disconnect();
  try {
    cli_->disable_callbacks();
  } catch (const ::mqtt::exception&) {
  }
  // Before the members that pending tokens' failure callbacks still touch.
  if (waker_) {
    try {
      waker_->disable_callbacks();
    } catch (const ::mqtt::exception&) {
    }
    waker_.reset();
  }
  cli_.reset();
}

Status PahoClient::connect() {
  if (!setup_) return setup_.error().context("connect to the MQTT broker");
  bool start = false;
  uint64_t before = 0;
  {
    std::lock_guard lock(mutex_);
    closing_ = false;
    if (state_ == State::connected) return {};
    before = connections_;
    if (state_ != State::connecting) {
      state_ = State::connecting;
      start = true;
    }
  }
  if (start) start_attempt();
  std::unique_lock lock(mutex_);
  const bool answered =
      state_changed_.wait_for(lock, answer_timeout(), [&] { return state_ != State::connecting; });
  if (connections_ > before) return {};
  if (!answered) {
    return make_error(Errc::unavailable, "connect to the MQTT broker: no answer within " +
                                             std::to_string(answer_timeout().count()) + " ms");
  }
  const int rc = last_rc_, reason = last_reason_;
  lock.unlock();
  Error error = connect_error(options_, rc, reason);
  if (reason < 0x80) {
    error.message +=
        ": " + probe_servers(options_.servers,
                             std::min(options_.connect_timeout, std::chrono::milliseconds(3000)));
  }
  return std::move(error).context("connect to the MQTT broker");
}

void PahoClient::start_attempt() {
  try {
    // The properties go on this copy, after its last copy or move (see paho_connect_properties),
    // and only while cli_ exists: Paho C's heap tracker loses (leaks) what is allocated before
    // its first client is created.
    ::mqtt::connect_options attempt = connect_options_;
    attempt.set_properties(paho_connect_properties(options_));
    cli_->connect(attempt, nullptr, *this);
  } catch (const ::mqtt::exception& e) {
    on_connect_failed(e.get_return_code(), 0);
  }
}

Status PahoClient::subscribe(const std::string& filter, int qos) {
  if (filter.empty() || qos < 0 || qos > 2) {
    return make_error(Errc::invalid, "subscribe: need a topic filter and a QoS of 0, 1 or 2");
  }
  bool connected = false;
  {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(subscriptions_.begin(), subscriptions_.end(),
                           [&](const auto& s) { return s.first == filter; });
    if (it == subscriptions_.end()) {
      subscriptions_.emplace_back(filter, qos);
    } else {
      it->second = qos;
    }
    connected = state_ == State::connected;
  }
  if (!connected) return {};
  int refused = 0;
  try {
    auto token = cli_->subscribe(filter, qos);
    if (!token->wait_for(answer_timeout())) {
      return make_error(Errc::unavailable,
                        "subscribe to " + filter + ": no answer from the broker");
    }
    refused = token->get_reason_code() >= 0x80 ? token->get_reason_code() : 0;
  } catch (const ::mqtt::exception& e) {
    if (e.get_reason_code() < 0x80) {
      return make_error(Errc::unavailable, "subscribe to " + filter + ": " + e.what());
    }
    refused = e.get_reason_code();
  }
  if (refused == 0) return {};
  {
    std::lock_guard lock(mutex_);
    std::erase_if(subscriptions_, [&](const auto& s) { return s.first == filter; });
  }
  return make_error(Errc::invalid, "the broker refused the subscription to " + filter + ": " +
                                       ::mqtt::exception::reason_code_str(refused));
}

Status PahoClient::subscribe_as(const std::string& topic, int qos, const std::string& deliver_as) {
  if (topic.find_first_of("+#") != std::string::npos || deliver_as.empty()) {
    return make_error(Errc::invalid, "subscribe " + topic + " as " + deliver_as +
                                         ": needs a topic name without wildcards and a name");
  }
  {
    std::lock_guard lock(mutex_);
    std::erase_if(aliases_, [&](const auto& a) { return a.first == topic; });
    aliases_.emplace_back(topic, deliver_as);
    has_aliases_ = true;
  }
  auto subscribed = subscribe(topic, qos);
  if (!subscribed) {
    std::lock_guard lock(mutex_);
    std::erase_if(aliases_, [&](const auto& a) { return a.first == topic; });
  }
  return subscribed;
}

Status PahoClient::unsubscribe(const std::string& filter) {
  bool connected = false;
  {
    std::lock_guard lock(mutex_);
    std::erase_if(subscriptions_, [&](const auto& s) { return s.first == filter; });
    for (auto& alias : aliases_) {
      if (alias.first == filter) alias.second.clear();
    }
    // Dropped-topic entries only need to outlive the messages already under way.
    constexpr size_t kKeepDropped = 16;
    size_t dropped = 0;
    for (auto it = aliases_.rbegin(); it != aliases_.rend(); ++it) {
      if (it->second.empty()) dropped++;
    }
    while (dropped > kKeepDropped) {
      auto it = std::find_if(aliases_.begin(), aliases_.end(),
                             [](const auto& a) { return a.second.empty(); });
      aliases_.erase(it);
      dropped--;
    }
    connected = state_ == State::connected;
  }
  if (!connected) return {};
  try {
    cli_->unsubscribe(filter);  // the answer is not waited for: nothing depends on it
  } catch (const ::mqtt::exception& e) {
    return make_error(Errc::unavailable, "unsubscribe from " + filter + ": " + e.what());
  }
  return {};
}

std::string PahoClient::deliver_name(const std::string& topic) {
  std::lock_guard lock(mutex_);
  for (const auto& [name, as] : aliases_) {
    if (name == topic) return as;
  }
  return topic;
}

Status PahoClient::publish(const Message& message) {
  if (message.topic.empty() ||
      message.topic.find_first_of(std::string("+#\0", 3)) != std::string::npos || message.qos < 0 ||
      message.qos > 2) {
    return make_error(Errc::invalid, "publish: '" + message.topic +
                                         "' is not a topic name, or the QoS is not 0, 1 or 2");
  }
  uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    if (state_ != State::connected) {
      return make_error(Errc::unavailable,
                        "publish to " + message.topic + ": not connected to the broker");
    }
    if (pending_ >= options_.max_pending_publishes) {
      return make_error(Errc::unavailable, "publish to " + message.topic + ": " +
                                               std::to_string(pending_) +
                                               " publishes still await the broker's ack");
    }
    if (pending_++ == 0) progress_at_ = Clock::now();
    generation = generation_;
  }
  try {
    cli_->publish(to_paho(message), to_context(generation), *this);
  } catch (const ::mqtt::exception& e) {
    std::lock_guard lock(mutex_);
    if (generation == generation_ && pending_ > 0) pending_--;
    return make_error(Errc::unavailable, "publish to " + message.topic + ": " + e.what());
  }
  return {};
}

// Paho C 1.3's send thread can sleep for up to a second with messages queued: it misses a
// wake-up (a command added between its check of the queue and its wait), or a partial write to
// a busy broker completes without anyone waking it (paho.mqtt.c #1039, #1404, #1457; fixed in
// 1.4). Seen in the fan-out benchmark as the hub sending nothing for 0.9 s with chunks queued.
// A new command wakes it: while publishes make no progress, next() adds one, an UNSUBSCRIBE
// from a topic nobody uses (no ACL refuses an unsubscribe; the answer only counts it done).
// The thread takes no command while a partial write is still pending on the socket (the
// receive thread finishes that write, then wakes nobody): a nudge that came too early waits a
// second in the queue with the rest, so more follow, 30 ms after the last progress, then 60,
// 120 ... 480 ms apart. At most kNudgesInFlight go unanswered: a connection that died without
// a word costs a few commands, not one every 30 ms until the keepalive notices. With a wake
// connection each nudge also publishes there (nudge()), and those go on past that limit: the
// stall they end is the one that keeps the UNSUBSCRIBEs from leaving.
constexpr const char* kNudgeTopic = "sovdev/nudge";

bool PahoClient::nudge_due(Clock::time_point now, Clock::time_point& wake) {
  if (state_ != State::connected || pending_ == 0) return false;
  const bool unsubscribe = nudges_in_flight_ < kNudgesInFlight;
  if (!unsubscribe && !waker_ready_) return false;
  if (now < progress_at_ + nudge_delay_) {
    wake = std::min(wake, progress_at_ + nudge_delay_);
    return false;
  }
  if (unsubscribe) nudges_in_flight_++;
  nudge_unsubscribes_ = unsubscribe;
  progress_at_ = now;
  nudge_delay_ = std::min(nudge_delay_ * 2, kNudgeMax);
  wake = std::min(wake, progress_at_ + nudge_delay_);  // the next one, if still stalled then
  return true;
}

void PahoClient::start_waker() {
  if (!waker_ || waker_->is_connected()) return;
  waker_ready_ = false;
  try {
    Options plain = options_;
    plain.will.reset();  // the main connection's will is its own
    waker_->connect(paho_connect_options(plain), nullptr, waker_listener_);
  } catch (const ::mqtt::exception&) {
    // Left without: the next connection of the main client tries again.
  }
}

std::optional<Event> PahoClient::next(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    bool attempt = false, stalled = false;
    uint64_t generation = 0;
    auto until = deadline;
    {
      std::lock_guard lock(mutex_);
      if (state_ == State::waiting && !closing_) {
        if (Clock::now() >= next_attempt_) {
          state_ = State::connecting;
          attempt = true;
        } else {
          until = std::min(deadline, next_attempt_);
        }
      }
      stalled = nudge_due(Clock::now(), until);
      generation = generation_;
    }
    if (attempt) start_attempt();
    if (stalled) nudge(generation);
    if (auto event = queue_.pop(attempt ? Clock::now() : until)) return event;
    if (Clock::now() >= deadline) return std::nullopt;
  }
}

void PahoClient::nudge(uint64_t generation) {
  nudges_++;
  if (nudge_unsubscribes_) {
    try {
      cli_->unsubscribe(kNudgeTopic, to_context(generation), *this);
    } catch (const ::mqtt::exception&) {
      // Disconnected meanwhile: the next connection clears the count.
    }
  }
  // A partial write to a busy broker is finished by Paho C's receive thread, which notices the
  // socket became writable only when it wakes: when anything arrives, or after a second. This
  // message to ourselves arrives on the wake connection and wakes it (seen in the fan-out
  // benchmark: each burst that filled the hub's socket buffer then waited 0.1-0.9 s).
  if (waker_ready_) {
    try {
      waker_->publish(options_.wake_topic, "", 0, 0, false);
    } catch (const ::mqtt::exception&) {
    }
  }
}

Status PahoClient::disconnect() {
  State was = State::idle;
  {
    std::unique_lock lock(mutex_);
    closing_ = true;
    // Let an attempt in flight finish, so that no connect callback arrives after we leave.
    state_changed_.wait_for(lock, answer_timeout(), [&] { return state_ != State::connecting; });
    // Publishes still in flight (an agent's last status before `sync --once` exits) get up to
    // 2 s to be acknowledged. Waited for here rather than by Paho's disconnect timeout: Paho C
    // checks that only when its receive loop wakes, up to a second late each time.
    const auto acked_by = Clock::now() + std::chrono::milliseconds(2000);
    while ((state_ == State::connected && pending_ > 0) && Clock::now() < acked_by) {
      auto wake = acked_by;
      if (nudge_due(Clock::now(), wake)) {
        const uint64_t generation = generation_;
        lock.unlock();  // never held across a call into Paho
        nudge(generation);
        lock.lock();
        continue;
      }
      state_changed_.wait_until(lock, wake);
    }
    was = state_;
    state_ = State::closed;
    generation_++;
    pending_ = 0;
    nudges_in_flight_ = 0;
  }
  if (waker_ && waker_->is_connected()) {
    waker_ready_ = false;
    try {
      waker_->disconnect(0)->wait_for(answer_timeout());
    } catch (const ::mqtt::exception&) {
    }
  }
  if (was != State::connected || !cli_) return {};
  try {
    // A clean DISCONNECT: the broker discards the will.
    cli_->disconnect(0)->wait_for(answer_timeout());
  } catch (const ::mqtt::exception& e) {
    return make_error(Errc::unavailable, std::string("disconnect from the broker: ") + e.what());
  }
  return {};
}

Stats PahoClient::stats() const {
  Stats s;
  s.received = received_;
  s.dropped = queue_.dropped();
  s.oversize = oversize_;
  s.queued_bytes = queue_.bytes();
  s.queued_bytes_peak = queue_.peak_bytes();
  s.published = published_;
  s.bytes_in = bytes_in_;
  s.bytes_out = bytes_out_;
  s.reconnects = reconnects_;
  s.publish_failed = publish_failed_;
  s.nudges = nudges_;
  return s;
}

std::unique_ptr<Client> make_paho_client(const Options& options) {
  // Paho C formats a trace line (vsnprintf, a time stamp, a global mutex) for every packet
  // sent or received at its default level, MINIMUM, though nobody reads that trace. ERROR
  // keeps what matters and skips the formatting; the level holds for the whole process.
  // MQTT_C_CLIENT_TRACE_LEVEL, which the library reads at its first client, still chooses for
  // whoever debugs.
  static const bool quiet = [] {
    if (std::getenv("MQTT_C_CLIENT_TRACE_LEVEL") == nullptr) {
      MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_ERROR);
    }
    return true;
  }();
  (void)quiet;
  return std::make_unique<PahoClient>(options);
}

}  // namespace sovdev::mqtt
