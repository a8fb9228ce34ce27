#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <set>

#include "bundles/hash.hpp"
#include "bundles/trust.hpp"
#include "hub/commands.hpp"
#include "hub/key_files.hpp"
#include "platform/fs/files.hpp"

namespace sovdev::hub {
namespace {

struct TrustOptions {
  std::string current;  // rotate only
  std::vector<std::string> roots;
  std::vector<std::string> targets;
  std::vector<std::string> online;
  uint32_t threshold = 1;
  uint32_t targets_threshold = 1;
  uint32_t online_threshold = 1;
  std::vector<std::string> sign;
  std::string out;
};

Expected<pb::TrustRoot> make_root(const TrustOptions& o, uint64_t version) {
  TrustRootSpec spec;
  spec.version = version;
  spec.created_at = static_cast<int64_t>(std::time(nullptr));
  SOVDEV_ASSIGN(spec.root_keys, load_public_keys(o.roots));
  SOVDEV_ASSIGN(spec.targets_keys, load_public_keys(o.targets));
  SOVDEV_ASSIGN(spec.online_keys, load_public_keys(o.online));
  spec.root_threshold = o.threshold;
  spec.targets_threshold = o.targets_threshold;
  spec.online_threshold = o.online_threshold;
  return make_trust_root(spec);
}

void print_role(FILE* to, const TrustPolicy& policy, TrustRole role, const char* what) {
  const pb::Role& r = policy.role(role);
  std::fprintf(to, "  %-7s %d key(s), threshold %u: %s\n", std::string(role_name(role)).c_str(),
               r.key_ids_size(), r.threshold(), what);
}

void print_root(FILE* to, const TrustPolicy& policy, const std::string& path) {
  std::fprintf(to, "trust root v%llu written to %s (signatures ok)\n",
               static_cast<unsigned long long>(policy.version()),
               path == "-" ? "(stdout)" : path.c_str());
  print_role(to, policy, TrustRole::root, "signs trust roots (keep offline)");
  print_role(to, policy, TrustRole::targets, "signs bundle manifests (keep offline; hub build)");
  print_role(to, policy, TrustRole::online,
             "signs catalogs and delta manifests (hub serve, publish)");
}

bool same_keys(const pb::Role& a, const pb::Role& b) {
  std::set<std::string> x(a.key_ids().begin(), a.key_ids().end());
  std::set<std::string> y(b.key_ids().begin(), b.key_ids().end());
  return x == y && a.threshold() == b.threshold();
}

// What a rotation means for the fleet: the operator should not have to work it out.
void print_changes(FILE* out, const TrustPolicy& from, const TrustPolicy& to) {
  if (from.legacy()) {
    std::fprintf(
        out,
        "  replaces legacy v%llu: its publisher keys now sign only what their new role allows\n",
        static_cast<unsigned long long>(from.version()));
    return;
  }
  std::fprintf(out, "  online keys %s; targets keys %s\n",
               same_keys(from.role(TrustRole::online), to.role(TrustRole::online))
                   ? "unchanged"
                   : "changed (restart sovdev-hub serve with the new --key and --trust)",
               same_keys(from.role(TrustRole::targets), to.role(TrustRole::targets))
                   ? "unchanged: every bundle signed so far stays valid"
                   : "changed: bundles are accepted only if the new targets keys signed them");
}

Status init(const TrustOptions& o) {
  SOVDEV_ASSIGN(pb::TrustRoot root, make_root(o, 1));
  SOVDEV_ASSIGN(auto signers, load_secret_keys(o.sign));
  SOVDEV_ASSIGN(std::string bytes, sign_trust_root(root, signers));
  // Check before writing, so a root the agents would refuse never reaches a file.
  auto policy = TrustPolicy::from_initial(bytes);
  if (!policy) {
    return std::move(policy).error().context(
        "the new trust root would not verify (sign it with "
        "enough of its root keys)");
  }
  SOVDEV_TRY(fs::write_file_atomic(o.out, bytes, 0644));
  print_root(summary_stream(o.out), *policy, o.out);
  return {};
}

Status rotate(const TrustOptions& o) {
  SOVDEV_ASSIGN(std::string current_bytes, fs::read_file(o.current, kMaxTrustRootBytes));
  auto current = TrustPolicy::from_initial(current_bytes);
  if (!current) return std::move(current).error().context(o.current);
  SOVDEV_ASSIGN(pb::TrustRoot root, make_root(o, current->version() + 1));
  SOVDEV_ASSIGN(auto signers, load_secret_keys(o.sign));
  SOVDEV_ASSIGN(std::string bytes, sign_trust_root(root, signers));
  auto next = current->rotate(bytes);
  if (!next) {
    return std::move(next).error().context(
        "the rotated root would be refused by agents (sign with a threshold of both the current "
        "and the new root keys)");
  }
  SOVDEV_TRY(fs::write_file_atomic(o.out, bytes, 0644));
  FILE* summary = summary_stream(o.out);
  print_root(summary, *next, o.out);
  print_changes(summary, *current, *next);
  return {};
}

void add_role_options(CLI::App* cmd, TrustOptions& o) {
  cmd->add_option("--root", o.roots, "Public key file(s) of the root role: they sign trust roots")
      ->required();
  cmd->add_option("--targets", o.targets,
                  "Public key file(s) of the targets role: they sign bundle manifests "
                  "(sovdev-hub build --key); keep their secret keys offline")
      ->required();
  cmd->add_option("--online", o.online,
                  "Public key file(s) of the online role: they sign catalogs and delta manifests, "
                  "never bundles (sovdev-hub serve and publish --key); they live on the hub")
      ->required();
  cmd->add_option("--threshold", o.threshold, "Root signatures required on the next trust root")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--targets-threshold", o.targets_threshold,
                  "Targets signatures required on each bundle manifest")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--online-threshold", o.online_threshold,
                  "Online signatures required on each catalog and delta manifest")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--sign", o.sign, "Secret root key file(s) to sign with")->required();
  cmd->add_option("--out", o.out,
                  "Where to write the signed trust root, or - for stdout (the summary then goes "
                  "to stderr)")
      ->required();
}

}  // namespace

void add_trust(CLI::App& app, cli::Commands& commands) {
  auto* trust = app.add_subcommand("trust", "Create or rotate the trust root agents pin");
  trust->require_subcommand(1);

  auto init_opts = std::make_shared<TrustOptions>();
  auto* init_cmd =
      trust->add_subcommand("init", "Create trust root version 1, self-signed by its root keys");
  add_role_options(init_cmd, *init_opts);
  commands.push_back({init_cmd, [init_opts] { return init(*init_opts); }});

  auto rot_opts = std::make_shared<TrustOptions>();
  auto* rot_cmd = trust->add_subcommand(
      "rotate",
      "Create version N+1 of a trust root, signed by the old and the new root keys. Rotating the "
      "online or targets keys needs the root keys only; bundles already signed by a targets key "
      "that stays stay valid. A legacy root (publisher keys) rotates to targets and online here");
  rot_cmd->add_option("--current", rot_opts->current, "The trust root in force now")
      ->required()
      ->check(CLI::ExistingFile);
  add_role_options(rot_cmd, *rot_opts);
  commands.push_back({rot_cmd, [rot_opts] { return rotate(*rot_opts); }});
}

}  // namespace sovdev::hub
