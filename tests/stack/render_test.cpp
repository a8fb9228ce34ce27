// Rendering a stack folder for one environment: placeholders, defaults, escapes, exclusions,
// and the errors a stack author sees (file and line).
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>

#include "hub/render.hpp"
#include "tests/support/process.hpp"

namespace sovdev::hub {
namespace {

using testing::TempDir;
using testing::write_text;

StackEnv env_with(std::map<std::string, std::string> values) {
  StackEnv env;
  env.name = "edge";
  env.file = "env/edge.toml";
  env.values = std::move(values);
  return env;
}

// A stack folder with one manifest and the given values file.
void make_stack(const TempDir& dir, const std::string& values_toml) {
  std::filesystem::create_directories(dir / "base/db");
  std::filesystem::create_directories(dir / "env");
  write_text(dir / "base/db/pvc.yaml",
             "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n"
             "  namespace: sovdev\nspec:\n  resources:\n    requests:\n"
             "      storage: ${PG_STORAGE}\n");
  write_text(dir / "base/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: sovdev\n");
  write_text(dir / "env/edge.toml", values_toml);
}

}  // namespace

TEST_CASE("render substitutes values and defaults and leaves other dollars alone", "[render]") {
  const auto env = env_with({{"HOST", "edge.grafana.localhost"}, {"REPLICAS", "1"}});
  std::vector<std::string> used;
  auto out = render_text("a.yaml",
                         "host: ${HOST}\nreplicas: ${REPLICAS}\nsize: ${SIZE:-4Gi}\n"
                         "script: echo $HOME ${HOST}$$ and $${LITERAL} $\n",
                         env, &used);
  REQUIRE(out);
  CHECK(*out ==
        "host: edge.grafana.localhost\nreplicas: 1\nsize: 4Gi\n"
        "script: echo $HOME edge.grafana.localhost$$ and ${LITERAL} $\n");
  CHECK(used == std::vector<std::string>{"HOST", "REPLICAS", "SIZE", "HOST"});
}

TEST_CASE("a defined value wins over the placeholder's default", "[render]") {
  auto out = render_text("a.yaml", "size: ${SIZE:-4Gi}\nempty: '${EMPTY:-}'\n",
                         env_with({{"SIZE", "20Gi"}}));
  REQUIRE(out);
  CHECK(*out == "size: 20Gi\nempty: ''\n");
}

TEST_CASE("a value may name other values, so a site changes its domain in one line", "[render]") {
  const auto env = env_with({{"BASE_DOMAIN", "site.example"},
                             {"AUTH_HOST", "edge.auth.${BASE_DOMAIN}"},
                             {"AUTH_URL", "http://${AUTH_HOST}${PORT_SUFFIX:-}/x"}});
  std::vector<std::string> used;
  auto out = render_text("a.yaml", "url: ${AUTH_URL}\n", env, &used);
  REQUIRE(out);
  CHECK(*out == "url: http://edge.auth.site.example/x\n");
  // BASE_DOMAIN counts as used: it is looked up through AUTH_HOST.
  CHECK(std::find(used.begin(), used.end(), "BASE_DOMAIN") != used.end());

  auto missing = render_text("a.yaml", "\nh: ${AUTH_HOST}\n",
                             env_with({{"AUTH_HOST", "auth.${BASE_DOMAIN}"}}));
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message,
             Catch::StartsWith("a.yaml:2: env/edge.toml value AUTH_HOST:1: "
                               "${BASE_DOMAIN} is not defined"));

  auto cycle = render_text("a.yaml", "h: ${A}\n", env_with({{"A", "x${B}"}, {"B", "y${A}"}}));
  REQUIRE_FALSE(cycle);
  CHECK_THAT(cycle.error().message, Catch::Contains("cycle"));
}

TEST_CASE("an undefined value without default is an error naming file and line", "[render]") {
  auto out =
      render_text("base/db/pvc.yaml", "a: 1\nb: 2\n\nstorage: ${PG_STORAGE}\n", env_with({}));
  REQUIRE_FALSE(out);
  CHECK(out.error().code == Errc::invalid);
  CHECK_THAT(
      out.error().message,
      Catch::StartsWith("base/db/pvc.yaml:4: ${PG_STORAGE} is not defined in env/edge.toml"));
}

TEST_CASE("malformed placeholders are errors that point at the escape", "[render]") {
  for (const char* text : {"x: ${lower}\n", "x: ${}\n", "x: ${HOST\n", "x: ${__rate_interval}\n"}) {
    auto out = render_text("d.json", text, env_with({{"HOST", "h"}}));
    INFO(text);
    REQUIRE_FALSE(out);
    CHECK_THAT(out.error().message, Catch::StartsWith("d.json:1: "));
    CHECK_THAT(out.error().message, Catch::Contains("$${"));
  }
}

