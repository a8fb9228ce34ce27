#include "agent/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <utility>

#include "agent/config_reader.hpp"
#include "bundles/manifest_rules.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::agent {
namespace {

using namespace config_detail;

constexpr size_t kMaxConfigSize = 1024 * 1024;

bool is_stack_name(std::string_view s) {  // as the bundle manifest rules have it
  return !s.empty() && s.size() <= 63 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  });
}

bool is_agent_id(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

std::optional<std::string> topic_prefix_problem(std::string_view p) {
  if (p.empty()) return "must not be empty";
  if (p.find_first_of("+#") != std::string_view::npos) return "must not hold MQTT wildcards + or #";
  if (p.find('\0') != std::string_view::npos) return "must not hold a NUL character";
  if (p.front() == '$') return "must not start with '$' (reserved for the broker)";
  if (p.front() == '/' || p.back() == '/' || p.find("//") != std::string_view::npos) {
    return "must not start or end with '/' or have an empty level";
  }
  return std::nullopt;
}

std::optional<std::string> url_problem(std::string_view url) {
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) {
    return "is not a URL: write tcp://host:1883 or ssl://host:8883";
  }
  const std::string_view scheme = url.substr(0, sep);
  if (scheme != "tcp" && scheme != "ssl") {
    return "scheme '" + std::string(scheme) + "://' is not supported: use tcp:// or ssl://";
  }
  std::string_view rest = url.substr(sep + 3);
  if (rest.find('/') != std::string_view::npos) return "must not have a path";
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return "has an unclosed '[' around its IPv6 address";
    host = rest.substr(1, close - 1);
    rest.remove_prefix(close + 1);
    if (rest.empty() || rest.front() != ':') return "needs a port after the IPv6 address";
    port = rest.substr(1);
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      return "needs a port: " + std::string(scheme) + "://" + std::string(rest) +
             (scheme == "ssl" ? ":8883" : ":1883");
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (!std::all_of(host.begin(), host.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.';
        })) {
      return "has a bad host name '" + std::string(host) + "'";
    }
  }
  if (host.empty()) return "has no host";
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
    return "has a bad port '" + std::string(port) + "' (1..65535)";
  }
  return std::nullopt;
}

// Reads one file's settings, collecting every problem rather than stopping at the first.

void check_names(Reader& r, const std::string& key, const std::vector<std::string>& names) {
  for (auto it = names.begin(); it != names.end(); ++it) {
    if (!is_stack_name(*it)) {
      r.problem(r.line(key), key, "'" + *it + "' must be 1 to 63 of a-z 0-9 - _ .");
    } else if (std::find(names.begin(), it, *it) != it) {
      r.problem(r.line(key), key, "'" + *it + "' is listed twice");
    }
  }
}

