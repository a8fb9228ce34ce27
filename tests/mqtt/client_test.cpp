// The Paho client against a real mosquitto: messages, retained state, the bounded queue,
// reconnection and connection errors.
#include <MQTTAsync.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "tests/mqtt/fixture.hpp"
#include "tests/support/process.hpp"

namespace sovdev::mqtt::testing {
namespace {

using Catch::Matchers::Contains;
using sovdev::testing::wait_until;

const std::string kData = "sovdev/v1/agent/agent-a/data";

std::vector<std::string> drain_payloads(Client& client) {
  std::vector<std::string> out;
  while (auto event = client.next(0ms)) {
    if (event->kind == Event::Kind::message) out.push_back(event->message.payload.str());
  }
  return out;
}

TEST_CASE("a message arrives with its payload, response topic, correlation data and expiry",
          "[mqtt]") {
  auto broker = Broker::start();
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);
  auto agent = connected(user_options(*broker, "agent-a"), *broker);
  subscribed(*hub, "sovdev/v1/fetch/+", *broker);
  subscribed(*agent, kData, *broker);

  Message request = message("sovdev/v1/fetch/agent-a", std::string("fetch\0me", 8));
  request.response_topic = kData;
  request.correlation_data = std::string("\x00\x01\xfe\xff id", 7);
  request.expiry_seconds = 300;
  REQUIRE(agent->publish(request));
  auto got = wait_message(*hub, request.topic, kWait);
  REQUIRE(got);
  CHECK(got->payload == request.payload);
  CHECK(got->response_topic == kData);
  CHECK(got->correlation_data == request.correlation_data);
  CHECK(got->expiry_seconds > 290);
  CHECK(got->expiry_seconds <= 300);
  CHECK(got->qos == 1);
  CHECK_FALSE(got->retained);

  Message reply = message(got->response_topic, "chunk 0");
  reply.correlation_data = got->correlation_data;
  REQUIRE(hub->publish(reply));
  auto answer = wait_message(*agent, kData, kWait);
  REQUIRE(answer);
  CHECK(answer->payload == "chunk 0");
  CHECK(answer->correlation_data == request.correlation_data);
  CHECK(answer->response_topic.empty());
  CHECK(answer->expiry_seconds == 0);

  CHECK(hub->stats().received == 1);
  CHECK(hub->stats().bytes_in == 8);
  CHECK(wait_until([&] { return hub->stats().published == 1; }, kWait));
  CHECK(hub->stats().bytes_out == 7);
}

TEST_CASE("a retained message reaches a later subscriber, flagged as retained", "[mqtt]") {
  auto broker = Broker::start();
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);
  published(*hub, message("sovdev/v1/catalog/edge", "signed catalog 7", true), *broker);

  auto agent = connected(user_options(*broker, "agent-a"), *broker);
  subscribed(*agent, "sovdev/v1/catalog/+", *broker);
  auto got = wait_message(*agent, "sovdev/v1/catalog/edge", kWait);
  REQUIRE(got);
  CHECK(got->payload == "signed catalog 7");
  CHECK(got->retained);
}

TEST_CASE("a full queue drops and counts messages while the library keeps receiving", "[mqtt]") {
  auto broker = Broker::start();
  Options options = user_options(*broker, "agent-a");
  options.queue_capacity = 4;
  auto agent = connected(options, *broker);
  subscribed(*agent, kData, *broker);
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);

  for (int i = 0; i < 20; i++) REQUIRE(hub->publish(message(kData, "chunk " + std::to_string(i))));
  // Nobody drains the queue: all 20 must still get through the library's thread.
  REQUIRE(wait_until([&] { return agent->stats().received == 20; }, kWait));
  CHECK(agent->stats().dropped == 16);
  CHECK(drain_payloads(*agent) ==
        std::vector<std::string>{"chunk 0", "chunk 1", "chunk 2", "chunk 3"});

  // Room again: the next message is kept.
  REQUIRE(hub->publish(message(kData, "chunk 20")));
  auto got = wait_message(*agent, kData, kWait);
  REQUIRE(got);
  CHECK(got->payload == "chunk 20");
  CHECK(agent->stats().dropped == 16);
}

