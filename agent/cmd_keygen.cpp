// keygen: the agent's X25519 identity for sealed secrets (docs/design-secrets.md). The secret
// half stays in the state folder (0600); the public half is written beside it and printed, for
// `sovdev-hub agents add`. The package's postinst runs it once.
#include <sodium.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "agent/commands.hpp"
#include "agent/config.hpp"
#include "agent/secret_keys.hpp"
#include "bundles/keys.hpp"
#include "bundles/seal.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::agent {
namespace {

struct KeygenOptions {
  std::string config;
  std::string state;
  bool force = false;
};

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "sovdev-agent";
  return name;
}

Status keygen(const KeygenOptions& o) {
  std::string state = o.state;
  std::string name;
  if (state.empty()) {
    SOVDEV_ASSIGN(AgentConfig config, load_config(o.config));
    state = config.state_dir;
    name = config.agent_id;
  }
  // The hub knows the agent by its agent_id; without a config the command names it by role.
  const std::string agent_id = name.empty() ? "AGENT_ID" : name;
  if (name.empty()) name = host_name();
  // A name the key file cannot hold (a host name over 64 characters) is only a label.
  if (!valid_key_name(name)) name = "sovdev-agent";
  const std::string key_path = agent_key_path(state);
  std::error_code ec;
  const bool replacing = std::filesystem::exists(key_path, ec);
  if (replacing && !o.force) {
    // A keygen --force killed between its two files left agent.pub behind the key: the key
    // file is the truth, and its public half is written again.
    if (auto held = load_agent_key(state); held && *held) {
      const std::string public_line = seal::encode_agent_public(**held);
      auto written = fs::read_file(agent_public_path(state), 1024);
      if (!written || *written != public_line) {
        SOVDEV_TRY(fs::write_file_atomic(agent_public_path(state), public_line, 0644));
        std::fprintf(stderr, "%s did not match %s: written again from the key\n",
                     agent_public_path(state).c_str(), key_path.c_str());
        std::fputs(public_line.c_str(), stdout);
        return {};
      }
    }
    return make_error(Errc::conflict,
                      "this agent has a key already (" + key_path +
                          "); --force replaces it, and then the hub can no longer send it keys "
                          "until `sovdev-hub agents rotate " +
                          agent_id + " --pub agent.pub` is run there with the new " +
                          agent_public_path(state) +
                          " (versions built before that stay unreadable to this agent)");
  }
  SOVDEV_TRY(fs::make_dirs(state, 0700));
  const seal::AgentKey key = seal::generate_agent_key(name);
  const std::string public_line = seal::encode_agent_public(key);
  // The secret half first: killed before the public half is written, the next keygen writes
  // agent.pub again from agent.key (above), so an operator never enrols a key nobody holds.
  std::string secret = seal::encode_agent_secret(key);
  auto written = fs::write_file_atomic(key_path, secret, 0600);
  sodium_memzero(secret.data(), secret.size());
  SOVDEV_TRY(written);
  SOVDEV_TRY(fs::write_file_atomic(agent_public_path(state), public_line, 0644));
  if (replacing) {
    std::fprintf(stderr,
                 "replaced the agent's key: run `sovdev-hub agents rotate %s --pub agent.pub` on "
                 "the hub with the new %s\n",
                 agent_id.c_str(), agent_public_path(state).c_str());
  }
  std::fputs(public_line.c_str(), stdout);
  if (public_line.empty() || public_line.back() != '\n') std::fputc('\n', stdout);
  return {};
}

}  // namespace

void add_keygen(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<KeygenOptions>();
  auto* cmd = app.add_subcommand(
      "keygen",
      "Make this agent's X25519 key for sealed secrets: agent.key (0600) and agent.pub in the "
      "state folder, named after the config's agent_id (else the host name). Prints the public "
      "line; enrol it on the hub with `sovdev-hub agents add ID --pub agent.pub --channel C`. "
      "Refuses to replace a key unless --force");
  auto* config = cmd->add_option("--config", o->config, "Agent configuration file (TOML)")
                     ->check(CLI::ExistingFile);
  auto* state = cmd->add_option("--state", o->state,
                                "Agent state folder (instead of --config; made 0700 if missing)");
  config->excludes(state);
  cmd->add_flag("--force", o->force,
                "Replace an existing key: the hub must then be told with `sovdev-hub agents "
                "rotate ID --pub agent.pub`");
  commands.push_back({cmd, [o] {
                        if (o->config.empty() && o->state.empty()) {
                          return Status(
                              make_error(Errc::usage, "keygen needs --config or --state"));
                        }
                        return keygen(*o);
                      }});
}

}  // namespace sovdev::agent
