// An MQTT broker in the process, for measuring what the sync protocol puts on the wire: every
// endpoint is an mqtt::Client whose publishes reach the subscriptions of all endpoints at once
// (wildcards, $share groups, retained messages, subscribe_as), and every packet on an
// endpoint's link is counted as MQTT v5 frames it: PUBLISH with its topic, packet id and
// properties, PUBACK, SUBSCRIBE/SUBACK, UNSUBSCRIBE/UNSUBACK. Used by bench_delta for the
// delta's wire bytes and by the tests that hold that figure. Single-threaded: the owner moves
// events along by calling next() on each endpoint.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "platform/mqtt/client.hpp"

namespace sovdev::testing {

class LoopbackBus {
 public:
  // One packet on an endpoint's link, as the broker and the client exchange it.
  struct Packet {
    bool in = false;   // broker → client
    std::string what;  // "PUBLISH <topic>", "PUBACK", ...
    uint64_t bytes = 0;
    uint64_t payload = 0;  // of a PUBLISH
  };

  class Endpoint final : public mqtt::Client {
   public:
    Endpoint(LoopbackBus& bus, std::string name) : bus_(bus), name_(std::move(name)) {}
    Status connect() override {
      events_.push_back({mqtt::Event::Kind::connected, {}, {}});
      return {};
    }
    Status subscribe(const std::string& filter, int qos) override {
      return subscribe_as(filter, qos, "");
    }
    Status subscribe_as(const std::string& filter, int qos, const std::string& as) override {
      subs_[filter] = {qos, as};
      const uint64_t rest = 2 + 1 + 2 + filter.size() + 1;
      count(false, "SUBSCRIBE " + filter, frame(rest), 0);
      count(true, "SUBACK", 6, 0);
      for (const auto& [topic, m] : bus_.retained_) {
        if (matches(strip_share(filter), topic)) deliver(m, qos, as);
      }
      return {};
    }
    Status unsubscribe(const std::string& filter) override {
      subs_.erase(filter);
      count(false, "UNSUBSCRIBE " + filter, frame(2 + 1 + 2 + filter.size()), 0);
      count(true, "UNSUBACK", 6, 0);
      return {};
    }
    Status publish(const mqtt::Message& m) override {
      count(false, "PUBLISH " + m.topic, publish_size(m, m.qos), m.payload.size());
      if (m.qos > 0) count(true, "PUBACK", 4, 0);
      if (m.retained) bus_.retained_[m.topic] = m;
      for (auto& e : bus_.endpoints_) {
        for (const auto& [filter, sub] : e->subs_) {
          if (matches(strip_share(filter), m.topic)) {
            e->deliver(m, std::min(m.qos, sub.first), sub.second);
            break;  // one copy per client, as MQTT v5 brokers deliver overlapping filters
          }
        }
      }
      return {};
    }
    std::optional<mqtt::Event> next(std::chrono::milliseconds) override {
      if (events_.empty()) return std::nullopt;
      mqtt::Event e = std::move(events_.front());
      events_.pop_front();
      return e;
    }
    Status disconnect() override { return {}; }
    mqtt::Stats stats() const override { return {}; }

    const std::vector<Packet>& packets() const { return packets_; }
    uint64_t bytes() const {
      uint64_t n = 0;
      for (const auto& p : packets_) n += p.bytes;
      return n;
    }
    void reset() { packets_.clear(); }
    bool idle() const { return events_.empty(); }

   private:
    friend class LoopbackBus;
    static uint64_t varint_size(uint64_t n) {
      return n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4;
    }
    static uint64_t frame(uint64_t rest) { return 1 + varint_size(rest) + rest; }
    static uint64_t publish_size(const mqtt::Message& m, int qos) {
      uint64_t props = 0;
      if (!m.response_topic.empty()) props += 3 + m.response_topic.size();
      if (!m.correlation_data.empty()) props += 3 + m.correlation_data.size();
      if (m.expiry_seconds != 0) props += 5;
      return frame(2 + m.topic.size() + (qos > 0 ? 2 : 0) + varint_size(props) + props +
                   m.payload.size());
    }
    static std::string strip_share(const std::string& filter) {
      if (filter.rfind("$share/", 0) != 0) return filter;
      const size_t slash = filter.find('/', 7);
      return slash == std::string::npos ? filter : filter.substr(slash + 1);
    }
    static bool matches(const std::string& filter, const std::string& topic) {
      size_t f = 0, t = 0;
      while (f < filter.size()) {
        const size_t fe = std::min(filter.find('/', f), filter.size());
        const std::string level = filter.substr(f, fe - f);
        if (level == "#") return true;
        if (t > topic.size()) return false;
        const size_t te = std::min(topic.find('/', t), topic.size());
        if (level != "+" && level != topic.substr(t, te - t)) return false;
        f = fe + 1;
        t = te + 1;
      }
      return t > topic.size();
    }
    void deliver(const mqtt::Message& m, int qos, const std::string& as) {
      count(true, "PUBLISH " + m.topic, publish_size(m, qos), m.payload.size());
      if (qos > 0) count(false, "PUBACK", 4, 0);
      mqtt::Event e;
      e.message = m;
      e.message.qos = qos;
      if (!as.empty()) e.message.topic = as;
      events_.push_back(std::move(e));
    }
    void count(bool in, std::string what, uint64_t bytes, uint64_t payload) {
      packets_.push_back({in, std::move(what), bytes, payload});
    }

    LoopbackBus& bus_;
    std::string name_;
    std::map<std::string, std::pair<int, std::string>> subs_;  // filter → qos, deliver-as
    std::deque<mqtt::Event> events_;
    std::vector<Packet> packets_;
  };

  Endpoint& add(const std::string& name) {
    endpoints_.push_back(std::make_unique<Endpoint>(*this, name));
    return *endpoints_.back();
  }

 private:
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::map<std::string, mqtt::Message> retained_;
};

}  // namespace sovdev::testing
