#include "platform/kube/kubeconfig.hpp"

#include <cstdlib>
#include <exception>
#include <filesystem>

#include <yaml-cpp/yaml.h>

#include "platform/fs/files.hpp"

namespace sovdev::kube {
namespace {

constexpr size_t kMaxKubeconfig = 16 * 1024 * 1024;
constexpr size_t kMaxPemFile = 1024 * 1024;
constexpr size_t kMaxTokenFile = 64 * 1024;

constexpr std::string_view kExecV1 = "client.authentication.k8s.io/v1";
constexpr std::string_view kExecV1beta1 = "client.authentication.k8s.io/v1beta1";

// The value of `key` in a YAML map, the last one when the key repeats; an undefined node when
// absent. Never assigns a node: yaml-cpp 0.7's Node::operator= rewrites the tree it points into.
YAML::Node child(const YAML::Node& map, std::string_view key) {
  std::optional<YAML::Node> found;
  if (map.IsMap()) {
    for (const auto& pair : map) {  // not it->first: operator-> yields a temporary
      if (pair.first.IsScalar() && pair.first.Scalar() == key) {
        found.reset();
        found.emplace(pair.second);
      }
    }
  }
  return found ? *found : YAML::Node(YAML::NodeType::Undefined);
}

Expected<YAML::Node> parse(const std::string& path, const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const std::exception& e) {
    return make_error(Errc::invalid, "kubeconfig " + path + ": not valid YAML: " + e.what());
  }
}

bool present(const YAML::Node& node) {
  return node.IsDefined() && !node.IsNull();
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string trim(std::string s) {
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
    s.pop_back();
  }
  size_t start = 0;
  while (start < s.size() && (s[start] == ' ' || s[start] == '\t' || s[start] == '\n')) ++start;
  return s.substr(start);
}

// Reads fields of one kubeconfig, every error prefixed with the file and the entry.
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {
    std::error_code ec;
    const auto abs = std::filesystem::absolute(path_, ec);
    base_ = (ec ? std::filesystem::path(path_) : abs).parent_path().string();
  }

  Error fail(std::string_view where, std::string_view what) const {
    return make_error(Errc::invalid,
                      "kubeconfig " + path_ + ": " + std::string(where) + ": " + std::string(what));
  }

  Expected<std::string> string(const YAML::Node& map, std::string_view key,
                               std::string_view where) const {
    const YAML::Node node = child(map, key);
    if (!present(node)) return std::string();
    if (!node.IsScalar()) {
      return fail(where, std::string(key) + " must be a string (line " +
                             std::to_string(node.Mark().line + 1) + ")");
    }
    return node.Scalar();
  }

  Expected<bool> boolean(const YAML::Node& map, std::string_view key,
                         std::string_view where) const {
    SOVDEV_ASSIGN(const std::string text, string(map, key, where));
    if (text.empty()) return false;
    // YAML 1.1 spellings, as kubectl's go-yaml v2 reads them.
    for (std::string_view yes : {"true", "yes", "on", "y"}) {
      if (iequals(text, yes)) return true;
    }
    for (std::string_view no : {"false", "no", "off", "n"}) {
      if (iequals(text, no)) return false;
    }
    return fail(where, std::string(key) + " must be true or false, not '" + text + "'");
  }

  // kubectl's rule: a relative path is relative to the folder of the kubeconfig naming it.
  std::string resolve(const std::string& p) const {
    if (p.empty() || p[0] == '/') return p;
    return base_ + "/" + p;
  }

