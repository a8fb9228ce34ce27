// A planted secret, end to end, over all three targets (issue #20): a unique value set with
// `sovdev-hub secret set` on stdin, a plain folder whose Secret names it (`${secret:db/password}`),
// three agents keyed by `sovdev-agent keygen` and enrolled with `sovdev-hub agents add`, a build
// with `--secrets-env --db --store-key`, publish, a real broker and `serve`, and `sovdev-agent
// sync` applying to a dir target, an exec target and the kube target against the fake API server.
//
// Plaintext may exist in exactly one place per site: the target's own copy (the dir target's
// Secret file, mode 0600; the exec command's output; the API double's Secret). What is searched
// for the value and its base64:
//  - the bundle: its file, and every record decoded from its payload (the payload is
//    zstd-compressed, so its bytes prove little: decoded, a plaintext Secret would show). The
//    Secret's record must hold the sealed blob and empty data values, and a marker planted in a
//    ConfigMap must be found there: the search sees what the payload holds.
//  - every file under the test's own TMPDIR, which every process here inherits: hub.db, its
//    -wal, each agent's state folder (agent.db, its -wal, payloads), the hub's log, mosquitto's
//    folder (log, persistence), the API double's folder, the targets' folders; every cell of
//    hub.db and agent.db read through SQLite; and every file created or changed under /tmp
//    during the test (in case a process ignores TMPDIR).
//  - what was said: every command's output, the retained statuses, `sovdev-hub status` (table
//    and --json), `sovdev-agent status --json`, `agents list`, `secret list`, /metrics.
// The exec command fails once, echoing what it read (the Secret included) and a unique token
// from its own command line, as CLIs do: the error reaches the hub with neither.
#include <sys/stat.h>

#include <sqlite3.h>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <regex>

#include "platform/store/sqlite.hpp"
#include "tests/hub/http_client.hpp"
#include "tests/kube/fake_kube.hpp"
#include "tests/sync/sealed_fleet.hpp"

using namespace sovdev;
using namespace sovdev::testing;
namespace stdfs = std::filesystem;

