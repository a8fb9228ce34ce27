// TLS with client certificates, and the topic ACL of deploy/mosquitto/acl. A v5 publish to a
// denied topic gets a refusing reason code from mosquitto and is silently dropped by other
// brokers; either way the forbidden message must never reach a reader, which is what these
// tests check, with a second client.
#include <catch2/catch.hpp>

#include <map>

#include "tests/mqtt/fixture.hpp"
#include "tests/support/process.hpp"

namespace sovdev::mqtt::testing {
namespace {

using Catch::Matchers::Contains;
using sovdev::testing::wait_until;

std::string data_topic(const std::string& agent) {
  return "sovdev/v1/agent/" + agent + "/data";
}

void check_none_forged(const std::vector<Message>& seen) {
  for (const auto& m : seen) {
    INFO(m.topic);
    CHECK(m.payload != "forged");
  }
}

TEST_CASE("over TLS the client certificate's CN is the user name the ACL applies to",
          "[mqtt][tls]") {
  auto broker = Broker::start(with(kTls | kAcl));
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);
  subscribed(*hub, "sovdev/v1/status/+", *broker);

  Options options = tls_options(*broker, "agent-a");
  // Claiming to be the hub changes nothing: the TLS listener takes the name from the CN.
  options.username = "sovdev-hub";
  options.password = "hub-secret";
  auto agent = connected(options, *broker);
  REQUIRE(agent->publish(message("sovdev/v1/status/agent-b", "forged")));
  published(*agent, message("sovdev/v1/status/agent-a", "online over TLS"), *broker);

  std::vector<Message> seen;
  auto got = wait_message(*hub, "sovdev/v1/status/agent-a", kWait, &seen);
  REQUIRE(got);
  CHECK(got->payload == "online over TLS");
  check_none_forged(seen);
}

TEST_CASE("the TLS listener refuses a client without a certificate", "[mqtt][tls]") {
  auto broker = Broker::start(with(kTls));
  Options options = tls_options(*broker, "agent-a");
  options.tls.cert_file.clear();
  options.tls.key_file.clear();
  options.username = "agent-a";
  options.password = "secret-a";
  auto status = make_paho_client(options)->connect();
  REQUIRE_FALSE(status);
  CHECK(status.error().code == Errc::unavailable);
  CHECK_THAT(status.error().message, Contains("TLS handshake failed"));
}

TEST_CASE("a broker certificate from another CA fails the connection with a TLS hint",
          "[mqtt][tls]") {
  auto broker = Broker::start(with(kTls));
  sovdev::testing::TempDir other;
  auto made = sovdev::testing::run(
      {"/bin/sh", sovdev::testing::source_dir() + "/deploy/mosquitto/make-certs.sh",
       other / "certs", "agent-a"});
  REQUIRE(made.exit_code == 0);
  Options options = tls_options(*broker, "agent-a");
  options.tls.ca_file = other / "certs/ca.crt";
  auto status = make_paho_client(options)->connect();
  REQUIRE_FALSE(status);
  CHECK(status.error().code == Errc::unavailable);
  CHECK_THAT(status.error().message, Contains(broker->tls_url()));
  CHECK_THAT(status.error().message, Contains("tls.ca_file"));
}

TEST_CASE("an agent cannot publish another agent's status or fetch topic, nor a catalog",
          "[mqtt][acl]") {
  auto broker = Broker::start(with(kAcl));
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);
  subscribed(*hub, "sovdev/v1/status/+", *broker);
  subscribed(*hub, "$share/hubs/sovdev/v1/fetch/+", *broker);
  subscribed(*hub, "sovdev/v1/catalog/+", *broker);

  auto agent = connected(user_options(*broker, "agent-a"), *broker);
  // The client cannot know the ACL: the broker refuses these, not publish().
  for (const char* topic :
       {"sovdev/v1/status/agent-b", "sovdev/v1/fetch/agent-b", "sovdev/v1/catalog/edge"}) {
    REQUIRE(agent->publish(message(topic, "forged")));
  }
  // Published after the forged ones on the same connection: once these arrive, a forged
  // message that got through would have arrived too.
  REQUIRE(agent->publish(message("sovdev/v1/status/agent-a", "mine")));
  REQUIRE(agent->publish(message("sovdev/v1/fetch/agent-a", "mine")));

  std::vector<Message> seen;
  REQUIRE(wait_message(*hub, "sovdev/v1/fetch/agent-a", kWait, &seen));
  if (seen.size() < 2) REQUIRE(wait_message(*hub, "sovdev/v1/status/agent-a", kWait, &seen));
  CHECK(seen.size() == 2);
  check_none_forged(seen);
  REQUIRE(wait_until([&] { return agent->stats().published == 2; }, kWait));
  // mosquitto answers the forged ones with "not authorized"; a broker that drops them silently
  // acknowledges them instead. Both keep them from readers.
  const auto failed = agent->stats().publish_failed;
  CHECK((failed == 3 || failed == 0));
}

