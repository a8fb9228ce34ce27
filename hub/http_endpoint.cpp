#include "hub/http_endpoint.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>

#include "platform/fs/unique_fd.hpp"

namespace sovdev::hub {
namespace {

Error usage(std::string_view text, const std::string& why) {
  return make_error(Errc::usage, "listen address '" + std::string(text) + "': " + why +
                                     " (expected ADDR:PORT, e.g. 127.0.0.1:9469 or [::1]:9469)");
}

struct FreeAddrinfo {
  void operator()(addrinfo* a) const { ::freeaddrinfo(a); }
};

struct DestroyResponse {
  void operator()(MHD_Response* r) const { MHD_destroy_response(r); }
};

// What the bind failed with, as advice for the operator.
std::string bind_advice(int err, const ListenAddress& a) {
  switch (err) {
    case EADDRINUSE:
      return "port " + std::to_string(a.port) + " is already in use (another sovdev-hub or " +
             "exporter?): choose another port, or 0 for any free one";
    case EADDRNOTAVAIL: return a.host + " is not an address of this machine";
    case EACCES: return "ports below 1024 need privileges: choose a higher one";
    default: return std::strerror(err);
  }
}

// Binds and listens on the address, returning the socket and the port it got.
Expected<fs::UniqueFd> listen_on(const ListenAddress& a, std::uint16_t& bound_port) {
  const std::string where = "listen on " + a.host + ":" + std::to_string(a.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* raw = nullptr;
  const int rc = ::getaddrinfo(a.host.c_str(), std::to_string(a.port).c_str(), &hints, &raw);
  std::unique_ptr<addrinfo, FreeAddrinfo> found(raw);
  if (rc != 0) {
    return make_error(Errc::usage,
                      where + ": unknown address " + a.host + " (" + ::gai_strerror(rc) + ")");
  }
  fs::UniqueFd fd(::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return make_error(Errc::io, where + ": socket: " + std::strerror(errno));
  // A restarted hub gets its port back while old connections sit in TIME_WAIT; it does not let
  // two processes listen on one port (that would be SO_REUSEPORT).
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), found->ai_addr, found->ai_addrlen) != 0) {
    return make_error(Errc::io, where + ": " + bind_advice(errno, a));
  }
  if (::listen(fd.get(), 16) != 0) return make_error(Errc::io, where + ": " + std::strerror(errno));
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return make_error(Errc::io, where + ": getsockname: " + std::strerror(errno));
  }
  bound_port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
  return fd;
}

void log_mhd(void*, const char* format, va_list args) {
  char line[512];
  std::vsnprintf(line, sizeof line, format, args);
  std::string text(line);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  log_from_endpoint("warn", "metrics endpoint: " + text);
}

}  // namespace

void log_from_endpoint(std::string_view level, std::string_view text) {
  // The layout of platform/cli's pattern "%Y-%m-%dT%H:%M:%S.%e %l %v" (local time).
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm local{};
  ::localtime_r(&seconds, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &local);
  const std::string line = std::string(stamp) + "." + (millis < 100 ? "0" : "") +
                           (millis < 10 ? "0" : "") + std::to_string(millis) + " " +
                           std::string(level) + " " + std::string(text) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

Expected<ListenAddress> parse_listen_address(std::string_view text) {
  ListenAddress out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos) return usage(text, "no ']:' after the IPv6 address");
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return usage(text, "no port");
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) {
      return usage(text, "an IPv6 address goes in brackets");
    }
    port = text.substr(colon + 1);
  }
  if (out.host.empty()) return usage(text, "no address (0.0.0.0 or [::] for every interface)");
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return usage(text, "the port must be a number from 0 to 65535");
  }
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

// The C callbacks; a friend so they reach the handler without widening the class.
struct HttpCallbacks {
  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url,
                               const char* method, const char*, const char*, size_t* upload_size,
                               void** request_state) {
    // MHD calls first when the headers are in, then again for the body; answer on the
    // second call, ignoring a body nobody should send to a GET.
    static int headers_seen;
    if (*request_state == nullptr) {
      *request_state = &headers_seen;
      return MHD_YES;
    }
    if (*upload_size != 0) {
      *upload_size = 0;
      return MHD_YES;
    }
    auto* self = static_cast<HttpEndpoint*>(cls);
    HttpResponse r;
    const bool readable = std::strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                          std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!readable) {
      r = {MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8", "only GET and HEAD\n"};
    } else {
      try {
        r = self->handler_(url);
      } catch (const std::exception& e) {
        // An exception must not unwind through the C library.
        r = {MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8",
             std::string(e.what()) + "\n"};
      } catch (...) {
        r = {MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", "internal error\n"};
      }
    }
    std::unique_ptr<MHD_Response, DestroyResponse> response(
        MHD_create_response_from_buffer(r.body.size(), r.body.data(), MHD_RESPMEM_MUST_COPY));
    if (!response) return MHD_NO;  // out of memory: MHD closes the connection
    MHD_add_response_header(response.get(), MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
    if (!readable) MHD_add_response_header(response.get(), MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    // MHD keeps its own reference until the response is sent; ours goes at scope end.
    return MHD_queue_response(connection, r.status, response.get());
  }
};

void HttpEndpoint::StopDaemon::operator()(MHD_Daemon* d) const {
  MHD_stop_daemon(d);
}

HttpEndpoint::~HttpEndpoint() = default;

Expected<std::unique_ptr<HttpEndpoint>> HttpEndpoint::start(std::string_view listen,
                                                            Handler handler) {
  SOVDEV_ASSIGN(const ListenAddress address, parse_listen_address(listen));
  std::unique_ptr<HttpEndpoint> endpoint(new HttpEndpoint(std::move(handler)));
  SOVDEV_ASSIGN(fs::UniqueFd fd, listen_on(address, endpoint->port_));
  const bool v6 = address.host.find(':') != std::string::npos;
  endpoint->base_url_ = "http://" + (v6 ? "[" + address.host + "]" : address.host) + ":" +
                        std::to_string(endpoint->port_);
  // From here MHD owns the socket: MHD_stop_daemon closes it. Should MHD_start_daemon fail it
  // is leaked rather than closed twice (the hub exits on this error anyway).
  const int listen_fd = fd.release();
  endpoint->daemon_.reset(MHD_start_daemon(
      MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, nullptr, nullptr,
      &HttpCallbacks::on_request, endpoint.get(), MHD_OPTION_EXTERNAL_LOGGER, &log_mhd, nullptr,
      MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_CONNECTION_LIMIT, 32u,
      MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END));
  if (!endpoint->daemon_) {
    return make_error(Errc::internal, "listen on " + std::string(listen) +
                                          ": libmicrohttpd could not start (see the log)");
  }
  return endpoint;
}

}  // namespace sovdev::hub
