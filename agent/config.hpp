// The agent's settings: a TOML file read once at startup (config/agent.example.toml documents
// every key). Unknown keys and bad values are errors naming the file and line; relative paths
// are resolved against the file's folder.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bundles/rollout_rules.hpp"
#include "common/error.hpp"
#include "platform/target/target_config.hpp"

namespace sovdev::agent {

struct BrokerConfig {
  std::vector<std::string> urls;  // tcp://host:port or ssl://host:port, tried in order
  std::string topic_prefix = "sovdev/v1";
  std::string username;       // agent_id unless set
  std::string password_file;  // empty: no password
  std::string ca_file;        // empty: the system's CA certificates
  std::string cert_file;      // client certificate; set together with key_file
  std::string key_file;
  // 900 s: an idle edge box on a metered link must stay under 50 KB a day (pings + status).
  std::chrono::seconds keepalive{900};
};

struct SyncConfig {
  uint32_t window = 16;  // chunks in flight
  std::chrono::seconds request_timeout{10};
  std::chrono::seconds backoff_min{1};
  std::chrono::seconds backoff_max{300};
  std::chrono::seconds status_interval{3600};
};

struct ApplyConfig {
  target::TargetConfig target;
  std::chrono::seconds reconcile_interval{600};  // zero: no periodic re-apply
  std::chrono::seconds health_timeout{300};
};

// A maintenance window of the agent's own ([[window]], docs/design-rollouts.md). Kept as the
// file gives it: platform/windows checks and evaluates schedule, duration and zone.
struct WindowConfig {
  std::string kind;      // "allow" or "deny"
  std::string schedule;  // cron: minute hour day-of-month month day-of-week
  std::string duration;  // "90m", "4h", "1h30m"
  std::string zone;      // IANA time zone name
  uint32_t line = 0;     // where the table starts in the file, for the window library's errors
};

struct RolloutConfig {
  // Not admitted to a running rollout: fetch its version anyway (never apply it), so the apply
  // is quick once a wave admits the agent.
  bool prefetch = false;
};

// [images] (docs/design-images.md): what the image blob store under <state>/images may hold.
struct ImagesConfig {
  uint64_t quota = uint64_t{8} << 30;  // bytes: an integer, or "8GiB", "512MiB", "20GB"
};

struct AgentConfig {
  std::string source;  // the file the settings came from
  std::string agent_id;
  std::vector<std::string> channels;  // exactly one (load_config refuses more: see README)
  std::vector<std::string> stacks;    // empty: every stack of the channel
  std::string state_dir = "/var/lib/sovdev-agent";
  std::string trust_root;
  std::string arch;  // this machine's unless set
  BrokerConfig broker;
  SyncConfig sync;
  ApplyConfig apply;
  sovdev::rollout::Labels labels;  // [labels]: what rollout and window selectors match
  RolloutConfig rollouts;
  std::vector<WindowConfig> windows;
  ImagesConfig images;
};

// Reads and validates the file. Errors: Errc::io when it cannot be read, otherwise
// Errc::invalid with one "FILE:LINE: what is wrong" line per problem.
Expected<AgentConfig> load_config(const std::string& path);

// The same for text in memory; `name` is used in messages and its folder resolves relative
// paths. Files the settings name (trust_root, password_file, TLS files) must exist.
Expected<AgentConfig> parse_config(std::string_view text, std::string_view name);

// The effective settings, defaults included, as TOML (never a secret: only file names).
std::string describe_config(const AgentConfig& config);
// The same for [labels], [rollouts] and [[window]] (agent/config_rollout.cpp); check-config
// prints it after describe_config's.
std::string describe_rollout_config(const AgentConfig& config);

}  // namespace sovdev::agent
