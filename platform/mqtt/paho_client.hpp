// The Client over Paho MQTT C++ 1.2.0. Paho's thread only runs the small callbacks in
// paho_callbacks.cpp; the owner's thread does everything else (paho_client.cpp), reconnection
// included (from next()), so there is no thread of our own. Lock order: Paho's internal mutexes,
// then mutex_; mutex_ is never held while calling into Paho.
#pragma once

#include <mqtt/async_client.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "platform/mqtt/client.hpp"
#include "platform/mqtt/event_queue.hpp"

namespace sovdev::mqtt {

using Subscriptions = std::vector<std::pair<std::string, int>>;

// Each publish carries the generation of the connection it went out on, so that an ack (or a
// failure) arriving after a reconnect does not free a slot of the new connection.
inline void* to_context(uint64_t generation) {
  return reinterpret_cast<void*>(static_cast<uintptr_t>(generation));
}
inline uint64_t from_context(void* context) {
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(context));
}

class PahoClient final : public Client, private ::mqtt::iaction_listener {
 public:
  explicit PahoClient(const Options& options);
  ~PahoClient() override;
  PahoClient(const PahoClient&) = delete;
  PahoClient& operator=(const PahoClient&) = delete;

  Status connect() override;
  Status subscribe(const std::string& filter, int qos) override;
  Status subscribe_as(const std::string& topic, int qos, const std::string& deliver_as) override;
  Status unsubscribe(const std::string& filter) override;
  Status publish(const Message& message) override;
  std::optional<Event> next(std::chrono::milliseconds timeout) override;
  Status disconnect() override;
  Stats stats() const override;

 private:
  using Clock = std::chrono::steady_clock;
  enum class State { idle, connecting, connected, waiting, closed };

  // Completions of connects and publishes, on Paho's thread.
  void on_success(const ::mqtt::token& token) override;
  void on_failure(const ::mqtt::token& token) override;
  void on_message(const ::mqtt::message& message);
  void on_connected();
  void on_connect_failed(int rc, int reason);
  void on_lost(std::string reason);
  void on_publish_done(const ::mqtt::token& token, bool ok);

  void start_attempt();
  // The wake connection (Options::wake_topic): connected and subscribed after each connection
  // of the main one, without waiting; it publishes to itself in nudge().
  void start_waker();
  struct WakerListener final : ::mqtt::iaction_listener {
    explicit WakerListener(PahoClient& owner) : client(owner) {}
    void on_success(const ::mqtt::token& token) override;
    void on_failure(const ::mqtt::token&) override {}
    PahoClient& client;
  };
  // Wakes Paho C's send thread (see next()). nudge_due() decides, under mutex_: true when a
  // nudge is to be sent now (then marked in flight); either way it lowers `wake` to when the
  // next one could be due.
  bool nudge_due(Clock::time_point now, Clock::time_point& wake);
  void nudge(uint64_t generation);
  void on_nudge_done(const ::mqtt::token& token);
  // The name a message on `topic` is handed over under; "" = drop it (unsubscribed).
  std::string deliver_name(const std::string& topic);
  std::chrono::milliseconds answer_timeout() const {
    return options_.connect_timeout * static_cast<int64_t>(options_.servers.size()) +
           std::chrono::seconds(2);
  }

  const Options options_;
  Status setup_;  // why the client cannot work, reported by connect()
  ::mqtt::connect_options connect_options_;
  EventQueue queue_;

  mutable std::mutex mutex_;
  std::condition_variable state_changed_;
  State state_ = State::idle;
  bool closing_ = false;
  uint64_t connections_ = 0;
  unsigned attempt_ = 0;  // failed attempts since the link was last up
  Clock::time_point next_attempt_{};
  int last_rc_ = 0, last_reason_ = 0;
  uint64_t generation_ = 0;
  size_t pending_ = 0;
  // Publishes' progress, for the nudges (next()): when one was last accepted with none pending
  // or completed, or a nudge went out; the wait before the next nudge (doubled by each up to
  // kNudgeMax, reset by progress); the nudges awaiting the broker's answer, at most
  // kNudgesInFlight. With a wake connection the first comes sooner: a stalled burst is then
  // the common case, not the rare one.
  static constexpr std::chrono::milliseconds kNudgeFirst{30}, kWakeFirst{10}, kNudgeMax{480};
  static constexpr unsigned kNudgesInFlight = 4;
  Clock::time_point progress_at_{};
  std::chrono::milliseconds nudge_first_ = kNudgeFirst;
  std::chrono::milliseconds nudge_delay_ = kNudgeFirst;
  unsigned nudges_in_flight_ = 0;
  bool nudge_unsubscribes_ = false;  // what nudge_due() decided for nudge(), on the owner's thread
  std::atomic<bool> waker_ready_{false};
  Subscriptions subscriptions_;
  // topic → the name its messages are handed over under ("" once unsubscribed: late messages
  // are dropped). Read on Paho's thread for every message while not empty.
  std::vector<std::pair<std::string, std::string>> aliases_;
  std::atomic<bool> has_aliases_{false};
  std::mt19937_64 rng_;

  std::atomic<uint64_t> received_{0}, published_{0}, bytes_in_{0}, bytes_out_{0};
  std::atomic<uint64_t> reconnects_{0}, publish_failed_{0}, nudges_{0}, oversize_{0};

  // Declared last so they go first, the listener after them; the destructor also resets them
  // explicitly.
  WakerListener waker_listener_{*this};
  std::unique_ptr<::mqtt::async_client> waker_;
  std::unique_ptr<::mqtt::async_client> cli_;
};

}  // namespace sovdev::mqtt
