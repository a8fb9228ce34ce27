#include <cstdio>
#include <ctime>

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
  std::vector<std::string> publishers;
  uint32_t threshold = 1;
  uint32_t publisher_threshold = 1;
  std::vector<std::string> sign;
  std::string out;
};

Expected<pb::TrustRoot> make_root(const TrustOptions& o, uint64_t version) {
  TrustRootSpec spec;
  spec.version = version;
  spec.created_at = static_cast<int64_t>(std::time(nullptr));
  SOVDEV_ASSIGN(spec.root_keys, load_public_keys(o.roots));
  SOVDEV_ASSIGN(spec.publisher_keys, load_public_keys(o.publishers));
  spec.root_threshold = o.threshold;
  spec.publisher_threshold = o.publisher_threshold;
  return make_trust_root(spec);
}

void print_root(const TrustPolicy& policy, const std::string& path) {
  const auto& r = policy.root();
  std::printf("trust root v%llu written to %s\n", static_cast<unsigned long long>(r.version()),
              path.c_str());
  std::printf("  root keys: %d (threshold %u), publisher keys: %d (threshold %u), signatures ok\n",
              r.root().key_ids_size(), r.root().threshold(), r.publisher().key_ids_size(),
              r.publisher().threshold());
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
  print_root(*policy, o.out);
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
  print_root(*next, o.out);
  return {};
}

void add_role_options(CLI::App* cmd, TrustOptions& o) {
  cmd->add_option("--root", o.roots, "Public key file(s) of the root role")->required();
  cmd->add_option("--publisher", o.publishers,
                  "Public key file(s) allowed to sign bundles and catalogs")
      ->required();
  cmd->add_option("--threshold", o.threshold, "Root signatures required")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--publisher-threshold", o.publisher_threshold,
                  "Publisher signatures required on bundles and catalogs")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--sign", o.sign, "Secret root key file(s) to sign with")->required();
  cmd->add_option("--out", o.out, "Where to write the signed trust root")->required();
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
      "rotate", "Create version N+1 of a trust root, signed by the old and the new root keys");
  rot_cmd->add_option("--current", rot_opts->current, "The trust root in force now")
      ->required()
      ->check(CLI::ExistingFile);
  add_role_options(rot_cmd, *rot_opts);
  commands.push_back({rot_cmd, [rot_opts] { return rotate(*rot_opts); }});
}

}  // namespace sovdev::hub
