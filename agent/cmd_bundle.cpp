// verify and import: the two commands that take a bundle file.
#include <cstdio>

#include "agent/commands.hpp"
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
  std::string channel;
  std::string arch;
};

void print_bundle(const char* verb, const VerifyResult& r) {
  std::printf("%s %s: %u objects, %s in %d chunk(s)\n  digest %s\n", verb,
              describe(r.manifest).c_str(), r.records,
              human_bytes(r.manifest.payload_size()).c_str(), r.manifest.chunk_sha256_size(),
              to_hex(r.digest).c_str());
}

Status verify(const BundleOptions& o) {
  SOVDEV_ASSIGN(TrustPolicy trust, trust_from_file(o.trust));
  SOVDEV_ASSIGN(VerifyResult r, verify_bundle_file(o.file, trust, {o.channel, o.arch}));
  print_bundle("valid", r);
  return {};
}

Status import(const BundleOptions& o) {
  SOVDEV_ASSIGN(store::Database db, open_state(o.state, true));
  std::optional<std::string> trust_file;
  if (!o.trust.empty()) trust_file = o.trust;
  SOVDEV_ASSIGN(TrustPolicy trust, pinned_trust(db, trust_file));
  auto r = import_bundle(o.file, trust, db, {o.channel, o.arch});
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
  cmd->add_option("--state", o->state, "Agent state folder (holds agent.db)")->required();
  cmd->add_option("--trust", o->trust,
                  "Trust root: pins the first one, or rotates the pinned one by one version")
      ->check(CLI::ExistingFile);
  add_target_options(cmd, *o, true);
  commands.push_back({cmd, [o] { return import(*o); }});
}

}  // namespace sovdev::agent
