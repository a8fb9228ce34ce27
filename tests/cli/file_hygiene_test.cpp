// What the programs do to the files and folders they are pointed at: bundles and rendered
// manifests (which may hold Secrets) are their owner's alone, a device or FIFO given as the
// output is written in place and stays what it was, folders that already exist keep their
// mode, and `status` reads a state folder it may not write.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "platform/fs/files.hpp"
#include "tests/cli/cli_fixture.hpp"
#include "tests/support/nobody.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode;
}

struct Umask {
  explicit Umask(mode_t mask) : old(::umask(mask)) {}
  ~Umask() { ::umask(old); }
  Umask(const Umask&) = delete;
  Umask& operator=(const Umask&) = delete;
  mode_t old;
};

std::string small_stack(const Workspace& ws) {
  write_manifest(ws.dir / "src/app.yaml",
                 "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: x\n"
                 "stringData:\n  password: hunter2\n");
  return ws.dir / "src";
}

// Reads a FIFO to its end on a thread, without blocking forever if no writer ever comes.
class FifoReader {
 public:
  explicit FifoReader(const std::string& path)
      : fd_(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC)),
        thread_([this] { drain(); }) {}
  ~FifoReader() {
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  FifoReader(const FifoReader&) = delete;
  FifoReader& operator=(const FifoReader&) = delete;
  std::string take() {
    thread_.join();
    return data_;
  }

 private:
  void drain() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    char buf[65536];
    while (fd_ >= 0 && std::chrono::steady_clock::now() < deadline) {
      // Until a writer has come, a FIFO reports no hang-up: poll waits for data.
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) continue;
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n > 0) {
        data_.append(buf, static_cast<size_t>(n));
      } else if (n == 0 && !data_.empty()) {
        return;  // the writer closed
      }
    }
  }
  int fd_;
  std::string data_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("a bundle file, rendered manifests and the agent's database are their owner's alone",
          "[cli][hygiene]") {
  const Umask usual(022);
  Workspace ws;
  const std::string src = small_stack(ws);
  REQUIRE(ws.build(src, ws.dir / "x.sdb", 1).exit_code == 0);
  CHECK((mode_of(ws.dir / "x.sdb") & 0777) == 0600);

  REQUIRE(ws.import(ws.dir / "x.sdb").exit_code == 0);
  CHECK((mode_of(ws.state()) & 0777) == 0700);
  CHECK((mode_of(ws.state() + "/agent.db") & 0777) == 0600);

  CHECK((mode_of(ws.dir / "trust.root") & 0777) == 0644);  // public: agents read it
}

TEST_CASE("build to a character device writes through it and leaves the device in place",
          "[cli][hygiene]") {
  Workspace ws;
  const std::string src = small_stack(ws);
  // A node with /dev/null's numbers in the test's own folder: on the old code a run as root
  // replaced the node, which must never happen to the real /dev/null.
  const std::string node = ws.dir / "null";
  if (::mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
    WARN("mknod not permitted here (" << std::strerror(errno) << "): device case not run");
    return;
  }
  auto r = ws.build(src, node, 1);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(S_ISCHR(mode_of(node)));
  // Nothing left beside it either.
  for (const auto& e : std::filesystem::directory_iterator(ws.dir.path())) {
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
  }
}

TEST_CASE("build to a FIFO streams the bundle into it and leaves the FIFO in place",
          "[cli][hygiene]") {
  Workspace ws;
  const std::string src = small_stack(ws);
  REQUIRE(ws.build(src, ws.dir / "ref.sdb", 1).exit_code == 0);
  const std::string fifo = ws.dir / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  FifoReader reader(fifo);
  auto r = ws.build(src, fifo, 1);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(S_ISFIFO(mode_of(fifo)));
  const std::string got = reader.take();
  CHECK(got.size() == read_text(ws.dir / "ref.sdb").size());
}

TEST_CASE("an output that is a folder is refused with a message", "[cli][hygiene]") {
  TempDir dir;
  auto out = fs::OutputFile::create(dir.path());
  REQUIRE_FALSE(out.has_value());
  CHECK_THAT(out.error().message, Catch::Contains("is a folder"));
}

TEST_CASE("make_dirs creates only what is missing and never changes a folder it did not create",
          "[cli][hygiene]") {
  TempDir dir;
  const std::string shared = dir / "shared";
  REQUIRE(::mkdir(shared.c_str(), 0755) == 0);
  REQUIRE(::chmod(shared.c_str(), 01777) == 0);  // like /tmp
  REQUIRE(fs::make_dirs(shared, 0700).has_value());
  CHECK((mode_of(shared) & 07777) == 01777);
  REQUIRE(fs::make_dirs(shared + "/a/b/", 0700).has_value());
  CHECK((mode_of(shared) & 07777) == 01777);
  CHECK((mode_of(shared + "/a") & 07777) == 0700);
  CHECK((mode_of(shared + "/a/b") & 07777) == 0700);
  write_text(dir / "file", "x");
  CHECK_FALSE(fs::make_dirs(dir / "file/sub", 0700).has_value());
}

TEST_CASE("import into an existing shared folder leaves that folder's mode alone",
          "[cli][hygiene]") {
  Workspace ws;
  REQUIRE(ws.build(small_stack(ws), ws.dir / "x.sdb", 1).exit_code == 0);
  const std::string shared = ws.dir / "tmp-like";
  REQUIRE(::mkdir(shared.c_str(), 0755) == 0);
  REQUIRE(::chmod(shared.c_str(), 01777) == 0);
  auto r = run({agent_binary(), "import", "--state", shared, "--trust", ws.trust, "--channel",
                "edge", ws.dir / "x.sdb"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK((mode_of(shared) & 07777) == 01777);
}

TEST_CASE("status reads a state folder this user cannot write", "[cli][hygiene]") {
  SOVDEV_SKIP_WITHOUT_NOBODY();
  Workspace ws;
  REQUIRE(ws.build(small_stack(ws), ws.dir / "x.sdb", 1).exit_code == 0);
  REQUIRE(ws.import(ws.dir / "x.sdb").exit_code == 0);
  // Readable, not writable, by the user status runs as (nobody when the test runs as root).
  REQUIRE(::chmod(ws.dir.path().c_str(), 0755) == 0);
  REQUIRE(::chmod(ws.state().c_str(), 0555) == 0);
  REQUIRE(::chmod((ws.state() + "/agent.db").c_str(), 0444) == 0);
  const std::string out = ws.dir / "status.out";
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
    };
    const std::string agent = agent_binary();
    const std::string state = ws.state();
    ::execl(agent.c_str(), agent.c_str(), "status", "--state", state.c_str(), "--json",
            static_cast<char*>(nullptr));
    ::_exit(122);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::chmod(ws.state().c_str(), 0700);
  const std::string printed = read_text(out);
  INFO(printed);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_THAT(printed, Catch::Contains("\"stack\": \"kp\""));
  CHECK_FALSE(std::filesystem::exists(ws.state() + "/agent.db-shm"));
}