TEST_CASE("a values file gives architectures, exclusions and typed values", "[render]") {
  TempDir dir;
  make_stack(dir,
             "# edge boxes\n[build]\narch = [\"arm64\"]\nexclude = [\"db\"]\n\n[values]\n"
             "PG_STORAGE = \"4Gi\"\nPG_REPLICAS = 1\nTLS = false\n");
  CHECK(is_stack_dir(dir.path()));
  auto env = load_stack_env(dir.path(), "edge");
  REQUIRE(env);
  CHECK(env->arch == std::vector<std::string>{"arm64"});
  CHECK(env->values.at("PG_STORAGE") == "4Gi");
  CHECK(env->values.at("PG_REPLICAS") == "1");
  CHECK(env->values.at("TLS") == "false");
  CHECK(is_excluded(*env, "db/pvc.yaml"));
  CHECK(is_excluded(*env, "db"));
  CHECK_FALSE(is_excluded(*env, "dbx/pvc.yaml"));
  CHECK_FALSE(is_excluded(*env, "ns.yaml"));
}

TEST_CASE("values file mistakes are errors with their line", "[render]") {
  TempDir dir;
  SECTION("an unknown key") {
    make_stack(dir, "[build]\narch = [\"arm64\"]\narchs = [\"amd64\"]\n");
    auto env = load_stack_env(dir.path(), "edge");
    REQUIRE_FALSE(env);
    CHECK_THAT(env.error().message,
               Catch::StartsWith("env/edge.toml:3: unknown key 'build.archs'"));
  }
  SECTION("an exclusion that names nothing") {
    make_stack(dir, "[build]\nexclude = [\"postgres\"]\n");
    auto env = load_stack_env(dir.path(), "edge");
    REQUIRE_FALSE(env);
    CHECK_THAT(env.error().message,
               Catch::Contains("'postgres' is not a file or folder under base/"));
  }
  SECTION("a value that is a table") {
    make_stack(dir, "[values]\nPG = { size = 1 }\n");
    auto env = load_stack_env(dir.path(), "edge");
    REQUIRE_FALSE(env);
    CHECK_THAT(env.error().message, Catch::StartsWith("env/edge.toml:2: value PG must be"));
  }
  SECTION("broken TOML") {
    make_stack(dir, "[values]\nPG = \"4Gi\n");
    auto env = load_stack_env(dir.path(), "edge");
    REQUIRE_FALSE(env);
    CHECK_THAT(env.error().message, Catch::StartsWith("env/edge.toml:2: "));
  }
  SECTION("an environment without a values file lists those there are") {
    make_stack(dir, "[values]\n");
    auto env = load_stack_env(dir.path(), "prod");
    REQUIRE_FALSE(env);
    CHECK(env.error().code == Errc::not_found);
    CHECK_THAT(env.error().message, Catch::Contains("(environments: edge)"));
  }
}

TEST_CASE("hub build renders a stack folder and names the line of an undefined value", "[render]") {
  TempDir dir;
  make_stack(dir, "[build]\narch = [\"arm64\"]\n[values]\nPG_STORAGE = \"4Gi\"\nUNUSED = 1\n");
  auto keygen = testing::run({testing::hub_binary(), "keygen", "--out", dir.path(), "--name", "p"});
  REQUIRE(keygen.exit_code == 0);
  const std::string stack = dir / "sovdev";
  std::filesystem::rename(dir / "base", dir / "b");
  std::filesystem::create_directories(stack);
  std::filesystem::rename(dir / "b", stack + "/base");
  std::filesystem::rename(dir / "env", stack + "/env");

  auto built = testing::run({testing::hub_binary(), "build", stack, "--env", "edge", "--version",
                             "1", "--key", dir / "p.key", "--out", dir / "edge.sdb"});
  INFO(built.out << built.err);
  REQUIRE(built.exit_code == 0);
  CHECK_THAT(built.out, Catch::Contains("built sovdev@1 (channel edge, arm64)"));
  CHECK_THAT(built.out + built.err, Catch::Contains("value UNUSED is used by no manifest"));
  auto shown = testing::run({testing::hub_binary(), "render", stack, "--env", "edge"});
  REQUIRE(shown.exit_code == 0);
  CHECK_THAT(shown.out, Catch::Contains("# Source: base/db/pvc.yaml"));
  CHECK_THAT(shown.out, Catch::Contains("storage: 4Gi"));

  testing::write_text(stack + "/env/edge.toml", "[build]\narch = [\"arm64\"]\n");
  auto failed = testing::run({testing::hub_binary(), "build", stack, "--env", "edge", "--version",
                              "2", "--key", dir / "p.key", "--out", dir / "edge2.sdb"});
  CHECK(failed.exit_code != 0);
  CHECK_THAT(failed.err, Catch::Contains("base/db/pvc.yaml:9: ${PG_STORAGE} is not defined"));
  CHECK_FALSE(std::filesystem::exists(dir / "edge2.sdb"));

  auto no_env = testing::run({testing::hub_binary(), "build", stack, "--version", "2", "--key",
                              dir / "p.key", "--out", dir / "edge2.sdb"});
  CHECK(no_env.exit_code == 2);
  CHECK_THAT(no_env.err, Catch::Contains("name the environment to build with --env"));
}

}  // namespace sovdev::hub