TEST_CASE("an agent cannot read another agent's data topic, and the hub reads every status",
          "[mqtt][acl]") {
  auto broker = Broker::start(with(kAcl));
  auto b = connected(user_options(*broker, "agent-b"), *broker);
  // Refused at once, or accepted and filtered on delivery: both must keep a's data from b.
  (void)b->subscribe(data_topic("agent-a"), 1);
  (void)b->subscribe("sovdev/v1/agent/+/data", 1);
  subscribed(*b, data_topic("agent-b"), *broker);
  auto a = connected(user_options(*broker, "agent-a"), *broker);
  subscribed(*a, data_topic("agent-a"), *broker);
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);
  subscribed(*hub, "sovdev/v1/status/+", *broker);

  published(*hub, message(data_topic("agent-a"), "for a only"), *broker);
  published(*hub, message(data_topic("agent-b"), "for b"), *broker);
  std::vector<Message> seen_by_b;
  REQUIRE(wait_message(*b, data_topic("agent-b"), kWait, &seen_by_b));
  for (const auto& m : seen_by_b) CHECK(m.payload != "for a only");
  auto got = wait_message(*a, data_topic("agent-a"), kWait);
  REQUIRE(got);
  CHECK(got->payload == "for a only");

  published(*a, message("sovdev/v1/status/agent-a", "a healthy", true), *broker);
  published(*b, message("sovdev/v1/status/agent-b", "b healthy", true), *broker);
  std::vector<Message> statuses;
  REQUIRE(wait_message(*hub, "sovdev/v1/status/agent-b", kWait, &statuses));
  if (statuses.size() < 2)
    REQUIRE(wait_message(*hub, "sovdev/v1/status/agent-a", kWait, &statuses));
  CHECK(statuses.size() == 2);
}

TEST_CASE("two hub replicas split the fetch requests of a shared subscription", "[mqtt][acl]") {
  auto broker = Broker::start(with(kAcl));
  auto hub1 = connected(user_options(*broker, "sovdev-hub"), *broker);
  auto hub2 = connected(user_options(*broker, "sovdev-hub"), *broker);
  subscribed(*hub1, "$share/hubs/sovdev/v1/fetch/+", *broker);
  subscribed(*hub2, "$share/hubs/sovdev/v1/fetch/+", *broker);
  auto agent = connected(user_options(*broker, "agent-a"), *broker);
  for (int i = 0; i < 10; i++) {
    REQUIRE(agent->publish(message("sovdev/v1/fetch/agent-a", "request " + std::to_string(i))));
  }

  std::map<std::string, int> deliveries;
  int to_hub1 = 0, to_hub2 = 0;
  const bool all = wait_until(
      [&] {
        for (auto* hub : {hub1.get(), hub2.get()}) {
          while (auto e = hub->next(0ms)) {
            if (e->kind != Event::Kind::message) continue;
            deliveries[e->message.payload.str()]++;
            (hub == hub1.get() ? to_hub1 : to_hub2)++;
          }
        }
        return to_hub1 + to_hub2 >= 10;
      },
      kWait);
  REQUIRE(all);
  CHECK(deliveries.size() == 10);
  for (const auto& [payload, count] : deliveries) CHECK(count == 1);
  CHECK(to_hub1 > 0);
  CHECK(to_hub2 > 0);
}

TEST_CASE("an agent outside the hub's share group cannot take the hub's fetch requests",
          "[mqtt][acl]") {
  // mosquitto's acl_file never refuses a SUBSCRIBE; it checks reads on delivery. A shared
  // subscription member that may not read the message still gets its turn, and the message
  // is dropped. So the hub's group name must be one agents cannot guess.
  auto broker = Broker::start(with(kAcl));
  auto hub = connected(user_options(*broker, "sovdev-hub"), *broker);
  subscribed(*hub, "$share/hub-7f3a9c/sovdev/v1/fetch/+", *broker);
  auto b = connected(user_options(*broker, "agent-b"), *broker);
  (void)b->subscribe("$share/hubs/sovdev/v1/fetch/+", 1);
  (void)b->subscribe("sovdev/v1/fetch/+", 1);
  auto a = connected(user_options(*broker, "agent-a"), *broker);
  for (int i = 0; i < 10; i++) {
    REQUIRE(a->publish(message("sovdev/v1/fetch/agent-a", "request " + std::to_string(i))));
  }
  int to_hub = 0;
  REQUIRE(wait_until(
      [&] {
        while (auto e = hub->next(0ms)) to_hub += e->kind == Event::Kind::message ? 1 : 0;
        return to_hub == 10;
      },
      kWait));
  // Nor may b read them itself.
  std::vector<Message> seen_by_b;
  CHECK_FALSE(wait_message(*b, "sovdev/v1/fetch/agent-a", 200ms, &seen_by_b));
  CHECK(seen_by_b.empty());
}

}  // namespace
}  // namespace sovdev::mqtt::testing
