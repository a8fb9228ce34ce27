#include "tests/mqtt/fixture.hpp"

#include <catch2/catch.hpp>

#include <atomic>

#include "tests/support/process.hpp"

namespace sovdev::mqtt::testing {
namespace {

std::string unique_id(const std::string& user) {
  static std::atomic<int> counter{0};
  return user + "-test-" + std::to_string(counter++);
}

std::string password_of(const Broker& broker, const std::string& user) {
  for (const auto& u : broker.options().users) {
    if (u.name == user) return u.password;
  }
  return {};
}

}  // namespace

BrokerOptions with(int features) {
  BrokerOptions o;
  o.tls = (features & kTls) != 0;
  o.acl = (features & kAcl) != 0;
  return o;
}

Options user_options(const Broker& broker, const std::string& user, const std::string& client_id) {
  Options o;
  o.servers = {broker.url()};
  o.client_id = client_id.empty() ? unique_id(user) : client_id;
  o.username = user;
  o.password = password_of(broker, user);
  o.connect_timeout = 5s;
  o.reconnect_min = 50ms;
  o.reconnect_max = 500ms;
  return o;
}

Options tls_options(const Broker& broker, const std::string& cert_name,
                    const std::string& client_id) {
  Options o = user_options(broker, cert_name, client_id);
  o.servers = {broker.tls_url()};
  o.username.clear();
  o.password.clear();
  o.tls.ca_file = broker.cert_dir() + "/ca.crt";
  o.tls.cert_file = broker.cert_dir() + "/" + cert_name + ".crt";
  o.tls.key_file = broker.cert_dir() + "/" + cert_name + ".key";
  return o;
}

std::unique_ptr<Client> connected(const Options& options, const Broker& broker) {
  auto client = make_paho_client(options);
  auto status = client->connect();
  if (!status) FAIL(status.error().message << "\nbroker log:\n" << broker.log());
  return client;
}

void subscribed(Client& client, const std::string& filter, const Broker& broker) {
  auto status = client.subscribe(filter, 1);
  if (!status) FAIL(status.error().message << "\nbroker log:\n" << broker.log());
}

void published(Client& client, const Message& m, const Broker& broker) {
  const uint64_t before = client.stats().published;
  auto status = client.publish(m);
  if (!status) FAIL(status.error().message << "\nbroker log:\n" << broker.log());
  // Acks arrive on the library's thread; next() is not needed for them.
  if (!sovdev::testing::wait_until([&] { return client.stats().published > before; }, kWait)) {
    FAIL("no ack for the publish to " << m.topic << "\nbroker log:\n" << broker.log());
  }
}

Message message(const std::string& topic, const std::string& payload, bool retained) {
  Message m;
  m.topic = topic;
  m.payload = payload;
  m.retained = retained;
  return m;
}

std::optional<Event> wait_for(Client& client, const std::function<bool(const Event&)>& match,
                              std::chrono::milliseconds timeout, std::vector<Message>* seen) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) return std::nullopt;
    auto event = client.next(left);
    if (!event) continue;
    if (seen && event->kind == Event::Kind::message) seen->push_back(event->message);
    if (match(*event)) return event;
  }
}

std::optional<Message> wait_message(Client& client, const std::string& topic,
                                    std::chrono::milliseconds timeout, std::vector<Message>* seen) {
  auto event = wait_for(
      client,
      [&](const Event& e) { return e.kind == Event::Kind::message && e.message.topic == topic; },
      timeout, seen);
  if (!event) return std::nullopt;
  return event->message;
}

bool wait_kind(Client& client, Event::Kind kind, std::chrono::milliseconds timeout) {
  return wait_for(
             client, [&](const Event& e) { return e.kind == kind; }, timeout)
      .has_value();
}

}  // namespace sovdev::mqtt::testing
