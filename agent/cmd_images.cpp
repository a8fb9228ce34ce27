// images: the hand-over of the images the cached bundles carry (docs/design-images.md).
//   images serve  the read-only registry on loopback that containerd pulls from as a mirror
//   images hosts  the mirror configuration for containerd (hosts.toml) or k3s/RKE2
//                 (registries.yaml) naming every registry the cached bundles' images come from
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "agent/commands.hpp"
#include "agent/config.hpp"
#include "agent/images/hosts_toml.hpp"
#include "agent/images/registry_server.hpp"
#include "agent/images/store_blob_source.hpp"
#include "bundles/keys.hpp"
#include "bundles/trust.hpp"
#include "platform/fs/files.hpp"
#include "platform/proc/sd_notify.hpp"
#include "platform/proc/signals.hpp"
#include "platform/store/agent_cache.hpp"

namespace sovdev::agent {
namespace {

struct ImagesOptions {
  std::string config;
  std::string state;
  images::RegistryOptions registry;
  std::string out;  // hosts: the folder of hosts.toml files, or a registries.yaml path
  bool registries_yaml = false;
  std::string mirror;  // hosts: the registry's URL as the runtime reaches it
};

Expected<std::string> state_folder(const ImagesOptions& o) {
  if (!o.state.empty()) return o.state;
  if (o.config.empty()) return make_error(Errc::usage, "needs --config or --state");
  SOVDEV_ASSIGN(AgentConfig config, load_config(o.config));
  return config.state_dir;
}

Status serve(const ImagesOptions& o) {
  SOVDEV_ASSIGN(const std::string state, state_folder(o));
  SOVDEV_ASSIGN(auto source, images::StoreBlobSource::open(state));
  SOVDEV_ASSIGN(auto server, images::RegistryServer::start(*source, o.registry));
  proc::install_stop_handlers();
  proc::ServiceNotifier notifier([](const std::string& w) { spdlog::warn("{}", w); });
  spdlog::info("serving the images held in {} at {} (read-only)", state, server->base_url());
  notifier.ready("serving " + server->base_url());
  while (!proc::stop_requested()) {
    notifier.tick(proc::ServiceNotifier::Clock::now());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  notifier.stopping();
  return {};
}

// The registries the images of the cached verified bundles come from: the first part of each
// pinned reference (the hub writes them normalized, "docker.io/library/postgres@sha256:...").
Expected<std::vector<std::string>> cached_registries(const std::string& state) {
  SOVDEV_ASSIGN(store::Database db, open_state(state, false));
  store::BundleCache cache(db);
  SOVDEV_ASSIGN(auto bundles, cache.list());
  std::set<std::string> registries;
  for (const auto& b : bundles) {
    if (b.state != store::BundleState::verified) continue;
    pb::Signed envelope;
    pb::BundleManifest manifest;
    if (!envelope.ParseFromString(b.envelope) || !manifest.ParseFromString(envelope.body())) {
      return make_error(Errc::store, "cached manifest of " + b.stack + "@" +
                                         std::to_string(b.version) + " unreadable");
    }
    for (const auto& image : manifest.images()) {
      const std::string& pinned = image.pinned();
      const size_t slash = pinned.find('/');
      if (slash == std::string::npos) continue;
      std::string registry = pinned.substr(0, slash);
      if (images::valid_registry_host(registry)) registries.insert(std::move(registry));
    }
  }
  return std::vector<std::string>(registries.begin(), registries.end());
}

Status hosts(const ImagesOptions& o) {
  SOVDEV_ASSIGN(const std::string state, state_folder(o));
  SOVDEV_ASSIGN(const auto registries, cached_registries(state));
  if (registries.empty()) {
    std::fprintf(stderr, "no cached bundle carries images: nothing to write\n");
    return {};
  }
  if (o.registries_yaml) {
    SOVDEV_ASSIGN(const std::string text, images::registries_yaml_text(registries, o.mirror));
    if (o.out == "-") {
      std::fputs(text.c_str(), stdout);
      return {};
    }
    SOVDEV_TRY(fs::write_file_atomic(o.out, text, 0644));
  } else {
    SOVDEV_TRY(images::write_hosts_toml(o.out, registries, o.mirror));
  }
  for (const auto& r : registries) std::printf("%s -> %s\n", r.c_str(), o.mirror.c_str());
  return {};
}

void add_source_options(CLI::App* cmd, ImagesOptions& o) {
  auto* config = cmd->add_option("--config", o.config, "Agent configuration file (TOML)")
                     ->check(CLI::ExistingFile);
  auto* state = cmd->add_option("--state", o.state, "Agent state folder (instead of --config)")
                    ->check(CLI::ExistingDirectory);
  config->excludes(state);
}

}  // namespace

void add_images(CLI::App& app, cli::Commands& commands) {
  auto o = std::make_shared<ImagesOptions>();
  auto* images_cmd = app.add_subcommand(
      "images",
      "The container images the bundles carry: the loopback registry the runtime "
      "pulls them from, and its mirror configuration");
  images_cmd->require_subcommand(1);

  auto* serve_cmd = images_cmd->add_subcommand(
      "serve",
      "Serve the images held in the state folder as a read-only OCI registry (by digest only) "
      "for containerd, MicroK8s, k3s or RKE2 to use as a mirror. Runs until stopped; its own "
      "process (sovdev-agent-images.service), reading agent.db read-only");
  add_source_options(serve_cmd, *o);
  serve_cmd->add_option("--listen", o->registry.listen, "ADDR:PORT, numeric (port 0: any)")
      ->capture_default_str();
  serve_cmd->add_flag("--allow-remote", o->registry.allow_remote,
                      "Listen on a non-loopback address (the registry has no authentication: "
                      "only on a network that only the cluster's nodes reach)");
  serve_cmd->add_option("--max-connections", o->registry.max_connections, "Connections at once")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  commands.push_back({serve_cmd, [o] { return serve(*o); }});

  auto* hosts_cmd = images_cmd->add_subcommand(
      "hosts",
      "Write the runtime's mirror configuration for every registry the cached bundles' images "
      "come from: containerd's <OUT>/<registry>/hosts.toml (MicroK8s: "
      "/var/snap/microk8s/current/args/certs.d), or with --registries-yaml k3s/RKE2's "
      "registries.yaml (OUT a file, - for stdout)");
  add_source_options(hosts_cmd, *o);
  hosts_cmd->add_option("--out", o->out, "Folder for hosts.toml files, or the registries.yaml")
      ->required();
  hosts_cmd->add_flag("--registries-yaml", o->registries_yaml,
                      "Write k3s/RKE2's registries.yaml instead of hosts.toml files");
  o->mirror = "http://127.0.0.1:5050";
  hosts_cmd->add_option("--mirror", o->mirror, "The registry's URL as the runtime reaches it")
      ->capture_default_str();
  commands.push_back({hosts_cmd, [o] { return hosts(*o); }});
}

}  // namespace sovdev::agent
