// Helpers for the MQTT tests: clients for the users of tests/support/broker.hpp, and waits
// with deadlines on what a client receives.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "platform/mqtt/client.hpp"
#include "tests/support/broker.hpp"

namespace sovdev::mqtt::testing {

using namespace std::chrono_literals;
using sovdev::testing::Broker;
using sovdev::testing::BrokerOptions;

inline constexpr auto kWait = 10s;  // deadline for anything that should happen now

enum BrokerFeature { kTls = 1, kAcl = 2 };
// Broker options with the TLS listener and/or the ACL.
BrokerOptions with(int features);

// Options for one of the broker's password-file users, with fast reconnects.
Options user_options(const Broker& broker, const std::string& user,
                     const std::string& client_id = "");
// The same user over TLS with its client certificate, and no password.
Options tls_options(const Broker& broker, const std::string& cert_name,
                    const std::string& client_id = "");

// Connects or fails the test with the error and the broker's log.
std::unique_ptr<Client> connected(const Options& options, const Broker& broker);
// Subscribes or fails the test.
void subscribed(Client& client, const std::string& filter, const Broker& broker);
// Publishes (QoS 1 unless told) and waits for the broker's ack, or fails the test.
void published(Client& client, const Message& message, const Broker& broker);
Message message(const std::string& topic, const std::string& payload, bool retained = false);

// Drains events until one satisfies `match`; nullopt when `timeout` passes first. Every
// message seen on the way is appended to `seen` when given.
std::optional<Event> wait_for(Client& client, const std::function<bool(const Event&)>& match,
                              std::chrono::milliseconds timeout,
                              std::vector<Message>* seen = nullptr);
std::optional<Message> wait_message(Client& client, const std::string& topic,
                                    std::chrono::milliseconds timeout,
                                    std::vector<Message>* seen = nullptr);
bool wait_kind(Client& client, Event::Kind kind, std::chrono::milliseconds timeout);

}  // namespace sovdev::mqtt::testing
