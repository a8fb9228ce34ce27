// The exec target against real commands: streaming, exit codes, stderr, early exits, aborts.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "platform/target/exec.hpp"
#include "tests/support/process.hpp"
#include "tests/target/helpers.hpp"

namespace sovdev::target {
namespace {

using Catch::Matchers::Contains;
using test::apply_all;
using testing::read_text;
using testing::TempDir;

ApplyBegin version_of(uint64_t version) {
  ApplyBegin b;
  b.stack = "sovdev";
  b.version = version;
  b.digest_hex = "d" + std::to_string(version);
  return b;
}

pb::ResourceRecord config_map(const std::string& name, const std::string& data = "v") {
  pb::ResourceRecord r;
  r.set_api_version("v1");
  r.set_kind("ConfigMap");
  r.set_namespace_("default");
  r.set_name(name);
  r.set_json(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name +
             R"(","namespace":"default"},"data":{"k":")" + data + "\"}}");
  return r;
}

std::unique_ptr<Target> exec_target(const std::string& command, ExecOptions options = {}) {
  auto t = make_exec_target(command, options);
  if (!t) FAIL(t.error().message);
  return std::move(*t);
}

// A shell-quoted path for use inside sh -c '...'.
std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

bool no_children() {
  int status = 0;
  return ::waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD;
}

// Applies objects until one fails; returns the error message, or "" when all of them went in
// and commit succeeded.
std::string apply_until_error(Target& target, const std::vector<pb::ResourceRecord>& objects) {
  auto began = target.begin(version_of(1));
  if (!began) return began.error().message;
  for (const auto& o : objects) {
    auto applied = target.apply(o);
    if (!applied) {
      target.abort();
      return applied.error().message;
    }
  }
  auto committed = target.commit();
  return committed ? "" : committed.error().message;
}

}  // namespace

TEST_CASE("exec target splits a command line like a shell, without one", "[exec]") {
  auto words =
      split_command("microk8s kubectl apply --server-side --field-manager=sovdev-agent -f -");
  REQUIRE(words.has_value());
  CHECK(*words == std::vector<std::string>{"microk8s", "kubectl", "apply", "--server-side",
                                           "--field-manager=sovdev-agent", "-f", "-"});
  auto quotes = split_command(R"(sh  -c 'cat > "$F"'  "a \"b\" \$c" x\ y '' "")");
  REQUIRE(quotes.has_value());
  CHECK(*quotes ==
        std::vector<std::string>{"sh", "-c", "cat > \"$F\"", "a \"b\" $c", "x y", "", ""});
  CHECK_THAT(split_command("cat > file").error().message, Contains("without a shell"));
  CHECK_THAT(split_command("kubectl apply -f - | tee log").error().message, Contains("sh -c"));
  CHECK_THAT(split_command("echo 'open").error().message, Contains("unterminated"));
  CHECK_THAT(split_command("kubectl --kubeconfig \"$HOME/k\"").error().message,
             Contains("without a shell"));
  CHECK_THAT(split_command("  ").error().message, Contains("empty"));
  CHECK_FALSE(make_exec_target("cat > file").has_value());
}

TEST_CASE("exec target streams every object as a YAML document, in order", "[exec]") {
  TempDir tmp;
  const std::string out = tmp / "applied.yaml";
  auto target = exec_target("sh -c 'cat > " + quoted(out) + "'");
  std::vector<pb::ResourceRecord> objects;
  std::string expected;
  // Far more than a pipe buffer holds, so writes block and resume.
  for (int i = 0; i < 2000; ++i) {
    objects.push_back(config_map("cm-" + std::to_string(i), std::string(200, 'x')));
    expected += "---\n" + objects.back().json() + "\n";
  }
  const ApplyResult result = apply_all(*target, "sovdev", 1, objects);
  CHECK(result.applied == 2000);
  CHECK(result.pruned == 0);
  CHECK(result.unchanged == 0);
  // The command does not say what it changed: the result says it cannot tell.
  CHECK_FALSE(result.changes_known);
  CHECK(result.changed.empty());
  CHECK(read_text(out) == expected);
  CHECK(no_children());

  SECTION("the target runs the command again for the next version") {
    const ApplyResult again = apply_all(*target, "sovdev", 2, {config_map("only")});
    CHECK(again.applied == 1);
    CHECK(read_text(out) == "---\n" + config_map("only").json() + "\n");
  }
}

TEST_CASE("exec target reports a failing command's exit status and stderr", "[exec]") {
  auto target = exec_target(
      "sh -c 'cat > /dev/null; echo \"error: unable to recognize STDIN: no matches for kind "
      "Widget\" >&2; exit 3'");
  const std::string e = apply_until_error(*target, {config_map("a"), config_map("b")});
  CHECK_THAT(e, Contains("exited with status 3"));
  CHECK_THAT(e, Contains("no matches for kind Widget"));
  CHECK_THAT(e, Contains("sovdev@1"));
  CHECK_THAT(e, Contains("after reading 2 objects"));
  CHECK(no_children());
}

TEST_CASE("exec target survives a command that exits without reading its input", "[exec]") {
  // The default disposition, as in a program that never ignored SIGPIPE: a SIGPIPE would kill
  // this test process.
  struct sigaction old {};
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  REQUIRE(::sigaction(SIGPIPE, &dfl, &old) == 0);
  auto target = exec_target("sh -c 'echo \"refusing: no cluster\" >&2; exit 1'");
  std::vector<pb::ResourceRecord> big;
  for (int i = 0; i < 64; ++i)
    big.push_back(config_map("big-" + std::to_string(i), std::string(256 * 1024, 'y')));
  const std::string e = apply_until_error(*target, big);
  auto plain_false = exec_target("false");
  const std::string e_false = apply_until_error(*plain_false, big);
  ::sigaction(SIGPIPE, &old, nullptr);
  CHECK_THAT(e, Contains("exited with status 1"));
  CHECK_THAT(e, Contains("refusing: no cluster"));
  CHECK_THAT(e_false, Contains("exited with status 1"));
  CHECK(no_children());
  sigset_t mask;
  REQUIRE(::pthread_sigmask(SIG_SETMASK, nullptr, &mask) == 0);
  CHECK_FALSE(sigismember(&mask, SIGPIPE));  // the guard restored the mask
  sigset_t pending;
  ::sigpending(&pending);
  CHECK_FALSE(sigismember(&pending, SIGPIPE));  // and left no SIGPIPE behind
}

TEST_CASE("exec target does not deadlock on a command that writes much before it reads", "[exec]") {
  // kubectl prints a line per object; stdout and stderr must be drained while we write.
  auto target = exec_target(
      "sh -c 'head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2; cat > /dev/null; "
      "head -c 300000 /dev/zero >&2; echo last-line >&2; exit 2'",
      ExecOptions{std::chrono::seconds(60)});
  std::vector<pb::ResourceRecord> objects;
  for (int i = 0; i < 20; ++i)
    objects.push_back(config_map(std::to_string(i), std::string(64 * 1024, 'z')));
  const std::string e = apply_until_error(*target, objects);
  CHECK_THAT(e, Contains("exited with status 2"));
  CHECK_THAT(e, Contains("last-line"));
  CHECK(e.size() < 10 * 1024);  // only the tail of 600 KB of stderr
}

TEST_CASE("exec target with a command that is not installed says so", "[exec]") {
  auto target = exec_target("sovdev-no-such-kubectl apply -f -");
  auto began = target->begin(version_of(1));
  REQUIRE_FALSE(began.has_value());
  CHECK_THAT(began.error().message, Contains("cannot start sovdev-no-such-kubectl"));
  CHECK_THAT(began.error().message, Contains("No such file or directory"));
  CHECK(no_children());
}

TEST_CASE("exec target abort mid-way kills and reaps the command and all it started", "[exec]") {
  TempDir tmp;
  const std::string pid_file = tmp / "sleep.pid";
  auto target =
      exec_target("sh -c 'sleep 60 & echo $! > " + quoted(pid_file) + "; cat > /dev/null'");
  REQUIRE(target->begin(version_of(1)).has_value());
  REQUIRE(target->apply(config_map("a")).has_value());
  REQUIRE(
      testing::wait_until([&] { return !read_text(pid_file).empty(); }, std::chrono::seconds(10)));
  int status = 0;
  CHECK(::waitpid(-1, &status, WNOHANG) == 0);  // the command is running
  const pid_t sleeper = std::stoi(read_text(pid_file));
  target->abort();
  CHECK(no_children());  // reaped: no zombie left
  // The sleep was in the command's process group; it is gone (or a zombie of init).
  CHECK(testing::wait_until(
      [&] {
        const std::string stat = read_text("/proc/" + std::to_string(sleeper) + "/stat");
        return stat.empty() || stat.find(") Z") != std::string::npos;
      },
      std::chrono::seconds(10)));
  target->abort();  // safe to call again
  CHECK_FALSE(target->apply(config_map("b")).has_value());
}

TEST_CASE("exec target kills a command that outlives its timeout", "[exec]") {
  auto target = exec_target("sh -c 'cat > /dev/null; echo applying >&2; sleep 30'",
                            ExecOptions{std::chrono::milliseconds(500)});
  const auto start = std::chrono::steady_clock::now();
  const std::string e = apply_until_error(*target, {config_map("a")});
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  CHECK_THAT(e, Contains("did not finish within 500 ms"));
  CHECK_THAT(e, Contains("applying"));
  CHECK(no_children());
}

TEST_CASE("make_target builds the exec target from the config", "[exec]") {
  TempDir tmp;
  TargetConfig config;
  config.kind = TargetKind::exec;
  config.command = "sh -c 'cat > " + quoted(tmp / "out") + "'";
  auto target = make_target(config);
  REQUIRE(target.has_value());
  apply_all(**target, "sovdev", 1, {config_map("a")});
  CHECK(read_text(tmp / "out") == "---\n" + config_map("a").json() + "\n");
}

}  // namespace sovdev::target
