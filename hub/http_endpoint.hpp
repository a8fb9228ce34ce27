// A small read-only HTTP endpoint (libmicrohttpd) for the hub's /metrics: GET and HEAD only,
// answered on one internal thread of the library, so a handler never runs twice at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.hpp"

struct MHD_Daemon;

namespace sovdev::hub {

struct ListenAddress {
  std::string host;  // without brackets: "127.0.0.1", "::1"
  std::uint16_t port = 0;
};

// "127.0.0.1:9469", "[::1]:9469", "localhost:0" (0: any free port). Errc::usage with an
// example when the text is not of that shape.
[[nodiscard]] Expected<ListenAddress> parse_listen_address(std::string_view text);

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Logs one line from the endpoint's thread ("warn", "error"). The programs' spdlog logger
// has a single-threaded sink (platform/cli) that only the main thread may use; this writes the
// line, in the same layout, with one stdio call, which glibc serializes with the logger's.
void log_from_endpoint(std::string_view level, std::string_view text);

class HttpEndpoint {
 public:
  // Called on the endpoint's thread with the request's path; it must not throw (what it
  // throws becomes a 500).
  using Handler = std::function<HttpResponse(std::string_view path)>;

  // Binds and listens before returning, so a bad address or a taken port is reported here
  // (Errc::usage, Errc::io) and not later in a log line.
  [[nodiscard]] static Expected<std::unique_ptr<HttpEndpoint>> start(std::string_view listen,
                                                                     Handler handler);
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;
  // Stops accepting and waits for a request being answered.
  ~HttpEndpoint();

  std::uint16_t port() const { return port_; }
  // "http://127.0.0.1:9469", "http://[::1]:9469": the bound port, not the one asked for.
  const std::string& base_url() const { return base_url_; }

 private:
  struct StopDaemon {
    void operator()(MHD_Daemon* d) const;
  };
  explicit HttpEndpoint(Handler handler) : handler_(std::move(handler)) {}
  friend struct HttpCallbacks;

  Handler handler_;
  std::uint16_t port_ = 0;
  std::string base_url_;
  // Last: stopped (its thread joined) before the handler it calls is destroyed.
  std::unique_ptr<MHD_Daemon, StopDaemon> daemon_;
};

}  // namespace sovdev::hub
