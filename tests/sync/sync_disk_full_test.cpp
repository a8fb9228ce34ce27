// A full disk under the agent's state: reported, waited out, never a crash loop. The state
// folder is a real 2 MiB tmpfs (the tests run as root); without mount rights they are skipped.
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "sovdev.pb.h"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

// A tmpfs of `size` at `path`, unmounted at the end.
class SmallDisk {
 public:
  SmallDisk(std::string path, const std::string& size) : path_(std::move(path)) {
    std::filesystem::create_directories(path_);
    std::string options = "size=";
    options += size;
    options += ",mode=0700";
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) == 0;
    if (!mounted_) why_ = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }
  bool resize(const std::string& size) {
    std::string options = "size=";
    options += size;
    return ::mount("tmpfs", path_.c_str(), "tmpfs", MS_REMOUNT, options.c_str()) == 0;
  }
  uint64_t free_bytes() const {
    struct statvfs fs {};
    ::statvfs(path_.c_str(), &fs);
    return uint64_t{fs.f_bavail} * fs.f_frsize;
  }
  // Fills what is left with one file, until the kernel says there is no room.
  void fill(const std::string& name) {
    std::ofstream out(path_ + "/" + name, std::ios::binary);
    const std::string block(4096, 'f');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size())) && out.flush()) {
    }
  }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string why_;
};

class StatusWatch {
 public:
  StatusWatch(const Fleet& fleet, const std::string& agent)
      : client_(fleet.client("sovdev-hub", "status-watch-" + agent)) {
    REQUIRE(client_->subscribe("sovdev/v1/status/" + agent, 1));
  }
  const pb::AgentStatus& latest() {
    while (auto e = client_->next(std::chrono::milliseconds(50))) {
      if (e->kind == mqtt::Event::Kind::message) {
        (void)last_.ParseFromString(e->message.payload.str());
      }
    }
    return last_;
  }

 private:
  std::unique_ptr<mqtt::Client> client_;
  pb::AgentStatus last_;
};

// A few ConfigMaps: a first version that fits the small disk easily.
std::string small_stack(const Fleet& fleet) {
  const std::string dir = fleet.ws.dir / "src-small";
  for (int i = 0; i < 3; i++) {
    std::string text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: small-";
    text += std::to_string(i);
    text += "\n  namespace: sovdev\ndata:\n  key: value\n";
    write_manifest(dir + "/cm-" + std::to_string(i) + ".yaml", text);
  }
  return dir;
}

// The agent's usual config, with its state on the small disk.
void use_state_dir(const Fleet& fleet, const std::string& agent, const std::string& state) {
  const std::string path = fleet.agent_config(agent);
  std::string text = read_text(path);
  const auto at = text.find("state_dir = ");
  std::string line = "state_dir = \"";
  line += state;
  line += "\"";
  text.replace(at, text.find('\n', at) - at, line);
  write_text(path, text);
}

}  // namespace

TEST_CASE(
    "a bundle larger than the free disk is reported as disk full, the last good version "
    "stays, and the fetch goes on once there is room",
    "[sync][diskfull]") {
  Fleet fleet;
  SmallDisk disk(fleet.ws.dir / "small", "2m");
  if (!disk.mounted()) {
    WARN("SOVDEV-SKIP: cannot mount a tmpfs here: " << disk.why());
    return;
  }
  write_noise_stack(fleet.ws.dir / "big", 4, 3);
  REQUIRE(fleet.ws.build(small_stack(fleet), fleet.ws.dir / "v1.sdb", 1).exit_code == 0);
  REQUIRE(fleet.ws.build(fleet.ws.dir / "big", fleet.ws.dir / "v2.sdb", 2, {"--level", "1"})
              .exit_code == 0);
  REQUIRE(fleet.publish(fleet.ws.dir / "v1.sdb").exit_code == 0);
  auto hub = fleet.serve("hub.log");
  const std::string state = fleet.ws.dir / "small/state";
  use_state_dir(fleet, "agent-a", state);
  auto first = fleet.sync_once("agent-a", 60);
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 0);
  const auto v1_objects = applied_objects(fleet.agent_dir("agent-a"));

  StatusWatch status(fleet, "agent-a");
  auto agent = fleet.run_agent("agent-a", "agent-a.log");
  const auto log = [&] { return read_text(fleet.ws.dir / "agent-a.log"); };
  REQUIRE(fleet.publish_live(fleet.ws.dir / "v2.sdb").exit_code == 0);
  INFO("agent: " << log());
  const bool reported = wait_until(
      [&] { return status.latest().last_error().find("disk full: needs") != std::string::npos; },
      std::chrono::seconds(60));
  CHECK(reported);
  WARN("status with a " << std::filesystem::file_size(fleet.ws.dir / "v2.sdb")
                        << "-byte bundle and a 2 MiB disk: " << status.latest().last_error());
  // Still running, still on version 1, and the disk not left full by a partial payload.
  CHECK(agent->running());
  CHECK(applied_objects(fleet.agent_dir("agent-a")) == v1_objects);
  CHECK(status.latest().applied_version() == 1);
  CHECK(disk.free_bytes() > 1024 * 1024);

  // Room again: the fetch goes on by itself.
  REQUIRE(disk.resize("16m"));
  CHECK(wait_until(
      [&] {
        return applied_objects(fleet.agent_dir("agent-a")) ==
               bundle_objects(fleet.ws.dir / "v2.sdb", fleet.ws.trust);
      },
      std::chrono::seconds(60)));
  CHECK(agent->running());
  agent->kill_hard();
  agent->wait();
}

TEST_CASE("an agent whose disk is completely full at start keeps running and reporting",
          "[sync][diskfull]") {
  Fleet fleet;
  SmallDisk disk(fleet.ws.dir / "small", "2m");
  if (!disk.mounted()) {
    WARN("SOVDEV-SKIP: cannot mount a tmpfs here: " << disk.why());
    return;
  }
  REQUIRE(fleet.ws.build(small_stack(fleet), fleet.ws.dir / "v1.sdb", 1).exit_code == 0);
  REQUIRE(fleet.publish(fleet.ws.dir / "v1.sdb").exit_code == 0);
  auto hub = fleet.serve("hub.log");
  const std::string state = fleet.ws.dir / "small/state";
  use_state_dir(fleet, "agent-a", state);
  auto first = fleet.sync_once("agent-a", 60);
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 0);

  disk.fill("filler");
  REQUIRE(disk.free_bytes() < 64 * 1024);
  StatusWatch status(fleet, "agent-a");
  auto agent = fleet.run_agent("agent-a", "agent-a.log");
  INFO("agent: " << read_text(fleet.ws.dir / "agent-a.log"));
  // It reports (state, the version it runs), and is still running after its first reconcile.
  CHECK(wait_until(
      [&] {
        const auto& s = status.latest();
        return s.state() != "" && s.state() != "offline" && s.applied_version() == 1;
      },
      std::chrono::seconds(30)));
  CHECK(wait_until(
      [&] {
        return read_text(fleet.ws.dir / "agent-a.log").find("reconcile") != std::string::npos;
      },
      std::chrono::seconds(30)));
  CHECK(agent->running());
  const std::string log = read_text(fleet.ws.dir / "agent-a.log");
  CHECK_THAT(log, Catch::Contains("disk of"));  // says why it runs as it does
  agent->kill_hard();
  agent->wait();
}
