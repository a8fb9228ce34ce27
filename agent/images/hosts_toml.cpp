#include "agent/images/hosts_toml.hpp"

#include "platform/fs/files.hpp"

namespace sovdev::agent::images {
namespace {

// The mirror URL goes between double quotes in TOML and YAML: only plain URL characters.
Status check_mirror_url(std::string_view url) {
  const bool scheme = url.substr(0, 7) == "http://" || url.substr(0, 8) == "https://";
  bool plain = !url.empty();
  for (char c : url) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '/' || c == '[' || c == ']' ||
                    c == '_';
    plain = plain && ok;
  }
  if (!scheme || !plain) {
    return make_error(Errc::usage, "mirror URL '" + std::string(url) +
                                       "': expected http://ADDR:PORT, e.g. http://127.0.0.1:5050");
  }
  return {};
}

Status check_registry(std::string_view registry) {
  if (!valid_registry_host(registry)) {
    return make_error(Errc::usage, "registry '" + std::string(registry) +
                                       "': expected a host as an image reference names it "
                                       "(docker.io, ghcr.io, localhost:5000)");
  }
  return {};
}

}  // namespace

bool valid_registry_host(std::string_view registry) {
  if (registry.empty() || registry.size() > 255) return false;
  const size_t colon = registry.find(':');
  const std::string_view host = registry.substr(0, colon);
  if (host.empty() || host.front() == '.' || host.front() == '-' || host.back() == '.') {
    return false;
  }
  for (size_t i = 0; i < host.size(); ++i) {
    const char c = host[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.';
    if (!ok) return false;
    if (c == '.' && i + 1 < host.size() && host[i + 1] == '.') return false;  // no ".."
  }
  if (colon == std::string_view::npos) return true;
  const std::string_view port = registry.substr(colon + 1);
  if (port.empty() || port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string upstream_server(std::string_view registry) {
  if (registry == "docker.io") return "https://registry-1.docker.io";
  return "https://" + std::string(registry);
}

Expected<std::string> hosts_toml_text(std::string_view registry, std::string_view mirror_url) {
  SOVDEV_TRY(check_registry(registry));
  SOVDEV_TRY(check_mirror_url(mirror_url));
  return "# Written by sovdev-agent: pull the images its bundles carry from its loopback\n"
         "# registry; the registry itself stays the fallback.\n"
         "server = \"" +
         upstream_server(registry) + "\"\n\n[host.\"" + std::string(mirror_url) +
         "\"]\n  capabilities = [\"pull\", \"resolve\"]\n";
}

Status write_hosts_toml(const std::string& dir, const std::vector<std::string>& registries,
                        std::string_view mirror_url) {
  for (const std::string& registry : registries) {
    SOVDEV_ASSIGN(const std::string text, hosts_toml_text(registry, mirror_url));
    const std::string folder = dir + "/" + registry;
    SOVDEV_TRY(fs::make_dirs(folder, 0755));
    SOVDEV_TRY(fs::write_file_atomic(folder + "/hosts.toml", text, 0644));
  }
  return {};
}

Expected<std::string> registries_yaml_text(const std::vector<std::string>& registries,
                                           std::string_view mirror_url) {
  SOVDEV_TRY(check_mirror_url(mirror_url));
  std::string out =
      "# Written by sovdev-agent: k3s/RKE2 pull the images its bundles carry from its\n"
      "# loopback registry, the registry itself after it.\nmirrors:\n";
  if (registries.empty()) out = out.substr(0, out.size() - 1) + " {}\n";
  for (const std::string& registry : registries) {
    SOVDEV_TRY(check_registry(registry));
    out += "  \"" + registry + "\":\n    endpoint:\n      - \"" + std::string(mirror_url) + "\"\n";
  }
  return out;
}

}  // namespace sovdev::agent::images