TEST_CASE("after a broker restart the client reports the loss, reconnects and resubscribes",
          "[mqtt]") {
  auto broker = Broker::start();
  auto agent = connected(user_options(*broker, "agent-a"), *broker);
  subscribed(*agent, kData, *broker);
  REQUIRE(wait_kind(*agent, Event::Kind::connected, kWait));

  broker->restart();
  auto lost = wait_for(
      *agent, [](const Event& e) { return e.kind != Event::Kind::message; }, kWait);
  REQUIRE(lost);
  CHECK(lost->kind == Event::Kind::connection_lost);
  CHECK_FALSE(lost->reason.empty());
  // Reconnection happens in next(), which nobody calls now: publishing is refused, not queued.
  auto refused = agent->publish(message("sovdev/v1/status/agent-a", "busy"));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::unavailable);

  if (!wait_kind(*agent, Event::Kind::connected, kWait)) FAIL("no reconnect\n" << broker->log());
  CHECK(agent->stats().reconnects == 1);
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);
  published(*hub, message(kData, "after the restart"), *broker);
  auto got = wait_message(*agent, kData, kWait);
  REQUIRE(got);
  CHECK(got->payload == "after the restart");
}

// Trace lines the Paho C library formatted at a level below ERROR once the clients exist (it
// formats only what its trace level lets through, and hands each line to the callback).
std::atomic<int> chatty_trace_lines{0};
void count_trace(enum MQTTASYNC_TRACE_LEVELS level, char*) {
  if (level < MQTTASYNC_TRACE_ERROR) chatty_trace_lines++;
}

TEST_CASE("the library formats no per-packet protocol trace while messages flow", "[mqtt]") {
  auto broker = Broker::start();
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);
  auto agent = connected(user_options(*broker, "agent-a"), *broker);
  MQTTAsync_setTraceCallback(count_trace);
  subscribed(*agent, kData, *broker);
  for (int i = 0; i < 20; i++) REQUIRE(hub->publish(message(kData, "chunk " + std::to_string(i))));
  CHECK(wait_until([&] { return agent->stats().received == 20; }, kWait));
  MQTTAsync_setTraceCallback(nullptr);
  CHECK(chatty_trace_lines.load() == 0);
}

TEST_CASE("connecting with a wrong password fails with a clear error", "[mqtt]") {
  auto broker = Broker::start();
  Options options = user_options(*broker, "agent-a");
  options.password = "not-the-password";
  auto client = make_paho_client(options);
  auto status = client->connect();
  REQUIRE_FALSE(status);
  CHECK(status.error().code == Errc::invalid);
  CHECK_THAT(status.error().message, Contains("check the password"));
  CHECK_THAT(status.error().message, Contains("agent-a"));
  auto refused = client->publish(message("sovdev/v1/status/agent-a", "online"));
  CHECK_FALSE(refused);
}

TEST_CASE("connecting where no broker listens fails as unavailable and names the server",
          "[mqtt]") {
  auto broker = Broker::start();
  Options options = user_options(*broker, "agent-a");
  broker->stop();
  auto status = make_paho_client(options)->connect();
  REQUIRE_FALSE(status);
  CHECK(status.error().code == Errc::unavailable);
  CHECK_THAT(status.error().message, Contains(broker->url()));
  CHECK_THAT(status.error().message, Contains("refused"));
}

