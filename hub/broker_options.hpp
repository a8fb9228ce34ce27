// Command-line options for reaching the broker, shared by publish and serve.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "platform/cli/command.hpp"
#include "platform/mqtt/client.hpp"

namespace sovdev::hub {

struct BrokerOptions {
  std::vector<std::string> urls;
  std::string client_id;
  std::string username = "hub";
  std::string password_file;
  std::string ca_file, cert_file, key_file;
  std::string prefix = "sovdev/v1";
};

// `required`: serve needs a broker; publish only optionally talks to one.
void add_broker_options(CLI::App* cmd, BrokerOptions& options, bool required);

// What the connection is for: `serve` sends bursts of chunks, and gets a wake connection
// (mqtt::Options::wake_topic, under the prefix the hub may use).
enum class Purpose { publish, serve };

// A connected client, or the reason none could be had.
Expected<std::unique_ptr<mqtt::Client>> connect_broker(const BrokerOptions& options,
                                                       const std::string& default_client_id,
                                                       Purpose purpose);

}  // namespace sovdev::hub
