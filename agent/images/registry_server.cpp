#include "agent/images/registry_server.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <utility>

#include "agent/images/blob_stream.hpp"
#include "agent/images/registry_routes.hpp"
#include "common/hex.hpp"
#include "platform/fs/unique_fd.hpp"

namespace sovdev::agent::images {

// What the server's thread shares with its owner: how many bodies decode now, and the
// connections waiting (suspended) for one of them to end.
struct RegistryCounters {
  std::mutex mutex;
  unsigned open_streams = 0;
  std::deque<MHD_Connection*> waiting;
  bool stopping = false;
};

namespace {

// Bytes handed to libmicrohttpd per call: its block buffer, one per response.
constexpr size_t kBlockSize = 64 * 1024;
// What one connection may hold for a request's line and headers (and nothing else: a body is
// never read, every answer is queued once the headers are in).
constexpr size_t kConnectionMemory = 16 * 1024;
constexpr const char* kApiVersionHeader = "Docker-Distribution-API-Version";

Error listen_usage(std::string_view text, const std::string& why) {
  return make_error(Errc::usage, "listen address '" + std::string(text) + "': " + why +
                                     " (expected ADDR:PORT, e.g. 127.0.0.1:5050 or [::1]:5050)");
}

struct AddrinfoFree {
  void operator()(addrinfo* a) const { ::freeaddrinfo(a); }
};

struct ResponseFree {
  void operator()(MHD_Response* r) const { MHD_destroy_response(r); }
};
using ResponsePtr = std::unique_ptr<MHD_Response, ResponseFree>;

Expected<int> bind_listen(const ParsedListen& a, std::uint16_t& bound_port) {
  const std::string where = "listen on " + a.host + ":" + std::to_string(a.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  addrinfo* raw = nullptr;
  const int rc = ::getaddrinfo(a.host.c_str(), std::to_string(a.port).c_str(), &hints, &raw);
  std::unique_ptr<addrinfo, AddrinfoFree> found(raw);
  if (rc != 0) return make_error(Errc::usage, where + ": " + ::gai_strerror(rc));
  fs::UniqueFd fd(::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return make_error(Errc::io, where + ": socket: " + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), found->ai_addr, found->ai_addrlen) != 0) {
    const int err = errno;
    return make_error(Errc::io, where + ": " +
                                    (err == EADDRINUSE ? "the port is already in use: stop the "
                                                         "other registry or choose another port"
                                                       : std::string(std::strerror(err))));
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
  return fd.release();
}

// One stdio call per line, so lines from the server's thread never interleave with the
// program's own (its spdlog sink belongs to the main thread).
void registry_log(std::string_view level, std::string_view text) {
  const std::string line = std::string(level) + " " + std::string(text) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void log_from_mhd(void*, const char* format, va_list args) {
  char line[512];
  std::vsnprintf(line, sizeof line, format, args);
  std::string text(line);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  registry_log("warn", "images registry: " + text);
}

bool is_manifest_media_type(std::string_view type) {
  return type == "application/vnd.oci.image.manifest.v1+json" ||
         type == "application/vnd.oci.image.index.v1+json" ||
         type == "application/vnd.docker.distribution.manifest.v2+json" ||
         type == "application/vnd.docker.distribution.manifest.list.v2+json";
}

// A body being sent: its decoder, and the server whose stream count it holds.
struct OpenBody {
  RegistryCounters* counters;
  BlobStream stream;
};

}  // namespace

Expected<ParsedListen> parse_registry_listen(std::string_view text) {
  ParsedListen out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos)
      return listen_usage(text, "no ']:' after the IPv6 address");
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return listen_usage(text, "no port");
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) {
      return listen_usage(text, "an IPv6 address goes in brackets");
    }
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return listen_usage(text, "the port must be a number from 0 to 65535");
  }
  out.port = static_cast<std::uint16_t>(value);
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, out.host.c_str(), &v4) == 1) {
    out.loopback = (ntohl(v4.s_addr) >> 24) == 127;
  } else if (::inet_pton(AF_INET6, out.host.c_str(), &v6) == 1) {
    out.loopback = IN6_IS_ADDR_LOOPBACK(&v6);
  } else {
    return listen_usage(text, "the address must be numeric (127.0.0.1, ::1)");
  }
  return out;
}