TEST_CASE("a client that never connected keeps trying and connects once the broker is up",
          "[mqtt]") {
  auto broker = Broker::start();
  Options options = user_options(*broker, "agent-a");
  broker->stop();
  auto agent = make_paho_client(options);
  REQUIRE_FALSE(agent->connect());
  REQUIRE(agent->subscribe(kData, 1));  // remembered for when the link comes up

  broker->restart();
  if (!wait_kind(*agent, Event::Kind::connected, kWait)) FAIL("no connection\n" << broker->log());
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);
  published(*hub, message(kData, "hello"), *broker);
  auto got = wait_message(*agent, kData, kWait);
  REQUIRE(got);
  CHECK(got->payload == "hello");
}

TEST_CASE("publish refuses at once when max_pending_publishes are unacknowledged", "[mqtt]") {
  auto broker = Broker::start();
  Options options = user_options(*broker, "sovdev-hub");
  options.max_pending_publishes = 3;
  auto hub = connected(options, *broker);

  broker->pause();  // the connection stays open but nothing is acknowledged
  for (int i = 0; i < 3; i++) REQUIRE(hub->publish(message(kData, "chunk")));
  auto full = hub->publish(message(kData, "one too many"));
  broker->resume();
  REQUIRE_FALSE(full);
  CHECK(full.error().code == Errc::unavailable);
  CHECK_THAT(full.error().message, Contains("3 publishes"));

  REQUIRE(wait_until([&] { return hub->stats().published == 3; }, kWait));
  CHECK(hub->publish(message(kData, "room again")));
}

TEST_CASE("next() wakes the library's send thread while publishes make no progress", "[mqtt]") {
  // Paho C 1.3's send thread can sleep a second with messages queued (paho_client.cpp): while a
  // publish is unanswered, next() issues harmless commands, a few at most.
  auto broker = Broker::start();
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);
  (void)hub->next(200ms);
  CHECK(hub->stats().nudges == 0);  // nothing pending: nothing to wake

  broker->pause();  // the connection stays open but nothing is answered
  REQUIRE(hub->publish(message(kData, "chunk")));
  (void)hub->next(600ms);  // nudges at 30, 90, 210 and 450 ms, then none
  (void)hub->next(600ms);
  const uint64_t while_stalled = hub->stats().nudges;
  broker->resume();
  // Four unanswered, then no more piling up behind them on a connection gone silent.
  CHECK(while_stalled == 4);

  REQUIRE(wait_until(
      [&] {
        (void)hub->next(10ms);
        return hub->stats().published == 1;
      },
      kWait));
  (void)hub->next(200ms);
  CHECK(hub->stats().nudges == 4);  // answered: nothing pending, nothing more

  // The broker's answers to the nudges cleared the way for the next stall's.
  broker->pause();
  REQUIRE(hub->publish(message(kData, "chunk 2")));
  (void)hub->next(200ms);
  const uint64_t second = hub->stats().nudges;
  broker->resume();
  CHECK(second > 4);
  CHECK(second <= 8);
  published(*hub, message(kData, "after"), *broker);
}

TEST_CASE("a wake topic adds a second connection that the nudges publish to", "[mqtt]") {
  // Paho C's receive thread finishes a partial write only when it wakes (paho_client.cpp): a
  // message arriving on any of the process's connections does that.
  auto broker = Broker::start();
  Options options = user_options(*broker, "sovdev-hub");
  options.wake_topic = "sovdev/v1/hub-wake/" + options.client_id;
  auto hub = connected(options, *broker);
  auto observer = connected(user_options(*broker, "sovdev-hub"), *broker);
  subscribed(*observer, options.wake_topic, *broker);
  std::this_thread::sleep_for(300ms);  // the wake connection is not waited for
  while (hub->next(0ms)) {
  }

  broker->pause();
  REQUIRE(hub->publish(message(kData, "chunk")));
  (void)hub->next(600ms);  // nudges at 10, 30, 70, 150 and 310 ms
  const uint64_t while_stalled = hub->stats().nudges;
  broker->resume();
  // Past the four unanswered UNSUBSCRIBEs: the wake connection is not held up by them.
  CHECK(while_stalled >= 5);
  auto woke = wait_message(*observer, options.wake_topic, kWait);
  REQUIRE(woke);
  CHECK(woke->payload.empty());

  // The wake messages never reach the owner.
  REQUIRE(wait_until(
      [&] {
        if (auto event = hub->next(10ms)) {
          CHECK(event->message.topic != options.wake_topic);
        }
        return hub->stats().published == 1;
      },
      kWait));
  CHECK(hub->disconnect());
}

