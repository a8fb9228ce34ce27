// The bearer token (and, from an exec plugin, the client certificate) to send with the next
// request: a static token, a token file re-read when it rotates, or an exec credential plugin
// run again when its credential expires or the API server refused it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "platform/kube/kubeconfig.hpp"

namespace sovdev::kube {

struct TokenSourceOptions {
  // A plugin that has not exited by then is killed (kubelogin's device code flow would wait
  // forever for a human).
  std::chrono::milliseconds exec_timeout{30000};
  // An exec credential counts as expired this long before its expirationTimestamp, so a request
  // in flight never carries a token that expires on the way (unless the plugin hands out one
  // that is already that close: it is then used until its expirationTimestamp).
  std::chrono::seconds expiry_margin{60};
  // Unix seconds; the system clock when empty.
  std::function<int64_t()> now;
};

// What one exec plugin run gave.
struct ExecCredential {
  std::string token;
  std::string client_cert_pem, client_key_pem;
  std::optional<int64_t> expires_at;  // unix seconds; none = valid until invalidate()
};

// Thread-safe: one source may serve several requests at once.
class TokenSource {
 public:
  explicit TokenSource(const Credentials& credentials, TokenSourceOptions options = {});

  // The bearer token to send now; "" when the credentials carry none (client certificate only,
  // or anonymous). Runs the exec plugin when there is no valid cached credential.
  [[nodiscard]] Expected<std::string> token();
  // Forgets the cached exec credential and the token file's content: call after a 401.
  void invalidate();

  // The client certificate and key to present now: the exec plugin's when its last run returned
  // them (so call token() first), else the kubeconfig's; "" if none. When they change, the TLS
  // connection must be rebuilt.
  std::string client_cert_pem() const;
  std::string client_key_pem() const;

 private:
  int64_t now() const;
  Expected<std::string> file_token();
  Expected<std::string> exec_token();

  Credentials credentials_;
  TokenSourceOptions options_;
  mutable std::mutex mutex_;
  // The token file as last read, and what identified its version.
  struct FileVersion {
    uint64_t inode = 0, size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileVersion&) const = default;
  };
  std::optional<FileVersion> file_version_;
  std::string file_token_;
  std::optional<ExecCredential> exec_;
  int64_t exec_valid_until_ = 0;  // unix seconds, when exec_ has an expiry
};

// Runs the plugin once: KUBERNETES_EXEC_INFO set, stdin /dev/null, stdout parsed as an
// ExecCredential. `credentials` supplies the cluster for provideClusterInfo. Errors name the
// command and carry the tail of its stderr.
[[nodiscard]] Expected<ExecCredential> run_exec_plugin(const Credentials& credentials,
                                                       std::chrono::milliseconds timeout);

// RFC 3339 ("2024-05-01T12:00:00Z", "2024-05-01T14:00:00.5+02:00") to unix seconds.
std::optional<int64_t> parse_rfc3339(const std::string& text);

}  // namespace sovdev::kube