  // PEM from `<key>-data` (base64) or from the file `<key>`; both set is an error, as in kubectl.
  Expected<std::string> pem(const YAML::Node& map, const std::string& key,
                            std::string_view where) const {
    SOVDEV_ASSIGN(const std::string file, string(map, key, where));
    SOVDEV_ASSIGN(const std::string data, string(map, key + "-data", where));
    if (!file.empty() && !data.empty()) {
      return fail(where, key + " and " + key + "-data are both set: keep one");
    }
    std::string out;
    if (!data.empty()) {
      auto decoded = base64_decode(data);
      if (!decoded) return fail(where, key + "-data is not valid base64");
      out = std::move(*decoded);
    } else if (!file.empty()) {
      auto read = fs::read_file(resolve(file), kMaxPemFile);
      if (!read)
        return std::move(read).error().context("kubeconfig " + path_ + ": " + std::string(where) +
                                               ": " + key);
      out = std::move(*read);
    } else {
      return std::string();
    }
    if (out.find("-----BEGIN ") == std::string::npos) {
      return fail(where, key + (data.empty() ? " (" + resolve(file) + ")" : "-data") +
                             " does not hold PEM (\"-----BEGIN ...\")");
    }
    return out;
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string base_;
};

// name → `inner` map of every entry of `list` (clusters, users or contexts), in file order.
Expected<std::vector<std::pair<std::string, YAML::Node>>> entries(const Reader& r,
                                                                  const YAML::Node& root,
                                                                  std::string_view list,
                                                                  std::string_view inner) {
  std::vector<std::pair<std::string, YAML::Node>> out;
  const YAML::Node seq = child(root, list);
  if (!present(seq)) return out;
  if (!seq.IsSequence()) return r.fail(list, "must be a list");
  for (const auto& item : seq) {
    if (!item.IsMap()) {
      return r.fail(list, "entry at line " + std::to_string(item.Mark().line + 1) +
                              " must be a map with name and " + std::string(inner));
    }
    SOVDEV_ASSIGN(std::string name, r.string(item, "name", list));
    out.emplace_back(std::move(name), child(item, inner));
  }
  return out;
}

std::string names_of(const std::vector<std::pair<std::string, YAML::Node>>& list) {
  std::string out;
  for (const auto& [name, node] : list) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out.empty() ? "(none)" : out;
}

Expected<YAML::Node> find(const Reader& r, const YAML::Node& root, std::string_view list,
                          std::string_view inner, const std::string& name,
                          std::string_view wanted_by) {
  SOVDEV_ASSIGN(const auto all, entries(r, root, list, inner));
  for (const auto& [n, body] : all) {
    if (n == name) return body;
  }
  const std::string singular(list.substr(0, list.size() - 1));
  return make_error(Errc::invalid, singular + " '" + name + "'" + std::string(wanted_by) +
                                       " not found in " + r.path() + "; " + std::string(list) +
                                       ": " + names_of(all));
}

Status read_cluster(const Reader& r, const YAML::Node& cluster, const std::string& where,
                    Credentials& out) {
  if (!cluster.IsMap()) return r.fail(where, "has no cluster map");
  SOVDEV_ASSIGN(std::string server, r.string(cluster, "server", where));
  if (server.empty()) return r.fail(where, "has no server");
  if (server.find("://") == std::string::npos) server = "https://" + server;
  if (server.rfind("https://", 0) != 0 && server.rfind("http://", 0) != 0) {
    return r.fail(where, "server '" + server + "' must start with https:// or http://");
  }
  while (server.size() > 8 && server.back() == '/') server.pop_back();
  out.server = std::move(server);
  SOVDEV_ASSIGN(out.ca_pem, r.pem(cluster, "certificate-authority", where));
  SOVDEV_ASSIGN(out.insecure_skip_tls_verify,
                r.boolean(cluster, "insecure-skip-tls-verify", where));
  if (out.insecure_skip_tls_verify && !out.ca_pem.empty()) {
    return r.fail(where,
                  "insecure-skip-tls-verify and a certificate-authority are both set: keep one");
  }
  SOVDEV_ASSIGN(out.tls_server_name, r.string(cluster, "tls-server-name", where));
  SOVDEV_ASSIGN(out.proxy_url, r.string(cluster, "proxy-url", where));
  return {};
}

Expected<ExecPlugin> read_exec(const Reader& r, const YAML::Node& exec, const std::string& where) {
  if (!exec.IsMap()) return r.fail(where, "exec must be a map");
  ExecPlugin plugin;
  SOVDEV_ASSIGN(plugin.command, r.string(exec, "command", where));
  if (plugin.command.empty()) return r.fail(where, "exec has no command");
  // As kubectl does: a command with a slash is a path relative to the kubeconfig; a bare name
  // is looked up in PATH.
  if (plugin.command.find('/') != std::string::npos) plugin.command = r.resolve(plugin.command);
  SOVDEV_ASSIGN(plugin.api_version, r.string(exec, "apiVersion", where));
  if (plugin.api_version != kExecV1 && plugin.api_version != kExecV1beta1) {
    return r.fail(where, "exec apiVersion '" + plugin.api_version + "' is not supported: use " +
                             std::string(kExecV1) + " or " + std::string(kExecV1beta1));
  }
  const YAML::Node args = child(exec, "args");
  if (present(args)) {
    if (!args.IsSequence()) return r.fail(where, "exec args must be a list of strings");
    for (const auto& a : args) {
      if (!a.IsScalar()) return r.fail(where, "exec args must be a list of strings");
      plugin.args.push_back(a.Scalar());
    }
  }
  const YAML::Node env = child(exec, "env");
  if (present(env)) {
    if (!env.IsSequence()) return r.fail(where, "exec env must be a list of {name, value}");
    for (const auto& e : env) {
      if (!e.IsMap()) return r.fail(where, "exec env must be a list of {name, value}");
      SOVDEV_ASSIGN(std::string name, r.string(e, "name", where));
      SOVDEV_ASSIGN(std::string value, r.string(e, "value", where));
      if (name.empty() || name.find('=') != std::string::npos) {
        return r.fail(where, "exec env entry with a bad name '" + name + "'");
      }
      plugin.env.emplace_back(std::move(name), std::move(value));
    }
  }
  SOVDEV_ASSIGN(plugin.interactive_mode, r.string(exec, "interactiveMode", where));
  if (plugin.interactive_mode.empty()) plugin.interactive_mode = "IfAvailable";
  if (plugin.interactive_mode == "Always") {
    return r.fail(where, "exec plugin " + plugin.command +
                             " has interactiveMode Always, but the agent has no terminal: "
                             "configure the plugin for non-interactive login (for kubelogin: "
                             "--login spn, msi or workloadidentity)");
  }
  if (plugin.interactive_mode != "Never" && plugin.interactive_mode != "IfAvailable") {
    return r.fail(where, "exec interactiveMode '" + plugin.interactive_mode +
                             "' is not Never, IfAvailable or Always");
  }
  SOVDEV_ASSIGN(plugin.provide_cluster_info, r.boolean(exec, "provideClusterInfo", where));
  SOVDEV_ASSIGN(plugin.install_hint, r.string(exec, "installHint", where));
  return plugin;
}

Status read_user(const Reader& r, const YAML::Node& user, const std::string& where,
                 Credentials& out) {
  if (!present(user)) return {};  // a user with no fields: anonymous
  if (!user.IsMap()) return r.fail(where, "user must be a map");
  if (present(child(user, "auth-provider"))) {
    return r.fail(where,
                  "auth-provider is not supported (removed from kubectl in 1.26): use an exec "
                  "plugin such as kubelogin, a client certificate or a token");
  }
  if (present(child(user, "username")) || present(child(user, "password"))) {
    return r.fail(where,
                  "username/password (basic auth) is not supported: use a client certificate, "
                  "a token or an exec plugin");
  }
  for (std::string_view key : {"as", "as-uid", "as-groups", "as-user-extra"}) {
    if (present(child(user, key))) {
      return r.fail(where, std::string(key) +
                               " (impersonation) is not supported: give the agent's own "
                               "identity the permissions it needs");
    }
  }
  SOVDEV_ASSIGN(out.client_cert_pem, r.pem(user, "client-certificate", where));
  SOVDEV_ASSIGN(out.client_key_pem, r.pem(user, "client-key", where));
  if (out.client_cert_pem.empty() != out.client_key_pem.empty()) {
    return r.fail(where, out.client_cert_pem.empty()
                             ? "has a client-key but no client-certificate"
                             : "has a client-certificate but no client-key");
  }
  SOVDEV_ASSIGN(out.token, r.string(user, "token", where));
  SOVDEV_ASSIGN(std::string token_file, r.string(user, "tokenFile", where));
  out.token_file = r.resolve(token_file);
  const YAML::Node exec = child(user, "exec");
  if (present(exec)) {
    if (!out.token.empty() || !out.token_file.empty()) {
      return r.fail(where, "has both a token and an exec plugin: keep one");
    }
    SOVDEV_ASSIGN(out.exec, read_exec(r, exec, where));
  }
  return {};
}

}  // namespace