TEST_CASE("a message without a payload is published (a retained message cleared)", "[mqtt]") {
  auto broker = Broker::start();
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);
  Message clear;
  clear.topic = kData;
  clear.retained = true;
  published(*hub, clear, *broker);
  published(*hub, message(kData, ""), *broker);
  CHECK(hub->stats().published == 2);
}

TEST_CASE("the broker does not send a client packets above its max_packet_size", "[mqtt]") {
  // Also proves the v5 connect properties reach the wire (paho.mqtt.cpp #362, #444).
  auto broker = Broker::start();
  Options options = user_options(*broker, "agent-a");
  options.max_packet_size = 4096;
  auto agent = connected(options, *broker);
  subscribed(*agent, kData, *broker);
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);

  published(*hub, message(kData, std::string(10000, 'x')), *broker);
  published(*hub, message(kData, "small"), *broker);
  std::vector<Message> seen;
  auto got = wait_message(*agent, kData, kWait, &seen);
  REQUIRE(got);
  CHECK(got->payload == "small");
  CHECK(seen.size() == 1);
}

TEST_CASE("publish and subscribe refuse bad topics and QoS without touching the network",
          "[mqtt]") {
  auto broker = Broker::start();
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);
  auto wildcard = hub->publish(message("sovdev/v1/status/+", "x"));
  REQUIRE_FALSE(wildcard);
  CHECK(wildcard.error().code == Errc::invalid);
  CHECK_FALSE(hub->publish(message(std::string("sovdev/v1/status/a\0b", 20), "x")));
  Message bad_qos = message("sovdev/v1/status/agent-a", "x");
  bad_qos.qos = 3;
  CHECK_FALSE(hub->publish(bad_qos));
  CHECK_FALSE(hub->subscribe("", 1));
  // The connection survived: a protocol error would have made the broker drop it.
  published(*hub, message("sovdev/v1/status/agent-a", "still here"), *broker);
}

TEST_CASE("invalid options are reported by connect with what to fix", "[mqtt]") {
  Options options;
  options.client_id = "agent-a";
  auto status = make_paho_client(options)->connect();
  REQUIRE_FALSE(status);
  CHECK_THAT(status.error().message, Contains("no broker URL"));

  options.servers = {"http://127.0.0.1:1883"};
  status = make_paho_client(options)->connect();
  REQUIRE_FALSE(status);
  CHECK(status.error().code == Errc::invalid);
  CHECK_THAT(status.error().message, Contains("ssl://"));

  options.servers = {"ssl://127.0.0.1:8883"};
  options.tls.ca_file = "/nonexistent/ca.crt";
  status = make_paho_client(options)->connect();
  REQUIRE_FALSE(status);
  CHECK(status.error().code == Errc::io);
  CHECK_THAT(status.error().message, Contains("/nonexistent/ca.crt"));
}

TEST_CASE("after disconnect the client publishes nothing and reconnects only on request",
          "[mqtt]") {
  auto broker = Broker::start();
  auto agent = connected(user_options(*broker, "agent-a"), *broker);
  REQUIRE(agent->disconnect());
  auto refused = agent->publish(message("sovdev/v1/status/agent-a", "x"));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::unavailable);
  CHECK_FALSE(wait_kind(*agent, Event::Kind::connection_lost, 300ms));
  REQUIRE(agent->connect());
  published(*agent, message("sovdev/v1/status/agent-a", "back"), *broker);
}

}  // namespace
}  // namespace sovdev::mqtt::testing
