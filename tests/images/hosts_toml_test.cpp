// The runtime's mirror configuration: containerd's hosts.toml and k3s/RKE2's registries.yaml.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "agent/images/hosts_toml.hpp"
#include "tests/support/process.hpp"

using namespace sovdev;
using namespace sovdev::agent::images;
using sovdev::testing::read_text;
using sovdev::testing::TempDir;

TEST_CASE("hosts.toml sends a registry's pulls to the loopback registry, upstream kept as fallback",
          "[images][hosts]") {
  auto text = hosts_toml_text("ghcr.io", "http://127.0.0.1:5050");
  REQUIRE(text);
  CHECK_THAT(*text, Catch::Contains("server = \"https://ghcr.io\"\n"));
  CHECK_THAT(*text, Catch::Contains("\n[host.\"http://127.0.0.1:5050\"]\n  capabilities = "
                                    "[\"pull\", \"resolve\"]\n"));
  auto docker = hosts_toml_text("docker.io", "http://127.0.0.1:5050");
  REQUIRE(docker);
  CHECK_THAT(*docker, Catch::Contains("server = \"https://registry-1.docker.io\"\n"));
}

TEST_CASE("hosts.toml files are written per registry, 0644, replacing the old ones",
          "[images][hosts]") {
  TempDir tmp;
  const std::string dir = tmp / "certs.d";
  REQUIRE(write_hosts_toml(dir, {"docker.io", "registry.example.com:5000"}, "http://[::1]:6000"));
  REQUIRE(write_hosts_toml(dir, {"docker.io"}, "http://127.0.0.1:5050"));
  const std::string docker = read_text(dir + "/docker.io/hosts.toml");
  CHECK_THAT(docker, Catch::Contains("[host.\"http://127.0.0.1:5050\"]"));
  CHECK_THAT(docker, !Catch::Contains("::1"));
  CHECK_THAT(read_text(dir + "/registry.example.com:5000/hosts.toml"),
             Catch::Contains("server = \"https://registry.example.com:5000\""));
  struct stat st {};
  REQUIRE(::stat((dir + "/docker.io/hosts.toml").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0644);
}

TEST_CASE("a registry that is not a host name, or a mirror URL that is not plain, is refused",
          "[images][hosts]") {
  TempDir tmp;
  for (const char* bad : {"", "..", "../etc", "a/b", "docker.io/library", "a..b", ".a", "a b",
                          "a:", "a:port", "host\"]\n[x", "a:123456"}) {
    INFO(bad);
    auto written = write_hosts_toml(tmp.path(), {bad}, "http://127.0.0.1:5050");
    REQUIRE_FALSE(written);
    CHECK(written.error().code == Errc::usage);
    CHECK_FALSE(registries_yaml_text({bad}, "http://127.0.0.1:5050"));
  }
  for (const char* bad : {"", "127.0.0.1:5050", "ftp://x", "http://x\"\n", "http://a b"}) {
    INFO(bad);
    CHECK_FALSE(hosts_toml_text("docker.io", bad));
    CHECK_FALSE(registries_yaml_text({"docker.io"}, bad));
  }
}

TEST_CASE("registries.yaml mirrors each registry to the loopback registry for k3s and RKE2",
          "[images][hosts]") {
  auto yaml = registries_yaml_text({"docker.io", "ghcr.io"}, "http://127.0.0.1:5050");
  REQUIRE(yaml);
  CHECK_THAT(*yaml, Catch::EndsWith("mirrors:\n"
                                    "  \"docker.io\":\n"
                                    "    endpoint:\n"
                                    "      - \"http://127.0.0.1:5050\"\n"
                                    "  \"ghcr.io\":\n"
                                    "    endpoint:\n"
                                    "      - \"http://127.0.0.1:5050\"\n"));
  auto none = registries_yaml_text({}, "http://127.0.0.1:5050");
  REQUIRE(none);
  CHECK_THAT(*none, Catch::EndsWith("mirrors: {}\n"));
}