Expected<Credentials> load_kubeconfig(const std::string& path, const std::string& context) {
  SOVDEV_ASSIGN(const std::string text, fs::read_file(path, kMaxKubeconfig));
  const Reader r(path);
  SOVDEV_ASSIGN(const YAML::Node root, parse(path, text));
  if (!root.IsMap()) {
    return make_error(Errc::invalid, "kubeconfig " + path + " is empty or not a YAML map");
  }
  SOVDEV_ASSIGN(const auto contexts, entries(r, root, "contexts", "context"));
  std::string name = context;
  if (name.empty()) {
    SOVDEV_ASSIGN(name, r.string(root, "current-context", "current-context"));
    if (name.empty()) {
      return make_error(Errc::invalid, "kubeconfig " + path +
                                           " has no current-context: name a context; contexts: " +
                                           names_of(contexts));
    }
  }
  SOVDEV_ASSIGN(const YAML::Node ctx, find(r, root, "contexts", "context", name, ""));
  const std::string ctx_where = "context '" + name + "'";
  if (!ctx.IsMap()) return r.fail(ctx_where, "has no context map");

  Credentials out;
  out.source = "kubeconfig " + path + " context " + name;
  SOVDEV_ASSIGN(const std::string cluster_name, r.string(ctx, "cluster", ctx_where));
  SOVDEV_ASSIGN(const std::string user_name, r.string(ctx, "user", ctx_where));
  SOVDEV_ASSIGN(out.namespace_, r.string(ctx, "namespace", ctx_where));
  if (cluster_name.empty()) return r.fail(ctx_where, "names no cluster");

  const std::string by = " (of context '" + name + "')";
  SOVDEV_ASSIGN(const YAML::Node cluster, find(r, root, "clusters", "cluster", cluster_name, by));
  SOVDEV_TRY(read_cluster(r, cluster, "cluster '" + cluster_name + "'", out));
  if (!user_name.empty()) {
    SOVDEV_ASSIGN(const YAML::Node user, find(r, root, "users", "user", user_name, by));
    SOVDEV_TRY(read_user(r, user, "user '" + user_name + "'", out));
  }
  return out;
}