void read_top(Reader& r, const toml::table& root, AgentConfig& c) {
  r.check_keys(root, "");
  if (r.string(&root, "", "agent_id", c.agent_id) && !is_agent_id(c.agent_id)) {
    r.problem(
        r.line("agent_id"), "agent_id",
        "'" + c.agent_id + "' must be 1 to 64 of A-Z a-z 0-9 . _ - (it goes into MQTT topics)");
  }
  r.required(r.line("agent_id") != 0, "agent_id", "agent_id = \"edge-01\"");
  if (r.strings(&root, "", "channels", c.channels) && c.channels.size() != 1) {
    r.problem(r.line("channels"), "channels",
              "must name exactly one channel: a stack's cached versions, rollback floor, last "
              "good version and cluster objects are kept per stack, so one stack from two "
              "channels would overwrite itself (to stage versions, give some sites another one)");
  }
  r.required(r.line("channels") != 0, "channels", "channels = [\"edge\"]");
  r.strings(&root, "", "stacks", c.stacks);
  check_names(r, "channels", c.channels);
  check_names(r, "stacks", c.stacks);
  r.string(&root, "", "state_dir", c.state_dir);
  if (c.state_dir.empty()) r.problem(r.line("state_dir"), "state_dir", "must not be empty");
  c.state_dir = r.resolve(c.state_dir);
  const bool has_trust = r.string(&root, "", "trust_root", c.trust_root);
  r.required(r.line("trust_root") != 0, "trust_root", "trust_root = \"/etc/sovdev/trust.root\"");
  c.trust_root = r.resolve(c.trust_root);
  if (has_trust) {
    if (c.trust_root.empty()) {
      r.problem(r.line("trust_root"), "trust_root", "must not be empty");
    } else {
      r.must_be_file("trust_root", c.trust_root,
                     "copy the hub's trust root file there before starting the agent (it pins "
                     "the first root; later roots come from the hub)");
    }
  }
  c.arch = host_arch();
  if (r.string(&root, "", "arch", c.arch)) {
    static const std::vector<std::string_view> arches = {"amd64",   "arm64",   "armhf",
                                                         "riscv64", "ppc64el", "s390x"};
    if (std::find(arches.begin(), arches.end(), c.arch) == arches.end()) {
      r.problem(r.line("arch"), "arch",
                "'" + c.arch + "' is not one of amd64, arm64, armhf, riscv64, ppc64el, s390x " +
                    "(Debian/Kubernetes spelling: arm64, not aarch64)");
    }
  }
}

void read_broker(Reader& r, const toml::table& root, AgentConfig& c) {
  const toml::table* t = r.table(root, "broker");
  BrokerConfig& b = c.broker;
  if (r.strings(t, "broker", "urls", b.urls) && b.urls.empty()) {
    r.problem(r.line("broker.urls"), "broker.urls", "must list at least one broker URL");
  }
  r.required(r.line("broker.urls") != 0, "broker.urls",
             "[broker] urls = [\"ssl://hub.example:8883\"]");
  bool any_ssl = false;
  bool any_plain = false;
  for (const auto& url : b.urls) {
    if (auto what = url_problem(url))
      r.problem(r.line("broker.urls"), "broker.urls", url + " " + *what);
    any_ssl = any_ssl || url.rfind("ssl://", 0) == 0;
    any_plain = any_plain || url.rfind("tcp://", 0) == 0;
  }
  // Paho tries the list in order and takes the first that answers: whoever can block the
  // ssl:// port would have the agent fall back to plain text, credentials and all.
  if (any_ssl && any_plain) {
    r.problem(r.line("broker.urls"), "broker.urls",
              "mixes ssl:// and tcp:// URLs, which lets anyone who can block TLS downgrade the "
              "connection to plain text: use ssl:// for every broker (or tcp:// for all, on a "
              "trusted network only)");
  }
  if (r.string(t, "broker", "topic_prefix", b.topic_prefix)) {
    if (auto what = topic_prefix_problem(b.topic_prefix)) {
      r.problem(r.line("broker.topic_prefix"), "broker.topic_prefix", *what);
    }
  }
  r.string(t, "broker", "username", b.username);
  if (b.username.empty()) b.username = c.agent_id;
  struct FileKey {
    const char* key;
    std::string* value;
    const char* advice;
  };
  const FileKey files[] = {
      {"password_file", &b.password_file, "create it holding the password (mode 0600)"},
      {"ca_file", &b.ca_file, "give the CA certificate that signed the broker's certificate"},
      {"cert_file", &b.cert_file, "give the agent's client certificate (PEM)"},
      {"key_file", &b.key_file, "give the client certificate's private key (PEM)"},
  };
  for (const auto& f : files) {
    const std::string key = std::string("broker.") + f.key;
    if (!r.string(t, "broker", f.key, *f.value) || f.value->empty()) continue;
    *f.value = r.resolve(*f.value);
    r.must_be_file(key, *f.value, f.advice);
    if (f.value != &b.password_file && !any_ssl && !b.urls.empty()) {
      r.problem(r.line(key), key, "is set but no broker URL uses ssl://: TLS would not be used");
    }
  }
  if (b.cert_file.empty() != b.key_file.empty()) {
    const std::string given = b.cert_file.empty() ? "broker.key_file" : "broker.cert_file";
    r.problem(r.line(given), given, "cert_file and key_file go together: set both or neither");
  }
  r.seconds_in(t, "broker", "keepalive_seconds", 5, 65535, b.keepalive);
}

