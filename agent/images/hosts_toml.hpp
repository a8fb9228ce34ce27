// The container runtime's side of the hand-over: the mirror configuration that sends its pulls
// of the bundles' registries to the agent's loopback registry (agent/images/registry_server.hpp).
//  - containerd and MicroK8s: `<dir>/<registry>/hosts.toml` (config_path; MicroK8s:
//    /var/snap/microk8s/current/args/certs.d), the upstream registry kept as the fallback.
//  - k3s and RKE2: /etc/rancher/k3s/registries.yaml (`mirrors:`), read at their start.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace sovdev::agent::images {

// A registry host as image references name it ("docker.io", "ghcr.io", "registry.example.com",
// "localhost:5000"): letters, digits, '.', '-', an optional ":port"; it names a folder.
bool valid_registry_host(std::string_view registry);

// The registry's own endpoint, containerd's `server`: https://<registry>, and for docker.io
// https://registry-1.docker.io.
std::string upstream_server(std::string_view registry);

// The text of `<dir>/<registry>/hosts.toml` sending pulls to `mirror_url`
// ("http://127.0.0.1:5050"), with capabilities pull and resolve.
[[nodiscard]] Expected<std::string> hosts_toml_text(std::string_view registry,
                                                    std::string_view mirror_url);

// Writes `<dir>/<registry>/hosts.toml` for each registry (folders 0755, files 0644, each
// replaced atomically). Errc::usage for a registry name that is not a host, Errc::io on disk.
[[nodiscard]] Status write_hosts_toml(const std::string& dir,
                                      const std::vector<std::string>& registries,
                                      std::string_view mirror_url);

// k3s/RKE2's registries.yaml mirroring each registry to `mirror_url`:
//   mirrors:
//     "docker.io":
//       endpoint:
//         - "http://127.0.0.1:5050"
[[nodiscard]] Expected<std::string> registries_yaml_text(const std::vector<std::string>& registries,
                                                         std::string_view mirror_url);

}  // namespace sovdev::agent::images
