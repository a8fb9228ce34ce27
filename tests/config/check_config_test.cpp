// `sovdev-agent check-config FILE`, run in-process through the same CLI plumbing as the agent.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "agent/config.hpp"
#include "platform/cli/command.hpp"
#include "tests/support/process.hpp"

namespace sovdev::agent {
void add_check_config(CLI::App& app, cli::Commands& commands);
}

using namespace sovdev;
using sovdev::testing::read_text;
using sovdev::testing::TempDir;
using sovdev::testing::write_text;

namespace {

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs "sovdev-agent check-config FILE" with stdout and stderr sent to files.
Outcome check_config(const TempDir& dir, const std::string& file) {
  auto app = std::make_unique<CLI::App>("test", "sovdev-agent");
  app->require_subcommand(1);
  cli::Commands commands;
  agent::add_check_config(*app, commands);
  std::string arg0 = "sovdev-agent", arg1 = "check-config", arg2 = file;
  char* argv[] = {arg0.data(), arg1.data(), arg2.data()};

  std::fflush(stdout);
  std::fflush(stderr);
  const int saved_out = ::dup(STDOUT_FILENO);
  const int saved_err = ::dup(STDERR_FILENO);
  REQUIRE(std::freopen((dir / "out").c_str(), "w", stdout) != nullptr);
  REQUIRE(std::freopen((dir / "err").c_str(), "w", stderr) != nullptr);
  Outcome o;
  o.exit_code = cli::run(std::move(app), std::move(commands), 3, argv);
  std::fflush(stdout);
  std::fflush(stderr);
  ::dup2(saved_out, STDOUT_FILENO);
  ::dup2(saved_err, STDERR_FILENO);
  ::close(saved_out);
  ::close(saved_err);
  o.out = read_text(dir / "out");
  o.err = read_text(dir / "err");
  return o;
}

}  // namespace

TEST_CASE("check-config prints the effective settings of a valid file and exits 0") {
  TempDir dir;
  write_text(dir / "trust.root", "root");
  write_text(dir / "agent.toml",
             "agent_id = \"edge-01\"\nchannels = [\"edge\"]\ntrust_root = \"trust.root\"\n"
             "[broker]\nurls = [\"ssl://hub.example:8883\"]\n[apply]\ndir = \"manifests\"\n");
  const Outcome o = check_config(dir, dir / "agent.toml");
  CHECK(o.exit_code == 0);
  CHECK(o.out.find("trust_root = \"" + dir / "trust.root" + "\"\n") != std::string::npos);
  CHECK(o.out.find("window = 16\n") != std::string::npos);
  CHECK(o.out.find("username = \"edge-01\"\n") != std::string::npos);
  CHECK(o.err.find("note: apply.dir " + dir / "manifests" + " does not exist yet") !=
        std::string::npos);
}

TEST_CASE("check-config lists each problem as FILE:LINE and exits 4") {
  TempDir dir;
  write_text(dir / "trust.root", "root");
  const std::string file = dir / "agent.toml";
  write_text(file,
             "agent_id = \"edge-01\"\nchannels = [\"edge\"]\ntrust_root = \"trust.root\"\n"
             "[broker]\nurls = [\"http://hub:1883\"]\n[sync]\nwindow = 0\n");
  const Outcome o = check_config(dir, file);
  CHECK(o.exit_code == 4);
  CHECK(o.out.empty());
  CHECK(o.err.find(file + ":5: broker.urls: http://hub:1883 scheme 'http://' is not supported") ==
        0);
  CHECK(o.err.find("\n" + file + ":7: sync.window: 0 is out of range 1..64\n") !=
        std::string::npos);
  CHECK(o.err.find("sovdev-agent: error: " + file +
                   " is not valid (2 problems): the agent would refuse to start") !=
        std::string::npos);
}

TEST_CASE("check-config of a file that cannot be read exits 3") {
  TempDir dir;
  const Outcome o = check_config(dir, dir / "missing.toml");
  CHECK(o.exit_code == 3);
  CHECK(o.err.find(dir / "missing.toml") != std::string::npos);
}
