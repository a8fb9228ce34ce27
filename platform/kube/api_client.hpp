// HTTPS to the Kubernetes API over libcurl: one connection kept alive, the credentials of a
// kubeconfig or a service account, a retry with fresh credentials after a 401. The same code
// talks to a real cluster and to tests/fake-kube-apiserver.
#pragma once

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "platform/kube/kubeconfig.hpp"
#include "platform/kube/token_source.hpp"

namespace sovdev::kube {

struct HttpResponse {
  long code = 0;
  std::string body;
};

struct ApiClientOptions {
  std::chrono::milliseconds timeout{30000};  // a whole request
  std::chrono::milliseconds connect_timeout{10000};
  // Every answer, 2xx included, filtered or not: more is refused (Errc::too_large). A LIST of
  // one kind in a large namespace fits (etcd caps an object near 1.5 MiB); the agent's memory
  // while one arrives is up to ~2x this (the body grows by doubling), under its MemoryMax=64M.
  size_t max_body = 16 * 1024 * 1024;
  int attempts = 4;                            // for a failed exchange, 429 or 5xx
  std::chrono::milliseconds retry_pause{250};  // doubled after each attempt
};

// A server URL's parts: "https://[::1]:6443/prefix" → https, [::1], 6443, /prefix.
struct ServerAddress {
  std::string scheme, host, port, rest;
};
Expected<ServerAddress> split_server(const std::string& server);

class ApiClient {
 public:
  static Expected<std::unique_ptr<ApiClient>> create(const Credentials& credentials,
                                                     ApiClientOptions options = {});
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // `path` starts with '/' and may carry a query. Any HTTP status is a response; only a failed
  // exchange (no connection, TLS, timeout, oversized body) is an error (Errc::unavailable).
  // With `keep`, a successful answer's body holds only those top-level members of the JSON
  // object, filtered as it arrives (error answers are kept whole).
  Expected<HttpResponse> request(std::string_view method, const std::string& path,
                                 std::string_view body = {}, std::string_view content_type = {},
                                 const std::set<std::string>* keep = nullptr);
  Expected<HttpResponse> get(const std::string& path) { return request("GET", path); }

  const std::string& server() const { return credentials_.server; }
  // What requests go to: server(), or https://<tls-server-name>:<port> connected to server().
  const std::string& base_url() const { return base_url_; }
  const std::string& source() const { return credentials_.source; }

 private:
  ApiClient(const Credentials& credentials, ApiClientOptions options);
  Status configure_tls();
  Expected<HttpResponse> exchange(std::string_view method, const std::string& path,
                                  std::string_view body, std::string_view content_type,
                                  const std::string& token, const std::set<std::string>* keep);

  Credentials credentials_;
  ApiClientOptions options_;
  TokenSource tokens_;
  void* curl_ = nullptr;        // CURL*, kept for connection reuse
  void* connect_to_ = nullptr;  // curl_slist* of CURLOPT_CONNECT_TO (tls-server-name)
  std::string base_url_;        // the server, or https://<tls-server-name>:<port>
  std::string host_header_;     // "Host: <server's host>" with tls-server-name
  std::string cert_in_use_;
};

// The API server's answer to a failed request as an error: "PATCH <path>: 422 Invalid:
// <the server's message without quoted values> (fields: <paths>)"; 401/403 are Errc::denied
// with what permission is missing. Never the body itself: it may echo a Secret's data.
Error api_error(std::string_view method, const std::string& path, const HttpResponse& response);

// A Status message with every quoted value and every "Invalid value: X" replaced by "…",
// at most ~300 bytes.
std::string without_values(std::string_view message);
}  // namespace sovdev::kube
