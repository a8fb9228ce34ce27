// Credentials for the Kubernetes API: from a kubeconfig file (kubectl's rules) or from the
// service account a pod runs as. Only reading happens here; the HTTPS client uses the result.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace sovdev::kube {

// A client.authentication.k8s.io/v1 (or v1beta1) exec credential plugin, as `az aks
// get-credentials` + kubelogin write them. TokenSource runs it.
struct ExecPlugin {
  std::string command;  // a bare name is looked up in PATH; a path is relative to the kubeconfig
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;  // added to the agent's environment
  std::string api_version;
  std::string interactive_mode;  // Never or IfAvailable; the agent never has a terminal
  bool provide_cluster_info = false;
  std::string install_hint;  // shown when the command cannot be started
};

struct Credentials {
  std::string server;  // "https://host:port" (no trailing slash)
  std::string ca_pem;  // CA certificates PEM; empty = system CAs
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;
  std::string proxy_url;  // cluster.proxy-url; empty = none
  // From *-data (base64) or files (paths relative to the kubeconfig's folder).
  std::string client_cert_pem, client_key_pem;
  std::string token;       // static bearer token (user.token)
  std::string token_file;  // user.tokenFile / in-cluster token: re-read when it changes
  std::optional<ExecPlugin> exec;
  std::string namespace_;  // context namespace / in-cluster namespace file, "" if none
  std::string source;      // "kubeconfig /path context foo" or "in-cluster", for error messages
};

// `context` "" = the file's current-context. Relative paths resolve against the kubeconfig's
// folder. Errors (Errc::invalid, or Errc::io for unreadable files) name the file and what is
// wrong: "context 'x' not found in /p; contexts: a, b". What the agent cannot do is refused, not
// ignored: auth-provider, username/password, impersonation (`as`), interactive exec plugins.
[[nodiscard]] Expected<Credentials> load_kubeconfig(const std::string& path,
                                                    const std::string& context = "");

struct InClusterPaths {
  std::string dir = "/var/run/secrets/kubernetes.io/serviceaccount";
};

// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT (IPv6 hosts bracketed); the token file
// (kept as token_file, so a rotated token is re-read), ca.crt and the namespace file.
[[nodiscard]] Expected<Credentials> load_in_cluster(const InClusterPaths& paths = {});

// Standard base64 (RFC 4648 with '+' and '/'); line breaks are skipped, padding is optional.
// nullopt on any other character or a truncated quantum.
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);

}  // namespace sovdev::kube