namespace {

constexpr auto kDeadline = std::chrono::seconds(60);
constexpr uintmax_t kMaxRead = 64u << 20;  // a file this large under /tmp is no test's of ours

// Every process the test starts puts its temporary files in a folder of the test's own.
class OwnTmpdir {
 public:
  OwnTmpdir() {
    if (const char* before = std::getenv("TMPDIR")) previous_ = before;
    ::setenv("TMPDIR", dir_.path().c_str(), 1);
  }
  ~OwnTmpdir() {
    if (previous_) {
      ::setenv("TMPDIR", previous_->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }
  const std::string& path() const { return dir_.path(); }

 private:
  TempDir dir_;  // made before TMPDIR points at it: in the system's temporary folder
  std::optional<std::string> previous_;
};

using Listing = std::map<std::string, stdfs::file_time_type>;

// Regular files under `root` with their times, `skip` left out; what cannot be read is passed
// (other users' folders, files other tests remove meanwhile).
Listing list_files(const std::string& root, const std::string& skip) {
  Listing out;
  std::error_code ec;
  auto it = stdfs::recursive_directory_iterator(
      root, stdfs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path() == skip) {
      it.disable_recursion_pending();
      continue;
    }
    std::error_code e;
    if (!it->is_regular_file(e) || e) continue;
    const auto time = stdfs::last_write_time(it->path(), e);
    if (!e) out[it->path().string()] = time;
  }
  return out;
}

// Every value of every row of every table, read through SQLite (so a -wal counts too).
std::vector<std::string> database_cells(const std::string& path) {
  store::OpenOptions options;
  options.create = false;
  options.read_only = true;
  auto db = store::Database::open(path, options);
  if (!db) FAIL(path << ": " << db.error().message);
  std::vector<std::string> tables;
  {
    auto list = db->prepare("SELECT name FROM sqlite_master WHERE type = 'table'");
    REQUIRE(list.has_value());
    while (*list->step()) tables.push_back(list->text(0));
  }
  std::vector<std::string> cells;
  for (const auto& table : tables) {
    auto rows = db->prepare("SELECT * FROM \"" + table + "\"");
    REQUIRE(rows.has_value());
    sqlite3_stmt* s = rows->handle();
    while (*rows->step()) {
      for (int c = 0; c < sqlite3_column_count(s); ++c) {
        cells.push_back(table + "." + sqlite3_column_name(s, c) + ": " + rows->blob(c));
      }
    }
  }
  return cells;
}

bool holds_any(const std::string& text, const std::vector<std::string>& forms) {
  for (const auto& f : forms) {
    if (text.find(f) != std::string::npos) return true;
  }
  return false;
}

std::unique_ptr<Child> serve_with_metrics(const Fleet& fleet, const std::string& log, int& port) {
  auto hub = std::make_unique<Child>(
      std::vector<std::string>{hub_binary(), "serve", "--db", fleet.hub_db, "--key",
                               fleet.ws.online_key(), "--trust", fleet.ws.trust, "--broker",
                               fleet.broker->url(), "--username", "sovdev-hub", "--password-file",
                               fleet.password_file("sovdev-hub"), "--group", "hubs",
                               "--metrics-listen", "127.0.0.1:0"},
      log);
  port = 0;
  REQUIRE(wait_until(
      [&] {
        std::smatch m;
        const std::string text = read_text(log);
        if (std::regex_search(text, m, std::regex(R"(metrics on http://127\.0\.0\.1:(\d+))"))) {
          port = std::stoi(m[1].str());
        }
        return port != 0;
      },
      kDeadline));
  return hub;
}

// The retained status of each agent, as the broker hands it to a new subscriber.
std::map<std::string, std::string> retained_statuses(const Fleet& fleet,
                                                     const std::vector<std::string>& agents) {
  auto watcher = fleet.client("sovdev-hub", "leak-watcher");
  REQUIRE(watcher->subscribe("sovdev/v1/status/+", 1).has_value());
  std::map<std::string, std::string> got;
  REQUIRE(wait_until(
      [&] {
        auto e = watcher->next(std::chrono::milliseconds(100));
        if (e && e->kind == mqtt::Event::Kind::message) got[e->message.topic] = e->message.payload;
        return got.size() == agents.size();
      },
      kDeadline));
  return got;
}

}  // namespace

TEST_CASE(
    "a planted secret reaches the dir, exec and kube targets and nothing else: no bundle, "
    "database, log, status, metrics or temporary file",
    "[sync][hygiene][secrets]") {
  const auto started = stdfs::file_time_type::clock::now();
  const std::string system_tmp = "/tmp";
  OwnTmpdir tmp;
  const Listing tmp_before = list_files(system_tmp, tmp.path());

  Fleet fleet(broker_users({"agent-dir", "agent-exec", "agent-kube"}));
  FakeKube kube;
  SealedHub hub(fleet);
  const std::string secret = unique_value("s3cret-");
  const std::string token = unique_value("argtok-");
  const std::string marker = unique_value("marker-");
  const std::vector<std::string> forms = leak_forms(secret);
  const std::string b64 = forms[1];
  hub.set("db", "password", secret);

  // The exec command fails on its first run, echoing all it read and its token; then it writes
  // what it reads to a file of its own.
  const std::string exec_out = fleet.ws.dir / "exec-target.yaml";
  const std::string exec_mark = fleet.ws.dir / "exec-failed-once";
  fleet.agent_config("agent-dir");
  fleet.agent_config(
      "agent-exec", 8, "",
      "[apply]\ntarget = \"exec\"\ncommand = '''sh -c 'if [ -e \"$1\" ]; then cat > \"$2\"; else "
      ": > \"$1\"; cat >&2; echo \"refused: token " +
          token + " is not valid\" >&2; exit 1; fi' sh " + exec_mark + " " + exec_out +
          " --token=" + token + "'''\n");
  fleet.agent_config("agent-kube", 8, "",
                     "[apply]\ntarget = \"kube\"\nkubeconfig = \"" + kube.write_kubeconfig() +
                         "\"\nhealth_timeout_seconds = 20\n");
  const std::vector<std::string> agents = {"agent-dir", "agent-exec", "agent-kube"};
  for (const auto& agent : agents) {
    hub.keygen(agent);
    hub.add(agent);
  }

  write_secret_source(fleet.ws.dir / "src", marker);
  const std::string bundle = hub.build_and_publish(fleet.ws.dir / "src", 1, false);
  // The bundle holds the Secret sealed: data keys with empty values, the values in `sealed`
  // (checked before any agent sees it: a bundle with plaintext in it fails here, applied or not).
  bool sealed_seen = false, marker_seen = false;
  for (const auto& r : unpack_bundle(bundle, fleet.ws.trust)) {
    INFO(r.kind() << " " << r.name() << ": " << r.json());
    CHECK_FALSE(holds_any(r.json(), forms));
    CHECK_FALSE(holds_any(r.sealed(), forms));
    marker_seen = marker_seen || r.json().find(marker) != std::string::npos;
    if (r.kind() == "Secret") {
      sealed_seen = !r.sealed().empty();
      CHECK(nlohmann::json::parse(r.json())["data"] == nlohmann::json{{"password", ""}});
    }
  }
  CHECK(sealed_seen);
  CHECK(marker_seen);  // the search reads what the payload holds
  int port = 0;
  const std::string hub_log = fleet.ws.dir / "hub.log";
  auto serve = serve_with_metrics(fleet, hub_log, port);

  std::map<std::string, std::string> texts;
  for (const auto& agent : {"agent-dir", "agent-kube"}) {
    auto synced = fleet.sync_once(agent, 60);
    INFO(agent << ": " << synced.out << synced.err << "\nhub: " << read_text(hub_log));
    REQUIRE(synced.exit_code == 0);
    texts[std::string(agent) + " sync"] = synced.out + synced.err;
  }
  {
    auto failed = fleet.sync_once("agent-exec", 60);
    INFO(failed.out << failed.err << "\nhub: " << read_text(hub_log));
    REQUIRE(failed.exit_code == 15);
    // The command's echo held the Secret: for a version with sealed Secrets the agent quotes
    // none of the command's output (a value could be cut or escaped past any search for it).
    CHECK_THAT(failed.err, Catch::Contains("its output is not shown"));
    CHECK_THAT(failed.err, !Catch::Contains("refused: token"));
    texts["agent-exec failed sync"] = failed.out + failed.err;
    // The failure did travel: the hub has the agent's error, without the value or the token.
    REQUIRE(wait_until(
        [&] {
          texts["sovdev-hub status --json (failed)"] =
              run({hub_binary(), "status", "--db", fleet.hub_db, "--json"}).out;
          return texts["sovdev-hub status --json (failed)"].find("exited with status 1") !=
                 std::string::npos;
        },
        kDeadline));
    CHECK_THAT(texts["sovdev-hub status --json (failed)"], Catch::Contains("through sh"));
    auto cleared =
        run({agent_binary(), "retry", "--config", fleet.ws.dir / "agent-agent-exec.toml"});
    REQUIRE(cleared.exit_code == 0);
    auto synced = fleet.sync_once("agent-exec", 60);
    INFO(synced.out << synced.err);
    REQUIRE(synced.exit_code == 0);
    texts["agent-exec retry and sync"] = cleared.out + cleared.err + synced.out + synced.err;
  }
  REQUIRE(wait_until(
      [&] {
        for (const auto& agent : agents) {
          const auto st = hub_agent_status(fleet, agent);
          if (st.value("applied_version", 0) != 1) return false;
        }
        return true;
      },
      kDeadline));

  // Each target has its copy, and only there is the value in the clear.
  const std::string secret_file = target_secret_file(fleet.agent_dir("agent-dir"));
  REQUIRE_FALSE(secret_file.empty());
  struct stat st {};
  REQUIRE(::stat(secret_file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(nlohmann::json::parse(read_text(secret_file))["data"]["password"] == b64);
  CHECK_THAT(read_text(exec_out), Catch::Contains(b64) && Catch::Contains(marker));
  const nlohmann::json kube_secret = kube.object("Secret", "app", "db");
  REQUIRE_FALSE(kube_secret.is_null());
  CHECK(kube_secret["data"]["password"] == b64);
  const std::set<std::string> target_copies = {secret_file, exec_out};

  texts["hub commands"] = hub.said;
  texts["hub log"] = read_text(hub_log);
  texts["sovdev-hub status --json"] =
      run({hub_binary(), "status", "--db", fleet.hub_db, "--json"}).out;
  texts["sovdev-hub status"] = run({hub_binary(), "status", "--db", fleet.hub_db}).out;
  texts["agents list"] = run({hub_binary(), "agents", "list", "--db", fleet.hub_db, "--json"}).out;
  texts["secret list"] = run({hub_binary(), "secret", "list", "--db", fleet.hub_db}).out;
  const auto inspected =
      run({hub_binary(), "inspect", bundle, "--objects", "--json", "--trust", fleet.ws.trust});
  CHECK(inspected.exit_code == 0);
  texts["inspect --objects"] = inspected.out + inspected.err;
  texts["/metrics"] = http_request("127.0.0.1", port, "GET", "/metrics").body;
  CHECK_THAT(texts["/metrics"], Catch::Contains("sovdev_agent_info"));
  for (const auto& agent : agents) {
    texts["sovdev-agent status --json " + agent] = agent_local_status(fleet, agent).dump();
  }
  for (const auto& [topic, payload] : retained_statuses(fleet, agents)) {
    texts["retained " + topic] = payload;
  }
  serve.reset();  // killed: hub.db keeps its -wal, which is searched as it is

  for (const auto& [what, text] : texts) {
    INFO(what << ":\n" << text);
    CHECK_FALSE(holds_any(text, forms));
    CHECK(text.find(token) == std::string::npos);
  }

  // Every file of the test's own, the targets' copies apart.
  size_t files = 0;
  for (const auto& [path, time] : list_files(tmp.path(), "")) {
    const std::string bytes = read_text(path);
    files++;
    INFO(path);
    CHECK(holds_any(bytes, forms) == target_copies.contains(path));
    // The exec agent's config is where the token lives.
    if (path != fleet.ws.dir / "agent-agent-exec.toml")
      CHECK(bytes.find(token) == std::string::npos);
  }
  CHECK(files > 20);
  for (const std::string& db : {fleet.hub_db, fleet.agent_state("agent-dir") + "/agent.db",
                                fleet.agent_state("agent-exec") + "/agent.db",
                                fleet.agent_state("agent-kube") + "/agent.db"}) {
    for (const auto& cell : database_cells(db)) {
      INFO(db << " " << cell.substr(0, 200));
      CHECK_FALSE(holds_any(cell, forms));
      CHECK(cell.find(token) == std::string::npos);
    }
  }
  // What any process put in the system's temporary folder meanwhile (other tests' files too:
  // they cannot hold a value made here).
  for (const auto& [path, time] : list_files(system_tmp, tmp.path())) {
    const auto before = tmp_before.find(path);
    if (before != tmp_before.end() && before->second == time && time < started) continue;
    std::error_code ec;
    if (stdfs::file_size(path, ec) > kMaxRead || ec) continue;
    const std::string bytes = read_text(path);
    INFO(path);
    CHECK_FALSE(holds_any(bytes, forms));
    CHECK(bytes.find(token) == std::string::npos);
  }
}

TEST_CASE(
    "an exec command's echo cut by the agent's kept tail leaves no part of a sealed value in "
    "the error",
    "[sync][hygiene][secrets]") {
  Fleet fleet;
  SealedHub hub(fleet);
  const std::string secret = unique_value("s3cret-");
  const std::string b64 = leak_forms(secret)[1];
  hub.set("db", "password", secret);
  // It echoes what it read on one line, then pads it so that the last 8 KiB of its stderr (what
  // the agent keeps of it) begin 10 characters into the Secret's value.
  fleet.agent_config("agent-a", 8, "",
                     R"([apply]
target = "exec"
command = '''sh -c 'in=$(cat); rest=${in#*\"password\":\"}; printf %s "$in" | tr "\n" " " >&2; head -c $((8202 - ${#rest})) /dev/zero | tr "\0" x >&2; exit 1' sh'''
)");
  hub.keygen("agent-a");
  hub.add("agent-a");
  write_secret_source(fleet.ws.dir / "src", "v1");
  hub.build_and_publish(fleet.ws.dir / "src", 1, false);
  auto serve = fleet.serve("hub.log");
  auto failed = fleet.sync_once("agent-a", 60);
  INFO(failed.err);
  REQUIRE(failed.exit_code == 15);
  REQUIRE_THAT(failed.err, Catch::Contains("its output is not shown"));
  const std::string tail = b64.substr(10);
  CHECK(failed.err.find(tail) == std::string::npos);
  nlohmann::json seen;
  REQUIRE(wait_until(
      [&] {
        seen = hub_agent_status(fleet, "agent-a");
        return seen.value("last_error", "").find("exited with status 1") != std::string::npos;
      },
      kDeadline));
  CHECK(seen.dump().find(tail) == std::string::npos);
}
