#include "hub/broker_options.hpp"

#include <unistd.h>

#include "bundles/messages.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::hub {

void add_broker_options(CLI::App* cmd, BrokerOptions& o, bool required) {
  auto* urls = cmd->add_option("--broker", o.urls,
                               "Broker URL(s), tcp://host:1883 or ssl://host:8883, tried in order");
  if (required) urls->required();
  cmd->add_option("--client-id", o.client_id, "MQTT client id (default: sovdev-hub-<pid>)");
  cmd->add_option("--username", o.username, "Broker user name")->capture_default_str();
  cmd->add_option("--password-file", o.password_file, "File holding the broker password")
      ->check(CLI::ExistingFile);
  cmd->add_option("--ca", o.ca_file, "CA certificate of the broker (TLS)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--cert", o.cert_file, "Client certificate (TLS)")->check(CLI::ExistingFile);
  cmd->add_option("--cert-key", o.key_file, "Client certificate's key (TLS)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--prefix", o.prefix, "Topic prefix")->capture_default_str();
}

Expected<std::unique_ptr<mqtt::Client>> connect_broker(const BrokerOptions& o,
                                                       const std::string& default_client_id,
                                                       Purpose purpose) {
  mqtt::Options options;
  options.servers = o.urls;
  options.client_id =
      o.client_id.empty() ? default_client_id + "-" + std::to_string(::getpid()) : o.client_id;
  options.username = o.username;
  if (!o.password_file.empty()) {
    SOVDEV_ASSIGN(std::string password, fs::read_file(o.password_file, 4096));
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
      password.pop_back();
    }
    options.password = std::move(password);
  }
  options.tls = {o.ca_file, o.cert_file, o.key_file};
  // The hub answers many agents: allow many unacknowledged publishes before refusing.
  options.max_pending_publishes = 4096;
  // Requests waiting to be answered: 200 agents with 16-chunk windows may each have one request
  // per chunk outstanding, and a dropped request stalls its agent for a request_timeout (10 s by
  // default). A request is a few hundred bytes: 8192 of them are ~3 MiB at most, on the hub.
  options.queue_capacity = 8192;
  // ... and in bytes: 16 MiB, whatever they are (issue #19: 400 × 1.1 MB requests were
  // queued whole). Requests and statuses larger than any real one are dropped on arrival.
  options.queue_bytes = 16u << 20;
  options.topic_limits = {{o.prefix + "/fetch/+", kMaxFetchRequestBytes},
                          {o.prefix + "/status/+", kMaxStatusBytes}};
  // Bursts of chunks fill the socket's buffer: see mqtt::Options::wake_topic.
  if (purpose == Purpose::serve) {
    options.wake_topic = o.prefix + "/hub-wake/" + options.client_id;
    // Room for a few windows of 8 chunks of up to 1 MiB for many agents at once.
    options.send_buffer_bytes = 4u << 20;
  }
  auto client = mqtt::make_paho_client(options);
  SOVDEV_TRY(client->connect());
  return client;
}

}  // namespace sovdev::hub
