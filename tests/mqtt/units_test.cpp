// The parts of the MQTT layer that need no broker: the event queue, the backoff, URL parsing,
// the conversions to and from the MQTT library's messages.
#include <mqtt/async_client.h>
#include <catch2/catch.hpp>

#include <set>

#include "platform/mqtt/backoff.hpp"
#include "platform/mqtt/event_queue.hpp"
#include "platform/mqtt/paho_options.hpp"
#include "platform/mqtt/probe.hpp"

namespace sovdev::mqtt {
namespace {

using namespace std::chrono_literals;
using Kind = Event::Kind;

Message payload(const std::string& text) {
  Message m;
  m.topic = std::string("t");  // not = "t": GCC 12 -Wstringop-overflow false positive
  m.payload = text;
  return m;
}

std::vector<Kind> drain_kinds(EventQueue& q) {
  std::vector<Kind> kinds;
  while (auto e = q.pop(std::chrono::steady_clock::now())) kinds.push_back(e->kind);
  return kinds;
}

TEST_CASE("the event queue drops messages past its capacity but never connection events",
          "[mqtt][unit]") {
  EventQueue q(2);
  CHECK(q.push_message(payload("1")));
  CHECK(q.push_message(payload("2")));
  CHECK_FALSE(q.push_message(payload("3")));
  q.push_connection_lost("gone");
  q.push_connected();
  CHECK_FALSE(q.push_message(payload("4")));
  CHECK(q.dropped() == 2);

  auto first = q.pop(std::chrono::steady_clock::now());
  REQUIRE(first);
  CHECK(first->message.payload == "1");
  CHECK(q.push_message(payload("5")));  // a slot freed by the pop
  CHECK(drain_kinds(q) ==
        std::vector<Kind>{Kind::message, Kind::connection_lost, Kind::connected, Kind::message});
}

TEST_CASE("a flood of QoS 0 messages leaves a quarter of the queue to QoS 1 messages",
          "[mqtt][unit]") {
  EventQueue q(8);
  Message chunk = payload("chunk");
  chunk.qos = 0;
  int taken = 0;
  for (int i = 0; i < 20; i++) taken += q.push_message(chunk) ? 1 : 0;
  CHECK(taken == 6);
  Message manifest = payload("manifest");  // QoS 1
  CHECK(q.push_message(manifest));
  CHECK(q.push_message(manifest));
  CHECK_FALSE(q.push_message(manifest));
  CHECK(q.dropped() == 15);
}

TEST_CASE("connection events collapse while the owner is not reading", "[mqtt][unit]") {
  EventQueue q(4);
  q.push_connected();
  q.push_connection_lost("first");
  q.push_connected();
  q.push_connection_lost("second");
  q.push_connected();
  q.push_connection_lost("third");
  auto kinds = drain_kinds(q);
  CHECK(kinds == std::vector<Kind>{Kind::connected, Kind::connection_lost});

  q.push_connection_lost("a");
  q.push_connection_lost("b");
  auto lost = q.pop(std::chrono::steady_clock::now());
  REQUIRE(lost);
  CHECK(lost->reason == "b");
  CHECK(q.size() == 0);
}

TEST_CASE("the last connection event of a flapping link is kept, in order", "[mqtt][unit]") {
  EventQueue q(4);
  q.push_connection_lost("down");
  q.push_connected();
  CHECK(drain_kinds(q) == std::vector<Kind>{Kind::connection_lost, Kind::connected});
}

TEST_CASE("a woken pop returns early with nothing, and an empty pop waits until its deadline",
          "[mqtt][unit]") {
  EventQueue q(1);
  q.wake();
  const auto far = std::chrono::steady_clock::now() + 1h;
  CHECK_FALSE(q.pop(far));  // returns at once: the test would hang otherwise
  const auto soon = std::chrono::steady_clock::now() + 20ms;
  CHECK_FALSE(q.pop(soon));
  CHECK(std::chrono::steady_clock::now() >= soon);
}

TEST_CASE("reconnect delays grow exponentially up to the cap, with jitter", "[mqtt][unit]") {
  std::mt19937_64 rng(42);
  const auto min = 500ms, max = 30000ms;
  for (unsigned attempt = 0; attempt < 12; attempt++) {
    const auto base = std::min<std::chrono::milliseconds>(max, min * (1LL << attempt));
    for (int i = 0; i < 50; i++) {
      const auto d = reconnect_delay(attempt, min, max, rng);
      CHECK(d >= base / 2);
      CHECK(d <= base);
    }
  }
  std::set<int64_t> distinct;
  for (int i = 0; i < 50; i++) distinct.insert(reconnect_delay(3, min, max, rng).count());
  CHECK(distinct.size() > 10);
  CHECK(reconnect_delay(1000, min, max, rng) <= max);
  CHECK(reconnect_delay(0, 0ms, 0ms, rng) <= 1ms);
}

TEST_CASE("broker URLs give host and port, with the scheme's default port", "[mqtt][unit]") {
  CHECK(parse_server("tcp://127.0.0.1:1884").host == "127.0.0.1");
  CHECK(parse_server("tcp://127.0.0.1:1884").port == 1884);
  CHECK(parse_server("ssl://broker.example.com").port == 8883);
  CHECK(parse_server("mqtt://broker").port == 1883);
  CHECK(parse_server("ssl://[::1]:9000").host == "::1");
  CHECK(parse_server("ssl://[::1]:9000").port == 9000);
  CHECK(parse_server("mqtts://[::1]").port == 8883);
}

TEST_CASE("payloads pass to and from the MQTT library without a copy", "[mqtt][unit]") {
  // A client, never connected, as in the programs: without one Paho C's allocation tracker
  // is not started and each message's properties leak (see to_paho).
  const ::mqtt::async_client library("tcp://127.0.0.1:1", "units",
                                     ::mqtt::create_options(MQTTVERSION_5));
  Message out = payload(std::string(65536, 'c'));
  out.response_topic = "r";
  const auto paho = to_paho(out);
  CHECK(paho->get_payload_ref().ptr() == out.payload.shared());
  CHECK(paho->get_payload_str() == out.payload.str());

  const Message in = from_paho(*paho);
  CHECK(in.payload.shared() == paho->get_payload_ref().ptr());
  CHECK(in.payload == std::string(65536, 'c'));
  CHECK(in.response_topic == "r");

  // A copy of a message shares its bytes; an empty payload has none to share.
  const Message copy = in;
  CHECK(copy.payload.data() == in.payload.data());
  Message empty;
  CHECK(empty.payload.empty());
  CHECK(to_paho(empty)->get_payload_str().empty());
  CHECK(from_paho(*to_paho(empty)).payload.empty());
}

}  // namespace
}  // namespace sovdev::mqtt
