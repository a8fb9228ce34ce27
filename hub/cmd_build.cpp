#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>
#include <set>

#include "bundles/hash.hpp"
#include "bundles/trust.hpp"
#include "common/hex.hpp"
#include "common/text.hpp"
#include "hub/build.hpp"
#include "hub/commands.hpp"
#include "hub/images/oci_resolver.hpp"
#include "hub/key_files.hpp"
#include "hub/rollout/operations.hpp"
#include "platform/fs/files.hpp"
#include "platform/store/hub_store.hpp"

namespace sovdev::hub {
namespace {

struct BuildOptions {
  std::string dir;
  std::string stack;
  std::string channel;
  uint64_t version = 0;
  std::vector<std::string> arch;
  std::vector<std::string> keys;
  std::string out;
  std::string env;
  std::string revision;
  std::string trust;
  std::string db, store_key, secrets_env;
  bool allow_plaintext = false;
  int level = 19;
  uint32_t chunk_size = kDefaultChunkSize;
  bool quiet = false;
  bool hold = false;
  bool images = false;
  std::vector<std::string> image_sources;  // PREFIX=URL
  int image_level = 19;
};

// Large inputs get a progress line on stderr; a terminal sees it rewritten in place.
std::function<void(const BuildProgress&)> progress_printer(bool quiet) {
  if (quiet) return {};
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  return [tty, last = std::string(), shown = false](const BuildProgress& p) mutable {
    if (p.stage == "writing" ? !shown : p.total < (8u << 20)) return;
    shown = true;
    const unsigned pct = p.total ? static_cast<unsigned>(p.done * 100 / p.total) : 100;
    const std::string line = p.stage + " " + human_bytes(p.done) + " / " + human_bytes(p.total) +
                             " (" + std::to_string(pct) + "%)";
    if (tty) {
      std::fprintf(stderr, "\r%-60s%s", line.c_str(), p.stage == "writing" ? "\n" : "");
    } else if (p.stage != last || pct % 25 == 0) {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    last = p.stage;
  };
}

// Per image: as written -> pinned, and what its resolution cost.
void print_images(FILE* out, const images::BuildImages& built, const pb::BundleManifest& m) {
  uint64_t wire = 0;
  std::set<std::string> counted;  // a layer two arches share is listed for each
  for (const auto& b : m.image_blobs()) {
    if (counted.insert(b.digest()).second) wire += b.wire_size();
  }
  std::fprintf(out, "  %zu image(s), %d blob(s), %s on the wire in full\n", built.images(),
               m.image_blobs_size(), human_bytes(wire).c_str());
  for (const auto& report : built.reports()) {
    const auto& r = report.resolved;
    std::fprintf(out, "    %s -> %s: %u layer(s) downloaded, %u reused, %s read\n",
                 report.reference.c_str(), r.pinned.c_str(), r.layers_downloaded, r.layers_reused,
                 human_bytes(r.bytes_downloaded).c_str());
  }
}

// A stack folder (base/ + env/) is rendered for --env, which also supplies defaults: the
// channel is the environment's name, the stack the folder's, the architectures its [build].
Status build(BuildOptions o) {
  std::optional<StackEnv> env;
  if (is_stack_dir(o.dir)) {
    if (o.env.empty()) {
      return make_error(Errc::usage, o.dir +
                                         " is a stack folder (base/ and env/): name the "
                                         "environment to build with --env");
    }
    SOVDEV_ASSIGN(env, load_stack_env(o.dir, o.env));
    if (o.channel.empty()) o.channel = o.env;
    if (o.stack.empty()) o.stack = stack_name_of(o.dir);
    if (o.arch.empty()) o.arch = env->arch;
    if (!o.secrets_env.empty()) {
      return make_error(Errc::usage,
                        "--secrets-env is for a plain folder: a stack folder's "
                        "secret values are those of its --env");
    }
  }
  for (const auto& [value, flag] : {std::pair{&o.stack, "--stack"}, {&o.channel, "--channel"}}) {
    if (value->empty()) return make_error(Errc::usage, std::string(flag) + " is required");
  }
  if (o.arch.empty()) {
    return make_error(Errc::usage, "--arch is required (or [build] arch in the values file)");
  }
  if (o.hold && o.db.empty()) {
    return make_error(Errc::usage, "--hold needs --db: the hub database the bundle goes to");
  }
  if (o.images && o.db.empty()) {
    return make_error(Errc::usage,
                      "--images needs --db: the hub database the images' blobs are stored in");
  }
  std::vector<oci::SourceRule> rules;
  for (const auto& text : o.image_sources) {
    auto rule = oci::parse_source_rule(text);
    if (!rule)
      return make_error(Errc::usage, "--image-source " + text + ": " + rule.error().message);
    rules.push_back(std::move(*rule));
  }
  std::optional<store::Database> db;
  std::optional<images::OciResolver> resolver;
  std::optional<images::BuildImages> build_images;
  if (o.images) {
    SOVDEV_ASSIGN(db, store::open_hub_database(o.db));
    resolver.emplace(*db, std::move(rules), o.image_level);
    build_images.emplace(*resolver);
  }
  BuildRequest req;
  req.source_dir = o.dir;
  req.env = env ? &*env : nullptr;
  req.out_path = o.out;
  req.info = {o.stack,
              o.channel,
              o.version,
              o.arch,
              o.env,
              o.revision,
              static_cast<int64_t>(std::time(nullptr))};
  req.options.level = o.level;
  req.options.chunk_size = o.chunk_size;
  if (o.trust.empty()) {
    SOVDEV_ASSIGN(req.keys, load_secret_keys(o.keys));
  } else {
    SOVDEV_ASSIGN(TrustPolicy trust, load_trust_file(o.trust));
    SOVDEV_ASSIGN(req.keys, load_role_keys(o.keys, trust, TrustRole::targets, "build"));
  }
  req.progress = progress_printer(o.quiet);
  req.secrets = {env ? o.env : o.secrets_env,
                 env ? "--env" : "--secrets-env",
                 env.has_value(),
                 o.allow_plaintext,
                 o.db,
                 o.store_key};
  req.images = build_images ? &*build_images : nullptr;
  SOVDEV_ASSIGN(BuildResult r, build_bundle(req));
  FILE* summary = summary_stream(o.out);
  std::fprintf(summary, "built %s: %u objects from %zu files\n", describe(r.manifest).c_str(),
               r.manifest.resource_count(), r.files);
  std::fprintf(summary, "  %s of manifests -> %s payload in %d chunk(s); file %s, %s\n",
               human_bytes(r.input_bytes).c_str(), human_bytes(r.manifest.payload_size()).c_str(),
               r.manifest.chunk_sha256_size(), o.out == "-" ? "(stdout)" : o.out.c_str(),
               human_bytes(r.file_size).c_str());
  if (r.secrets.sealed > 0) {
    std::fprintf(summary, "  sealed %u Secret(s) for channel %s, epoch %llu\n", r.secrets.sealed,
                 r.secrets.channel.c_str(), static_cast<unsigned long long>(r.secrets.epoch));
  }
  if (build_images) print_images(summary, *build_images, r.manifest);
  std::fprintf(summary, "  digest %s\n", to_hex(r.digest).c_str());
  if (o.hold) {
    // Recorded before the bundle is published, so no catalog ever lists it as current.
    if (!db) {
      SOVDEV_ASSIGN(db, store::open_hub_database(o.db));
    }
    SOVDEV_ASSIGN(const auto held,
                  rollout::hold_current(*db, o.channel, o.stack, req.info.created_at));
    if (held) {
      std::fprintf(summary,
                   "  %s/%s held at version %llu: publish this bundle, then roll it out "
                   "with sovdev-hub rollout start\n",
                   o.channel.c_str(), o.stack.c_str(), static_cast<unsigned long long>(*held));
    } else {
      std::fprintf(summary,
                   "  nothing of %s/%s is published yet: this version will be current "
                   "when published\n",
                   o.channel.c_str(), o.stack.c_str());
    }
  }
  for (const auto& warning : r.secrets.warnings) {
    std::fprintf(stderr, "warning: %s\n", warning.c_str());
  }
  for (const auto& name : r.unused_values) {
    std::fprintf(stderr, "warning: %s: value %s is used by no manifest\n", env->file.c_str(),
                 name.c_str());
  }
  return {};
}

}  // namespace

void add_build(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<BuildOptions>();
  auto* cmd = app.add_subcommand(
      "build", "Build a signed bundle file from a folder of Kubernetes YAML manifests");
  cmd->add_option("dir", o->dir,
                  "Folder of .yaml/.yml/.json manifests (read recursively), or a stack folder "
                  "(base/ + env/<env>.toml) rendered for --env")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--stack", o->stack, "Stack name, e.g. sovdev (a stack folder: its name)");
  cmd->add_option("--channel", o->channel,
                  "Channel the agents follow, e.g. edge (a stack folder: the environment)");
  cmd->add_option("--version", o->version, "Bundle version: a positive integer above the last")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--arch", o->arch,
                  "Target architectures, comma separated (amd64,arm64); a stack folder: its "
                  "values file's [build] arch")
      ->delimiter(',')
      ->check(CLI::IsMember({"amd64", "arm64", "armhf", "riscv64", "ppc64el", "s390x"}));
  cmd->add_option("--key", o->keys,
                  "Targets secret key file(s) to sign the bundle manifest with (never the hub's "
                  "online key: agents refuse bundles it signs)")
      ->required();
  cmd->add_option("--out", o->out,
                  "Bundle file to write (.sdb), or - for stdout (the summary then goes to stderr)")
      ->required();
  cmd->add_option("--env", o->env,
                  "Environment (dev, staging, prod, edge): renders a stack folder with "
                  "env/<env>.toml; recorded in the manifest");
  cmd->add_option("--revision", o->revision,
                  "Source revision recorded in the manifest (e.g. a git commit)");
  cmd->add_option("--trust", o->trust,
                  "Check first that the keys are targets keys of this trust root and meet its "
                  "targets threshold")
      ->check(CLI::ExistingFile);
  cmd->add_option("--level", o->level, "zstd compression level")
      ->capture_default_str()
      ->check(CLI::Range(1, 22));
  cmd->add_option("--chunk-size", o->chunk_size, "Chunk size in bytes")
      ->capture_default_str()
      ->check(CLI::Range(kMinChunkSize, kMaxChunkSize));
  cmd->add_option("--secrets-env", o->secrets_env,
                  "A plain folder whose Secrets name ${secret:NAME/KEY}: the environment whose "
                  "values they take (a stack folder uses --env)");
  cmd->add_option("--db", o->db,
                  "Hub database holding the secret values and the channel's epoch keys (needed "
                  "only when the sources name ${secret:NAME/KEY}, or with --hold or --images)");
  cmd->add_flag("--hold", o->hold,
                "Hold the stack in --db at its current version (unless held already): once this "
                "bundle is published, agents stay where they are until a rollout takes it out");
  cmd->add_option("--store-key", o->store_key,
                  "Secret-store key file (0600; default $CREDENTIALS_DIRECTORY/secret-store.key "
                  "under systemd); needed only when the sources name secrets");
  cmd->add_flag("--allow-plaintext-secrets", o->allow_plaintext,
                "Let a stack folder's Secrets hold literal values (they go into the bundle "
                "readable by anyone who gets it, or sealed along with a Secret's references)");
  cmd->add_flag("--images", o->images,
                "Resolve the images the workloads name for every --arch, store their blobs in "
                "--db, pin the manifests to them and list them in the bundle");
  cmd->add_option(
      "--image-source", o->image_sources,
      "PREFIX=URL: images whose name starts with PREFIX come from URL (http://host:port, "
      "https://host, oci:/path to an OCI layout); repeatable, longest prefix wins; "
      "default: the image's own registry over HTTPS");
  cmd->add_option("--image-level", o->image_level, "zstd level of the images' blobs on the wire")
      ->capture_default_str()
      ->check(CLI::Range(1, 22));
  cmd->add_flag("--quiet", o->quiet, "No progress line");
  commands.push_back({cmd, [o] { return build(*o); }});
}

}  // namespace sovdev::hub