Expected<Credentials> load_in_cluster(const InClusterPaths& paths) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (port == nullptr || *port == '\0') port = std::getenv("KUBERNETES_SERVICE_PORT_HTTPS");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return make_error(Errc::invalid,
                      "not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST and "
                      "KUBERNETES_SERVICE_PORT are not set; set apply.kubeconfig to run outside "
                      "the cluster");
  }
  Credentials out;
  out.source = "in-cluster";
  const std::string h = host;
  out.server = "https://" + (h.find(':') != std::string::npos && h[0] != '[' ? "[" + h + "]" : h) +
               ":" + port;
  out.token_file = paths.dir + "/token";
  // Read now so a pod without a mounted token fails at start, not on the first request.
  auto token = fs::read_file(out.token_file, kMaxTokenFile);
  if (!token) {
    return std::move(token).error().context(
        "in-cluster service account token (automountServiceAccountToken false?)");
  }
  if (trim(*token).empty()) return make_error(Errc::invalid, out.token_file + " is empty");
  auto ca = fs::read_file(paths.dir + "/ca.crt", kMaxPemFile);
  if (!ca) return std::move(ca).error().context("in-cluster CA");
  out.ca_pem = std::move(*ca);
  auto ns = fs::read_file(paths.dir + "/namespace", 4096);
  if (ns) out.namespace_ = trim(std::move(*ns));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t digits = 0;
  size_t padding = 0;
  for (const char c : text) {
    if (c == '\n' || c == '\r') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    const int v = value(c);
    if (v < 0 || padding > 0) return std::nullopt;  // bad character, or data after padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    ++digits;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  const size_t rest = digits % 4;
  if (rest == 1) return std::nullopt;  // 6 bits cannot make a byte
  if (padding > 0 && (digits + padding) % 4 != 0) return std::nullopt;
  if (padding > 2) return std::nullopt;
  // The unused low bits of the last digit must be zero (canonical encoding).
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kDigits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = (uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                       (uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) |
                       uint32_t{static_cast<unsigned char>(bytes[i + 2])};
    for (int shift : {18, 12, 6, 0}) out.push_back(kDigits[(n >> shift) & 63]);
  }
  if (i < bytes.size()) {
    uint32_t n = uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    if (i + 1 < bytes.size()) n |= uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
    out.push_back(kDigits[(n >> 18) & 63]);
    out.push_back(kDigits[(n >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kDigits[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

}  // namespace sovdev::kube
