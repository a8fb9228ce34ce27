// Real OCI clients pulling the test image from the loopback registry: skopeo, and containerd
// (its own daemon under a temporary folder, `ctr images pull --hosts-dir` with the hosts.toml
// the agent writes) where containerd can run here.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "agent/images/hosts_toml.hpp"
#include "agent/images/registry_server.hpp"
#include "tests/images/oci_fixture.hpp"

using namespace sovdev;
using namespace sovdev::agent::images;
using namespace sovdev::testing;

namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string hex_of(const std::string& digest) {
  return digest.substr(std::string("sha256:").size());
}

std::string tail(const std::string& text, size_t n = 1500) {
  return text.size() > n ? text.substr(text.size() - n) : text;
}

struct Registry {
  TempDir tmp;
  TestImage image = make_test_image();
  TestBlobSource source{tmp.path()};
  std::unique_ptr<RegistryServer> server;
  Registry() {
    for (const TestBlob* blob : image.all()) source.add(*blob);
    RegistryOptions options;
    options.listen = "127.0.0.1:0";
    auto started = RegistryServer::start(source, options);
    REQUIRE(started);
    server = std::move(*started);
  }
};

}  // namespace

TEST_CASE("skopeo copies the pinned image from the loopback registry with every digest intact",
          "[images][skopeo]") {
  const std::string skopeo = find_program("skopeo");
  if (skopeo.empty()) {
    WARN("SOVDEV-SKIP: skopeo is not installed (scripts/setup.sh installs it)");
    return;
  }
  Registry r;
  TempDir out;
  write_text(out / "policy.json", R"({"default":[{"type":"insecureAcceptAnything"}]})");
  const std::string ref = "docker://127.0.0.1:" + std::to_string(r.server->port()) +
                          "/library/some/name@" + r.image.index.digest();
  const RunResult copied =
      run({skopeo, "--policy", out / "policy.json", "copy", "--all", "--preserve-digests",
           "--src-tls-verify=false", ref, "oci:" + out / "layout"});
  INFO(copied.out << copied.err);
  REQUIRE(copied.exit_code == 0);
  CHECK(r.source.calls() >= 8);
  for (const TestBlob* blob : r.image.all()) {
    INFO(blob->media_type << " " << blob->digest());
    const std::string path = out / ("layout/blobs/sha256/" + hex_of(blob->digest()));
    REQUIRE(exists(path));
    CHECK(digest_text(read_text(path)) == blob->digest());
  }
  const auto index = nlohmann::json::parse(read_text(out / "layout/index.json"));
  CHECK(index["manifests"][0]["digest"] == r.image.index.digest());
}

TEST_CASE("containerd pulls the pinned image through the hosts.toml mirror and records its digest",
          "[images][containerd]") {
  const std::string containerd_program = find_program("containerd");
  const std::string ctr = find_program("ctr");
  if (containerd_program.empty() || ctr.empty()) {
    WARN("SOVDEV-SKIP: containerd or ctr is not installed (scripts/setup.sh installs them)");
    return;
  }
  Registry r;
  TempDir c;
  const std::string sock = c / "containerd.sock";
  write_text(c / "config.toml",
             "version = 2\nroot = \"" + c / "root" + "\"\nstate = \"" + c / "state" +
                 "\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"" +
                 sock + "\"\n[ttrpc]\n  address = \"" + sock + ".ttrpc\"\n[debug]\n  address = \"" +
                 sock + ".debug\"\n[metrics]\n  address = \"\"\n");
  Child containerd({containerd_program, "--config", c / "config.toml"}, c / "containerd.log");
  const bool up =
      wait_until([&] { return exists(sock) || !containerd.running(); }, std::chrono::seconds(20)) &&
      containerd.running() && run({ctr, "--address", sock, "version"}).exit_code == 0;
  if (!up) {
    WARN("SOVDEV-SKIP: containerd does not start here: " << tail(read_text(c / "containerd.log")));
    return;
  }
  const std::string mirror = r.server->base_url();
  REQUIRE(write_hosts_toml(c / "hosts", {"registry.example.com"}, mirror));
  const std::string ref = "registry.example.com/some/name@" + r.image.index.digest();
  // The native snapshotter (plain copies): overlayfs may not mount inside a CI container.
  const RunResult pulled =
      run({ctr, "--address", sock, "images", "pull", "--hosts-dir", c / "hosts", "--snapshotter",
           "native", "--platform", "linux/amd64", ref});
  INFO(pulled.out << pulled.err << tail(read_text(c / "containerd.log")));
  REQUIRE(pulled.exit_code == 0);
  CHECK(r.source.calls() >= 5);  // the pull came from the loopback registry
  const RunResult listed = run({ctr, "--address", sock, "images", "ls"});
  INFO(listed.out);
  CHECK_THAT(listed.out, Catch::Contains(ref));
  CHECK_THAT(listed.out, Catch::Contains(r.image.index.digest()));
  // What containerd holds, each checked against its digest by containerd itself.
  const RunResult content = run({ctr, "--address", sock, "content", "ls", "-q"});
  for (const TestBlob* blob : {&r.image.index, &r.image.manifests[0], &r.image.configs[0],
                               &r.image.layers[0], &r.image.layers[1]}) {
    CHECK_THAT(content.out, Catch::Contains(blob->digest()));
  }
}