void read_sync(Reader& r, const toml::table& root, AgentConfig& c) {
  const toml::table* t = r.table(root, "sync");
  SyncConfig& s = c.sync;
  int64_t window = s.window;
  if (r.integer(t, "sync", "window", 1, 64, window)) s.window = static_cast<uint32_t>(window);
  r.seconds_in(t, "sync", "request_timeout_seconds", 1, 3600, s.request_timeout);
  r.seconds_in(t, "sync", "backoff_min_seconds", 1, 3600, s.backoff_min);
  r.seconds_in(t, "sync", "backoff_max_seconds", 1, 86400, s.backoff_max);
  if (s.backoff_max < s.backoff_min) {
    const std::string key = r.line("sync.backoff_max_seconds") ? "sync.backoff_max_seconds"
                                                               : "sync.backoff_min_seconds";
    r.problem(r.line(key), key,
              "backoff_max_seconds (" + std::to_string(s.backoff_max.count()) +
                  ") is below backoff_min_seconds (" + std::to_string(s.backoff_min.count()) + ")");
  }
  r.seconds_in(t, "sync", "status_interval_seconds", 10, 86400, s.status_interval);
}

void read_apply(Reader& r, const toml::table& root, AgentConfig& c) {
  const toml::table* t = r.table(root, "apply");
  ApplyConfig& a = c.apply;
  std::string kind = "dir";
  if (r.string(t, "apply", "target", kind)) {
    if (kind == "dir" || kind == "kube" || kind == "exec") {
      a.target.kind = kind == "dir"    ? target::TargetKind::dir
                      : kind == "kube" ? target::TargetKind::kube
                                       : target::TargetKind::exec;
    } else {
      r.problem(r.line("apply.target"), "apply.target",
                "'" + kind + "' is not one of dir, kube, exec");
    }
  }
  if (r.string(t, "apply", "dir", a.target.dir) && a.target.dir.empty()) {
    r.problem(r.line("apply.dir"), "apply.dir", "must not be empty");
  }
  a.target.dir = r.resolve(a.target.dir);
  r.string(t, "apply", "command", a.target.command);
  if (a.target.kind == target::TargetKind::exec && a.target.command.empty()) {
    r.problem(r.line("apply.target"), "apply.command",
              "target = \"exec\" needs a command, e.g. command = \"microk8s kubectl apply "
              "--server-side --field-manager=sovdev-agent -f -\"");
  }
  if (r.string(t, "apply", "kubeconfig", a.target.kubeconfig)) {
    a.target.kubeconfig = r.resolve(a.target.kubeconfig);
  }
  r.string(t, "apply", "context", a.target.context);
  r.seconds_in(t, "apply", "reconcile_interval_seconds", 0, 7 * 86400, a.reconcile_interval);
  if (a.reconcile_interval.count() > 0 && a.reconcile_interval.count() < 10) {
    r.problem(r.line("apply.reconcile_interval_seconds"), "apply.reconcile_interval_seconds",
              "must be 0 (never) or at least 10");
  }
  r.seconds_in(t, "apply", "health_timeout_seconds", 1, 86400, a.health_timeout);
}

