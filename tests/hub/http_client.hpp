// A minimal HTTP/1.0 client for the tests, so they check the hub's endpoint byte for byte
// without a client library that might smooth over what a scraper would see.
#pragma once

#include <string>

namespace sovdev::testing {

struct HttpReply {
  int status = 0;       // 0: no connection
  std::string headers;  // the header block, lines as sent
  std::string body;
  std::string header(const std::string& name) const;  // case-insensitive, "" when absent
};

// `host` is an address ("127.0.0.1", "::1"); `target` the path and query.
HttpReply http_request(const std::string& host, int port, const std::string& method,
                       const std::string& target);

}  // namespace sovdev::testing