// The C callbacks; a friend so they reach the server without widening the class.
struct RegistryCallbacks {
  static ssize_t read_body(void* cls, uint64_t, char* buf, size_t max) {
    auto* body = static_cast<OpenBody*>(cls);
    auto got = body->stream.read(buf, max);
    if (!got) {
      registry_log("error", "images registry: " + got.error().message + ": connection cut");
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (*got == 0) return MHD_CONTENT_READER_END_WITH_ERROR;  // asked past the end
    return static_cast<ssize_t>(*got);
  }

  // Called when the response is done with, sent whole or not: frees a decoding slot and wakes
  // the connection that has waited longest for one.
  static void close_body(void* cls) {
    std::unique_ptr<OpenBody> body(static_cast<OpenBody*>(cls));
    RegistryCounters& c = *body->counters;
    body.reset();
    release_slot(c);
  }

  static void release_slot(RegistryCounters& c) {
    const std::lock_guard<std::mutex> lock(c.mutex);
    --c.open_streams;
    if (!c.waiting.empty()) {
      MHD_resume_connection(c.waiting.front());
      c.waiting.pop_front();
    }
  }

  static ssize_t no_body(void*, uint64_t, char*, size_t) {
    return MHD_CONTENT_READER_END_WITH_ERROR;
  }

  static MHD_Result queue(MHD_Connection* connection, unsigned status, MHD_Response* response) {
    MHD_add_response_header(response, kApiVersionHeader, "registry/2.0");
    return MHD_queue_response(connection, status, response);
  }

  static MHD_Result queue_error(MHD_Connection* connection, unsigned status, std::string_view code,
                                std::string_view message) {
    const std::string body = registry_error_json(code, message);
    ResponsePtr response(MHD_create_response_from_buffer(
        body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY));
    if (!response) return MHD_NO;
    MHD_add_response_header(response.get(), MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (status == 405) MHD_add_response_header(response.get(), MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    return queue(connection, status, response.get());
  }

  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url,
                               const char* method, const char*, const char*, size_t* upload_size,
                               void**) {
    auto* self = static_cast<RegistryServer*>(cls);
    if (*upload_size != 0) {  // unreachable: answers are queued with the headers
      *upload_size = 0;
      return MHD_YES;
    }
    try {
      return answer(*self, connection, url, method);
    } catch (const std::exception& e) {  // must not unwind through the C library
      registry_log("error", std::string("images registry: ") + e.what());
      return MHD_NO;
    }
  }

  static MHD_Result answer(RegistryServer& self, MHD_Connection* connection, std::string_view url,
                           std::string_view method) {
    const Route route = route_request(method, url);
    if (route.kind == RouteKind::error) {
      return queue_error(connection, route.status, route.code, route.message);
    }
    if (route.kind == RouteKind::base) {
      static const char kEmpty[] = "{}\n";
      ResponsePtr response(MHD_create_response_from_buffer(
          sizeof kEmpty - 1, const_cast<char*>(kEmpty), MHD_RESPMEM_PERSISTENT));
      if (!response) return MHD_NO;
      MHD_add_response_header(response.get(), MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
      return queue(connection, 200, response.get());
    }
    const bool manifest = route.kind == RouteKind::manifest;
    const char* unknown = manifest ? "MANIFEST_UNKNOWN" : "BLOB_UNKNOWN";
    auto found = self.source_.find(route.digest);
    if (!found) {
      registry_log("error", "images registry: " + route.digest_text + ": " + found.error().message);
      return queue_error(connection, 500, unknown, "the agent's blob store failed (see its log)");
    }
    if (!*found || (manifest && !is_manifest_media_type((*found)->media_type))) {
      return queue_error(connection, 404, unknown, "not held by this agent: " + route.digest_text);
    }
    const HeldBlob& blob = **found;
    ResponsePtr response;
    if (method == "HEAD") {
      response.reset(
          MHD_create_response_from_callback(blob.size, 1024, &no_body, nullptr, nullptr));
    } else {
      {
        const std::lock_guard<std::mutex> lock(self.counters_->mutex);
        if (self.counters_->stopping) {
          return queue_error(connection, 503, "UNAVAILABLE", "the registry is stopping");
        }
        if (self.counters_->open_streams >= self.options_.max_streams) {
          // Called again with the same request once resumed (close_body).
          MHD_suspend_connection(connection);
          self.counters_->waiting.push_back(connection);
          return MHD_YES;
        }
        ++self.counters_->open_streams;
      }
      auto stream = BlobStream::open(blob, route.digest);
      if (!stream) {
        release_slot(*self.counters_);
        registry_log("error", "images registry: " + stream.error().message);
        return queue_error(connection, 500, unknown, "the held blob cannot be read (see the log)");
      }
      auto* body = new OpenBody{self.counters_.get(), std::move(*stream)};
      response.reset(
          MHD_create_response_from_callback(blob.size, kBlockSize, &read_body, body, &close_body));
      if (!response) {
        close_body(body);
        return MHD_NO;
      }
    }
    if (!response) return MHD_NO;
    MHD_add_response_header(response.get(), MHD_HTTP_HEADER_CONTENT_TYPE,
                            manifest ? blob.media_type.c_str() : "application/octet-stream");
    MHD_add_response_header(response.get(), "Docker-Content-Digest", route.digest_text.c_str());
    return queue(connection, 200, response.get());
  }
};

void RegistryServer::StopDaemon::operator()(MHD_Daemon* d) const {
  MHD_stop_daemon(d);
}

RegistryServer::RegistryServer(BlobSource& source, RegistryOptions options)
    : source_(source), options_(std::move(options)), counters_(new RegistryCounters) {}

RegistryServer::~RegistryServer() {
  if (daemon_) {
    // libmicrohttpd refuses to stop with connections still suspended: wake them (they are
    // answered 503) before it closes everything.
    const std::lock_guard<std::mutex> lock(counters_->mutex);
    counters_->stopping = true;
    for (MHD_Connection* c : counters_->waiting) MHD_resume_connection(c);
    counters_->waiting.clear();
  }
  daemon_.reset();
}

unsigned RegistryServer::streams_open() const {
  const std::lock_guard<std::mutex> lock(counters_->mutex);
  return counters_->open_streams;
}

size_t RegistryServer::requests_waiting() const {
  const std::lock_guard<std::mutex> lock(counters_->mutex);
  return counters_->waiting.size();
}

Expected<std::unique_ptr<RegistryServer>> RegistryServer::start(BlobSource& source,
                                                                RegistryOptions options) {
  SOVDEV_ASSIGN(const ParsedListen address, parse_registry_listen(options.listen));
  if (!address.loopback && !options.allow_remote) {
    return make_error(Errc::usage,
                      "listen address '" + options.listen +
                          "' is not a loopback address: the registry has no authentication; "
                          "use 127.0.0.1 or ::1, or allow a remote address explicitly");
  }
  if (options.max_connections == 0 || options.max_streams == 0) {
    return make_error(Errc::usage, "the registry needs at least one connection and one stream");
  }
  std::unique_ptr<RegistryServer> server(new RegistryServer(source, std::move(options)));
  SOVDEV_ASSIGN(const int fd, bind_listen(address, server->port_));
  const bool v6 = address.host.find(':') != std::string::npos;
  server->base_url_ = "http://" + (v6 ? "[" + address.host + "]" : address.host) + ":" +
                      std::to_string(server->port_);
  const RegistryOptions& o = server->options_;
  // The thread's stack: 1 MiB reserved (only touched pages count), room for a BlobSource
  // backed by SQLite.
  server->daemon_.reset(MHD_start_daemon(
      MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, nullptr,
      nullptr, &RegistryCallbacks::on_request, server.get(), MHD_OPTION_EXTERNAL_LOGGER,
      &log_from_mhd, nullptr, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
      o.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, o.idle_timeout_seconds,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, kConnectionMemory, MHD_OPTION_THREAD_STACK_SIZE,
      static_cast<size_t>(1024 * 1024), MHD_OPTION_END));
  if (!server->daemon_) {
    // The socket is leaked rather than risk closing it twice (MHD may have closed it).
    return make_error(Errc::internal, "listen on " + server->options_.listen +
                                          ": libmicrohttpd could not start (see the log)");
  }
  return server;
}

}  // namespace sovdev::agent::images
