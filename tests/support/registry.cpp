#include "tests/support/registry.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "tests/support/broker.hpp"

namespace sovdev::testing {
namespace {

std::string image_tool(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/usr/sbin"}) {
    const std::string path = std::string(dir) + "/" + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  throw std::runtime_error(name +
                           " not found: run scripts/setup.sh (docker-registry, skopeo, "
                           "umoci)");
}

std::string image_tool_run(const std::vector<std::string>& argv) {
  const RunResult r = run(argv);
  if (r.exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error(cmd + "failed (" + std::to_string(r.exit_code) + "): " + r.out +
                             r.err);
  }
  return r.out;
}

// The status code of GET /v2/ on 127.0.0.1:port, or 0 when nothing answers yet.
int registry_v2_status(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int status = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    char buf[64] = {};
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size()) &&
        ::read(fd, buf, sizeof buf - 1) > 12 && std::string(buf).rfind("HTTP/1.", 0) == 0) {
      status = std::atoi(buf + 9);
    }
  }
  ::close(fd);
  return status;
}

std::string digest_hex(const std::string& digest) {
  return digest.rfind("sha256:", 0) == 0 ? digest.substr(7) : digest;
}

}  // namespace

std::unique_ptr<Registry> Registry::start() {
  std::unique_ptr<Registry> registry(new Registry());
  for (int attempt = 0; attempt < 5; attempt++) {
    registry->port_ = free_port();
    if (registry->launch()) return registry;
  }
  throw std::runtime_error("docker-registry found no free port in 5 tries:\n" + registry->log());
}

bool Registry::launch() {
  const std::string config = dir_ / "config.yml";
  write_text(config,
             "version: 0.1\n"
             "log:\n  level: error\n  accesslog:\n    disabled: true\n"
             "storage:\n  filesystem:\n    rootdirectory: " +
                 (dir_ / "storage") +
                 "\n  delete:\n    enabled: true\n"
                 "  maintenance:\n    uploadpurging:\n      enabled: false\n"
                 "http:\n  addr: 127.0.0.1:" +
                 std::to_string(port_) + "\n");
  child_ = std::make_unique<Child>(
      std::vector<std::string>{image_tool("docker-registry"), "serve", config}, dir_ / "log");
  const bool up = wait_until([&] { return !child_->running() || registry_v2_status(port_) == 200; },
                             std::chrono::seconds(20));
  if (child_->running() && up) return true;
  if (!child_->running()) return false;  // most likely the port was taken meanwhile
  throw std::runtime_error("docker-registry did not answer GET /v2/ within 20 s:\n" + log());
}

Registry::~Registry() {
  stop();
}

std::string Registry::host() const {
  return "127.0.0.1:" + std::to_string(port_);
}

std::string Registry::url() const {
  return "http://" + host();
}

std::string Registry::blob_file(const std::string& digest) const {
  const std::string hex = digest_hex(digest);
  return dir_ /
         ("storage/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data");
}

void Registry::stop() {
  if (!child_) return;
  if (child_->running()) {
    ::kill(child_->pid(), SIGTERM);
    if (!wait_until([&] { return !child_->running(); }, std::chrono::seconds(5))) {
      child_->kill_hard();
    }
  }
  child_->wait();
  child_.reset();
}

std::string Registry::log() const {
  return read_text(dir_ / "log");
}

void make_layout(const std::string& layout) {
  image_tool_run({image_tool("umoci"), "init", "--layout", layout});
}

void make_image(const std::string& layout, const std::string& tag, const std::string& arch,
                const std::vector<std::vector<ImageFile>>& layers, const std::string& from_tag) {
  const std::string umoci = image_tool("umoci");
  if (from_tag.empty()) {
    image_tool_run({umoci, "new", "--image", layout + ":" + tag});
    image_tool_run(
        {umoci, "config", "--image", layout + ":" + tag, "--architecture", arch, "--os", "linux"});
  } else {
    image_tool_run({umoci, "config", "--image", layout + ":" + from_tag, "--tag", tag,
                    "--architecture", arch, "--os", "linux"});
  }
  for (const auto& files : layers) {
    TempDir work;
    const std::string bundle = work / "bundle";
    image_tool_run({umoci, "unpack", "--rootless", "--image", layout + ":" + tag, bundle});
    for (const auto& f : files) {
      const std::filesystem::path path = std::filesystem::path(bundle) / "rootfs" / f.path;
      std::filesystem::create_directories(path.parent_path());
      write_text(path.string(), f.content);
    }
    image_tool_run({umoci, "repack", "--image", layout + ":" + tag, bundle});
  }
}

std::string layout_digest(const std::string& layout, const std::string& tag) {
  const auto index = nlohmann::json::parse(read_text(layout + "/index.json"));
  for (const auto& d : index["manifests"]) {
    if (d.contains("annotations") &&
        d["annotations"].value("org.opencontainers.image.ref.name", "") == tag) {
      return d["digest"].get<std::string>();
    }
  }
  throw std::runtime_error(layout + " has no image tagged " + tag);
}

std::string layout_blob(const std::string& layout, const std::string& digest) {
  return layout + "/blobs/sha256/" + digest_hex(digest);
}

std::string file_digest(const std::string& path) {
  const std::string out = image_tool_run({image_tool("sha256sum"), path});
  return "sha256:" + out.substr(0, 64);
}

std::string make_index(const std::string& layout, const std::string& tag,
                       const std::vector<std::string>& tags) {
  nlohmann::json manifests = nlohmann::json::array();
  for (const auto& t : tags) {
    const std::string digest = layout_digest(layout, t);
    const std::string manifest_file = layout_blob(layout, digest);
    const auto manifest = nlohmann::json::parse(read_text(manifest_file));
    const auto config = nlohmann::json::parse(
        read_text(layout_blob(layout, manifest["config"]["digest"].get<std::string>())));
    manifests.push_back(
        {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
         {"digest", digest},
         {"size", std::filesystem::file_size(manifest_file)},
         {"platform", {{"architecture", config["architecture"]}, {"os", config["os"]}}}});
  }
  const std::string bytes = nlohmann::json{
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.index.v1+json"},
      {"manifests", manifests}}.dump();
  TempDir work;
  write_text(work / "index", bytes);
  const std::string digest = file_digest(work / "index");
  write_text(layout_blob(layout, digest), bytes);
  auto index = nlohmann::json::parse(read_text(layout + "/index.json"));
  index["manifests"].push_back({{"mediaType", "application/vnd.oci.image.index.v1+json"},
                                {"digest", digest},
                                {"size", bytes.size()},
                                {"annotations", {{"org.opencontainers.image.ref.name", tag}}}});
  write_text(layout + "/index.json", index.dump());
  return digest;
}

void push_image(const std::string& layout, const std::string& tag, const Registry& registry,
                const std::string& repo_tag) {
  image_tool_run({image_tool("skopeo"), "copy", "--all", "--quiet", "--dest-tls-verify=false",
                  "oci:" + layout + ":" + tag, "docker://" + registry.host() + "/" + repo_tag});
}

std::string noise_bytes(size_t size, uint32_t seed) {
  std::string out(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (auto& ch : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    ch = static_cast<char>(x & 0xff);
  }
  return out;
}

}  // namespace sovdev::testing
