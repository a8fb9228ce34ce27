// When the first connection fails without an MQTT answer, Paho only says "TCP/TLS connect
// failure". A plain TCP probe of each server tells the user which of the two it was.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace sovdev::mqtt {

struct ServerAddress {
  std::string host;
  int port = 0;
};

// "ssl://[::1]:8883" → {"::1", 8883}; the scheme's default port when none is given.
ServerAddress parse_server(const std::string& url);

// One line per server: what a TCP connection to it did, and what that means for the user.
std::string probe_servers(const std::vector<std::string>& servers,
                          std::chrono::milliseconds timeout);

}  // namespace sovdev::mqtt
