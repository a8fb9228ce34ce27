#include "platform/mqtt/probe.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sovdev::mqtt {
namespace {

bool is_tls(const std::string& url) {
  return url.rfind("ssl://", 0) == 0 || url.rfind("mqtts://", 0) == 0;
}

// Returns "" when a TCP connection was accepted, else what happened.
std::string try_tcp(const ServerAddress& a, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(a.port);
  if (const int rc = ::getaddrinfo(a.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return std::string("cannot resolve host: ") + ::gai_strerror(rc);
  }
  std::string result = "no address";
  for (addrinfo* ai = found; ai; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    int err = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
          socklen_t len = sizeof err;
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        } else {
          err = ETIMEDOUT;
        }
      }
    }
    ::close(fd);
    if (err == 0) {
      result.clear();
      break;
    }
    result = err == ETIMEDOUT ? "no answer within " + std::to_string(timeout.count()) + " ms"
                              : std::string(std::strerror(err));
  }
  ::freeaddrinfo(found);
  return result;
}

}  // namespace

ServerAddress parse_server(const std::string& url) {
  ServerAddress a;
  a.port = is_tls(url) ? 8883 : 1883;
  const size_t scheme = url.find("://");
  std::string rest = scheme == std::string::npos ? url : url.substr(scheme + 3);
  if (const size_t slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  size_t colon = std::string::npos;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    a.host = rest.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    if (close != std::string::npos && close + 1 < rest.size() && rest[close + 1] == ':') {
      colon = close + 1;
    }
  } else {
    colon = rest.rfind(':');
    a.host = rest.substr(0, colon);
  }
  if (colon != std::string::npos) {
    try {
      a.port = std::stoi(rest.substr(colon + 1));
    } catch (...) {
      a.port = 0;
    }
  }
  return a;
}

std::string probe_servers(const std::vector<std::string>& servers,
                          std::chrono::milliseconds timeout) {
  std::string out;
  for (const auto& url : servers) {
    const std::string tcp = try_tcp(parse_server(url), timeout);
    out += out.empty() ? "" : "; ";
    if (!tcp.empty()) {
      out += url + ": " + tcp + " (is the broker running and listening there?)";
    } else if (is_tls(url)) {
      out += url +
             ": TCP connects, so the TLS handshake failed (does tls.ca_file hold the CA that "
             "signed the broker's certificate, does that certificate name this host, and does "
             "the broker accept the client certificate in tls.cert_file?)";
    } else {
      out += url +
             ": TCP connects, but the broker gave no MQTT answer (is it an MQTT listener, "
             "or a TLS one that needs ssl://?)";
    }
  }
  return out;
}

}  // namespace sovdev::mqtt
