// What the hub's commands put where: a product written to stdout (`--out -`) is the product
// alone, its summary goes to stderr; `status` reads hub.db without writing it, so it works on a
// folder the user cannot write.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "bundles/trust.hpp"
#include "platform/store/hub_store.hpp"
#include "sovdev.pb.h"
#include "tests/cli/cli_fixture.hpp"
#include "tests/support/nobody.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

std::string small_source(const Workspace& ws) {
  write_manifest(ws.dir / "src/app.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: x\n"
                 "data:\n  greeting: hello\n");
  return ws.dir / "src";
}

// Runs `command` (a shell line) in `dir`, so a command that misreads "-" as a name makes its
// file or folder there, where the test looks for it, and not in the test's working folder.
RunResult run_in(const std::string& dir, const std::string& command) {
  return run({"/bin/sh", "-c", "cd '" + dir + "' && exec " + command});
}

std::string quoted(const std::string& s) {
  return "'" + s + "'";
}

}  // namespace

TEST_CASE("build --out - writes the bundle alone to stdout and its summary to stderr",
          "[cli][output]") {
  Workspace ws;
  const std::string src = small_source(ws);
  auto to_file = ws.build(src, ws.dir / "x.sdb", 1);
  REQUIRE(to_file.exit_code == 0);
  CHECK_THAT(to_file.out, Catch::Contains("built kp@1"));  // a file: the summary stays on stdout

  auto piped = run_in(ws.dir.path(), quoted(hub_binary()) + " build " + quoted(src) +
                                         " --stack kp --channel edge --version 1 --arch amd64 "
                                         "--quiet --key " +
                                         quoted(ws.key("pub1")) + " --out -");
  INFO(piped.err);
  REQUIRE(piped.exit_code == 0);
  CHECK_THAT(piped.err, Catch::Contains("built kp@1") && Catch::Contains("digest "));
  CHECK_THAT(piped.out, !Catch::Contains("built kp@1") && !Catch::Contains("digest "));
  // The bytes on stdout are a bundle that verifies, and holds what the file build holds.
  write_text(ws.dir / "piped.sdb", piped.out);
  const auto records = unpack_bundle(ws.dir / "piped.sdb", ws.trust);
  const auto from_file = unpack_bundle(ws.dir / "x.sdb", ws.trust);
  REQUIRE(records.size() == from_file.size());
  for (size_t i = 0; i < records.size(); i++) {
    CHECK(records[i].SerializeAsString() == from_file[i].SerializeAsString());
  }
  CHECK(ws.verify(ws.dir / "piped.sdb").exit_code == 0);
  CHECK_FALSE(std::filesystem::exists(ws.dir / "-"));

  // The payload's temporary goes to the temporary folder, not "-.payload" in the working
  // folder: from one where nothing can be created (/proc, even for root) the build still works.
  auto from_proc = run_in("/proc", quoted(hub_binary()) + " build " + quoted(src) +
                                       " --stack kp --channel edge --version 1 --arch amd64 "
                                       "--quiet --key " +
                                       quoted(ws.key("pub1")) + " --out -");
  INFO(from_proc.err);
  REQUIRE(from_proc.exit_code == 0);
  // The same records (the manifest carries its build time, so the bytes may differ).
  write_text(ws.dir / "from-proc.sdb", from_proc.out);
  const auto again = unpack_bundle(ws.dir / "from-proc.sdb", ws.trust);
  REQUIRE(again.size() == records.size());
  for (size_t i = 0; i < again.size(); i++) {
    CHECK(again[i].SerializeAsString() == records[i].SerializeAsString());
  }
}

