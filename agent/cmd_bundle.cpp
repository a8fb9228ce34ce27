// verify and import: the two commands that take a bundle file.
#include <cstdio>

#include "agent/commands.hpp"
#include "agent/config.hpp"
#include "agent/import.hpp"
#include "agent/trust_pin.hpp"
#include "common/hex.hpp"
#include "common/text.hpp"

namespace sovdev::agent {
namespace {

struct BundleOptions {
  std::string file;
  std::string trust;
  std::string state;
  std::string config;
  std::string channel;
  std::string arch;
};

void print_bundle(const char* verb, const VerifyResult& r) {
  std::printf("%s %s: %u objects, %s in %d chunk(s)\n  digest %s\n", verb,
              describe(r.manifest).c_str(), r.records,
              human_bytes(r.manifest.payload_size()).c_str(), r.manifest.chunk_sha256_size(),
              to_hex(r.digest).c_str());
  // Their values are opened by the agent at apply time only; what this shows stays sealed.
  if (r.manifest.sealed_objects() > 0) {
    std::printf("  %u sealed Secret(s) (channel %s epoch %llu): values <sealed>\n",
                r.manifest.sealed_objects(), r.manifest.secrets_channel().c_str(),
                static_cast<unsigned long long>(r.manifest.secrets_epoch()));
  }
}

Status verify(const BundleOptions& o) {
  SOVDEV_ASSIGN(TrustPolicy trust, trust_from_file(o.trust));
  SOVDEV_ASSIGN(VerifyResult r, verify_bundle_file(o.file, trust, {o.channel, o.arch}));
  print_bundle("valid", r);
  return {};
}

// The agent's channels, state folder and trust root: from its config when given, the options
// overriding; a bundle of a channel the agent does not follow must never reach its cache.
Expected<ImportScope> import_scope(BundleOptions& o, std::optional<std::string>& trust_file) {
  ImportScope scope;
  scope.arch = o.arch;
  if (!o.trust.empty()) trust_file = o.trust;
  if (!o.config.empty()) {
    SOVDEV_ASSIGN(AgentConfig config, load_config(o.config));
    scope.channels = config.channels;
    if (scope.arch.empty()) scope.arch = config.arch;
    if (o.state.empty()) o.state = config.state_dir;
    if (!trust_file && !config.trust_root.empty()) trust_file = config.trust_root;
  }
  if (!o.channel.empty()) scope.channels = {o.channel};
  if (scope.channels.empty()) {
    return make_error(Errc::usage,
                      "import needs the channel the agent follows: give --config with the "
                      "agent's configuration, or --channel (a bundle of another channel would "
                      "be applied in its place)");
  }
  if (o.state.empty()) {
    return make_error(Errc::usage, "import needs --state, or --config naming the state_dir");
  }
  return scope;
}

Status import(BundleOptions o) {
  std::optional<std::string> trust_file;
  SOVDEV_ASSIGN(const ImportScope scope, import_scope(o, trust_file));
  SOVDEV_ASSIGN(store::Database db, open_state(o.state, true));
  SOVDEV_ASSIGN(TrustPolicy trust, pinned_trust(db, trust_file));
  auto r = import_bundle(o.file, trust, db, scope);
  if (!r) return std::move(r).error().context("import " + o.file);
  if (r->already_present) {
    print_bundle("already cached", r->bundle);
  } else {
    print_bundle("imported", r->bundle);
    std::printf("  %u chunk(s) stored, state verified, cache %s\n", r->chunks_stored,
                database_path(o.state).c_str());
  }
  return {};
}

void add_target_options(CLI::App* cmd, BundleOptions& o, bool arch_default_host) {
  cmd->add_option("--channel", o.channel, "Refuse a bundle for any other channel");
  auto* arch = cmd->add_option(
      "--arch", o.arch,
      arch_default_host ? "Refuse a bundle not built for this architecture"
                        : "Refuse a bundle not built for this architecture (default: any)");
  if (arch_default_host) {
    o.arch = host_arch();
    arch->capture_default_str();
  }
}

}  // namespace

void add_verify(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<BundleOptions>();
  auto* cmd = app.add_subcommand(
      "verify",
      "Check a bundle file completely (signatures, hashes, every object); exit 0 only if valid");
  cmd->add_option("file", o->file, "Bundle file (.sdb)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--trust", o->trust, "Trust root to verify against")
      ->required()
      ->check(CLI::ExistingFile);
  add_target_options(cmd, *o, false);
  commands.push_back({cmd, [o] { return verify(*o); }});
}

void add_import(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<BundleOptions>();
  auto* cmd = app.add_subcommand(
      "import", "Verify a bundle file and store it in the agent's cache (for offline sites)");
  cmd->add_option("file", o->file, "Bundle file (.sdb)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--state", o->state,
                  "Agent state folder (holds agent.db); default: the state_dir of --config");
  cmd->add_option("--config", o->config,
                  "Agent configuration file: the channels it follows, its state folder, trust "
                  "root and architecture")
      ->check(CLI::ExistingFile);
  cmd->add_option("--trust", o->trust,
                  "Trust root: pins the first one, or rotates the pinned one by one version")
      ->check(CLI::ExistingFile);
  // No host default for --arch here: a --config naming its arch must be able to set it.
  add_target_options(cmd, *o, false);
  commands.push_back({cmd, [o] {
                        BundleOptions options = *o;
                        if (options.arch.empty() && options.config.empty()) {
                          options.arch = host_arch();
                        }
                        return import(options);
                      }});
}

}  // namespace sovdev::agent