Expected<AgentConfig> parse_in(std::string_view text, std::string_view name, fsys::path base) {
  toml::parse_result parsed = toml::parse(text, std::string_view(name));
  if (!parsed) {
    const auto& e = parsed.error();
    return make_error(Errc::invalid, std::string(name) + ":" +
                                         std::to_string(e.source().begin.line) + ": " +
                                         std::string(e.description()));
  }
  const toml::table root = std::move(parsed).table();
  Reader reader(name, std::move(base));
  AgentConfig config;
  config.source = std::string(name);
  read_top(reader, root, config);
  read_broker(reader, root, config);
  read_sync(reader, root, config);
  read_apply(reader, root, config);
  read_rollout_config(reader, root, config);
  read_images_config(reader, root, config);
  SOVDEV_TRY(reader.result());
  return config;
}

fsys::path folder_of(std::string_view name) {
  std::error_code ec;
  fsys::path folder = fsys::path(name).parent_path();
  if (folder.empty()) folder = fsys::current_path(ec);
  return fsys::absolute(folder, ec);
}

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string toml_list(const std::vector<std::string>& list) {
  std::string out = "[";
  for (const auto& s : list) out += (out.size() > 1 ? ", " : "") + toml_string(s);
  return out + "]";
}

}  // namespace

Expected<AgentConfig> parse_config(std::string_view text, std::string_view name) {
  return parse_in(text, name, folder_of(name));
}

Expected<AgentConfig> load_config(const std::string& path) {
  auto text = fs::read_file(path, kMaxConfigSize);
  if (!text) return std::move(text).error().context("read agent config");
  return parse_in(*text, path, folder_of(path));
}

std::string describe_config(const AgentConfig& c) {
  auto line = [](std::string_view key, const std::string& value, std::string_view note = {}) {
    std::string out = std::string(key) + " = " + value;
    if (!note.empty()) out += "  # " + std::string(note);
    return out + "\n";
  };
  auto secs = [](seconds s) { return std::to_string(s.count()); };
  const auto& b = c.broker;
  const auto& s = c.sync;
  const auto& a = c.apply;
  std::string out = "# Effective settings of " + c.source + ", defaults included\n";
  out += line("agent_id", toml_string(c.agent_id));
  out += line("channels", toml_list(c.channels));
  out += line("stacks", toml_list(c.stacks), c.stacks.empty() ? "every stack of the channels" : "");
  out += line("state_dir", toml_string(c.state_dir));
  out += line("trust_root", toml_string(c.trust_root));
  out += line("arch", toml_string(c.arch));
  out += "\n[broker]\n";
  out += line("urls", toml_list(b.urls));
  out += line("topic_prefix", toml_string(b.topic_prefix));
  out += line("username", toml_string(b.username));
  out += line("password_file", toml_string(b.password_file),
              b.password_file.empty() ? "no password" : "");
  out += line("ca_file", toml_string(b.ca_file),
              b.ca_file.empty() ? "the system's CA certificates" : "");
  out += line("cert_file", toml_string(b.cert_file),
              b.cert_file.empty() ? "no client certificate" : "");
  out += line("key_file", toml_string(b.key_file));
  out += line("keepalive_seconds", secs(b.keepalive));
  out += "\n[sync]\n";
  out += line("window", std::to_string(s.window));
  out += line("request_timeout_seconds", secs(s.request_timeout));
  out += line("backoff_min_seconds", secs(s.backoff_min));
  out += line("backoff_max_seconds", secs(s.backoff_max));
  out += line("status_interval_seconds", secs(s.status_interval));
  out += "\n[apply]\n";
  out += line("target", toml_string(target::target_kind_name(a.target.kind)));
  out += line("dir", toml_string(a.target.dir));
  out += line("command", toml_string(a.target.command));
  out += line("kubeconfig", toml_string(a.target.kubeconfig),
              a.target.kubeconfig.empty() ? "in-cluster service account" : "");
  out += line("context", toml_string(a.target.context),
              a.target.context.empty() ? "the kubeconfig's current-context" : "");
  out += line("reconcile_interval_seconds", secs(a.reconcile_interval),
              a.reconcile_interval.count() == 0 ? "never" : "");
  out += line("health_timeout_seconds", secs(a.health_timeout));
  return out;
}

}  // namespace sovdev::agent