TEST_CASE("trust init --out - writes the trust root alone to stdout and its summary to stderr",
          "[cli][output]") {
  Workspace ws;
  auto piped = run({hub_binary(), "trust", "init", "--root", ws.dir / "keys/root1.pub", "--targets",
                    ws.dir / "keys/pub1.pub", "--online", ws.dir / "keys/online1.pub", "--sign",
                    ws.key("root1"), "--out", "-"});
  INFO(piped.err);
  REQUIRE(piped.exit_code == 0);
  CHECK_THAT(piped.err, Catch::Contains("trust root v1 written to (stdout)"));
  CHECK_THAT(piped.out, !Catch::Contains("trust root v1") && !Catch::Contains("threshold"));
  auto policy = TrustPolicy::from_initial(piped.out);
  INFO((policy ? "" : policy.error().message));
  REQUIRE(policy);
  CHECK(policy->version() == 1);

  // rotate, the same: the new root on stdout is accepted as the next one after the first.
  auto rotated = run({hub_binary(), "trust", "rotate", "--current", ws.trust, "--root",
                      ws.dir / "keys/root1.pub", "--targets", ws.dir / "keys/pub1.pub", "--online",
                      ws.dir / "keys/online1.pub", "--sign", ws.key("root1"), "--out", "-"});
  INFO(rotated.err);
  REQUIRE(rotated.exit_code == 0);
  CHECK_THAT(rotated.err, Catch::Contains("trust root v2") && Catch::Contains("online keys"));
  auto first = TrustPolicy::from_initial(read_text(ws.trust));
  REQUIRE(first);
  auto next = first->rotate(rotated.out);
  INFO((next ? "" : next.error().message));
  CHECK(next);
}

TEST_CASE("render --out - prints the manifests, and keygen --out - is refused with a message",
          "[cli][output]") {
  Workspace ws;
  write_manifest(ws.dir / "stack/base/app.yaml",
                 "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: x\n");
  write_manifest(ws.dir / "stack/env/edge.toml", "[build]\narch = [\"amd64\"]\n");
  auto shown = run_in(ws.dir.path(), quoted(hub_binary()) + " render stack --env edge --out -");
  INFO(shown.out << shown.err);
  REQUIRE(shown.exit_code == 0);
  CHECK_THAT(shown.out, Catch::StartsWith("---\n# Source: base/app.yaml\n"));
  CHECK_THAT(shown.out, !Catch::Contains("rendered "));
  CHECK_THAT(shown.err, Catch::Contains("rendered stack for edge"));
  CHECK_FALSE(std::filesystem::exists(ws.dir / "-"));

  auto keygen = run_in(ws.dir.path(), quoted(hub_binary()) + " keygen --out - --name k");
  INFO(keygen.out << keygen.err);
  CHECK(keygen.exit_code == 2);
  CHECK(keygen.out.empty());
  CHECK_THAT(keygen.err, Catch::Contains("give the folder with --out"));
  CHECK_FALSE(std::filesystem::exists(ws.dir / "-"));
}

TEST_CASE("hub status reads a hub.db this user cannot write, and leaves it as it was",
          "[cli][output][hygiene]") {
  SOVDEV_SKIP_WITHOUT_NOBODY();
  TempDir dir;
  const std::string folder = dir / "hub";
  std::filesystem::create_directories(folder);
  const std::string db_path = folder + "/hub.db";
  {
    auto db = store::open_hub_database(db_path);
    REQUIRE(db);
    pb::AgentStatus st;
    st.set_schema(1);
    st.set_agent_id("edge-01");
    st.set_channel("edge");
    st.set_state("healthy");
    st.set_updated_at(1700000000);
    REQUIRE(store::FleetStatus(*db).upsert(
        {st.agent_id(), st.channel(), st.SerializeAsString(), st.updated_at()}, 1700000100));
  }
  REQUIRE_FALSE(std::filesystem::exists(db_path + "-wal"));
  const std::string before = read_text(db_path);
  // Readable, not writable, by the user status runs as (nobody when the test runs as root).
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  REQUIRE(::chmod(folder.c_str(), 0555) == 0);
  REQUIRE(::chmod(db_path.c_str(), 0444) == 0);
  const std::string out = dir / "status.out";
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0 || ::fchmod(fd, 0666) != 0) ::_exit(120);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    if (::geteuid() == 0 &&
        (::setgid(sovdev::testing::kNobody) != 0 || ::setuid(sovdev::testing::kNobody) != 0)) {
      ::_exit(121);
    }
    const std::string hub = hub_binary();
    ::execl(hub.c_str(), hub.c_str(), "status", "--db", db_path.c_str(), "--json",
            static_cast<char*>(nullptr));
    ::_exit(122);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::chmod(folder.c_str(), 0700);
  ::chmod(db_path.c_str(), 0600);
  const std::string printed = read_text(out);
  INFO(printed);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_THAT(printed, Catch::Contains("\"agent\": \"edge-01\""));
  CHECK_FALSE(std::filesystem::exists(db_path + "-shm"));
  CHECK_FALSE(std::filesystem::exists(db_path + "-wal"));
  CHECK(read_text(db_path) == before);
}
