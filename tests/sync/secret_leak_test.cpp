// A planted secret, end to end: a bundle carrying a Secret with a unique value, an exec target
// whose command line holds a unique token and fails, a real broker, hub and agent. Neither value
// may reach a log, the retained status, `sovdev-hub status`, `sovdev-agent status`, /metrics,
// or a database row.
//
// What is searched, and how:
//  - the command-line token: every byte of every file the hub and the agent keep (hub.db and its
//    -wal, the whole state folder: agent.db, its -wal, payload files), both logs, the status
//    message on the broker, both programs' status output and /metrics. It is in no bundle, so
//    it may appear nowhere.
//  - the Secret's value: the same texts, and every row of every table of hub.db and agent.db
//    read through SQLite (so what is still in a -wal counts) except the chunks' data column and
//    the payload files: those are the signed payload itself, zstd-compressed, which must hold
//    the Secret (the target needs it; sealing it is the secrets module's work).
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <filesystem>
#include <random>
#include <regex>

#include "platform/store/sqlite.hpp"
#include "tests/hub/http_client.hpp"
#include "tests/sync/sync_fixture.hpp"

using namespace sovdev;
using namespace sovdev::testing;

namespace {

constexpr auto kDeadline = std::chrono::seconds(60);

std::string unique(const std::string& prefix) {
  std::random_device rd;
  std::string out = prefix;
  for (int i = 0; i < 16; ++i) out += "0123456789abcdef"[rd() % 16];
  return out;
}

// Every value of every row, except the payload chunks' bytes, as one text per cell.
std::vector<std::string> database_cells(const std::string& path) {
  store::OpenOptions options;
  options.create = false;
  options.read_only = true;
  auto db = store::Database::open(path, options);
  if (!db) FAIL(db.error().message);
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
        const std::string column = sqlite3_column_name(s, c);
        if (table == "chunks" && column == "data") continue;
        cells.push_back(table + "." + column + ": " + rows->blob(c));
      }
    }
  }
  return cells;
}

// Files under `dir` (or `dir` itself), whole, by path.
std::map<std::string, std::string> files_under(const std::string& dir) {
  std::map<std::string, std::string> out;
  if (std::filesystem::is_regular_file(dir)) {
    out[dir] = read_text(dir);
    return out;
  }
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[e.path().string()] = read_text(e.path().string());
  }
  return out;
}

}  // namespace

TEST_CASE("a planted secret reaches no log, status, metrics or database row", "[sync][hygiene]") {
  Fleet fleet;
  const std::string secret = unique("s3cret-");
  const std::string token = unique("argtok-");
  write_manifest(fleet.ws.dir / "src/app.yaml",
                 "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: app\n"
                 "stringData:\n  password: " +
                     secret +
                     "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
                     "  namespace: app\ndata:\n  mode: edge\n");
  const std::string file = fleet.ws.dir / "app1.sdb";
  REQUIRE(fleet.ws.build(fleet.ws.dir / "src", file, 1).exit_code == 0);
  REQUIRE(fleet.publish(file).exit_code == 0);

  const std::string hub_log = fleet.ws.dir / "hub.log";
  auto argv = std::vector<std::string>{hub_binary(),
                                       "serve",
                                       "--db",
                                       fleet.hub_db,
                                       "--key",
                                       fleet.ws.online_key(),
                                       "--trust",
                                       fleet.ws.trust,
                                       "--broker",
                                       fleet.broker->url(),
                                       "--username",
                                       "sovdev-hub",
                                       "--password-file",
                                       fleet.password_file("sovdev-hub"),
                                       "--group",
                                       "hubs",
                                       "--metrics-listen",
                                       "127.0.0.1:0"};
  auto hub = std::make_unique<Child>(argv, hub_log);
  int port = 0;
  REQUIRE(wait_until(
      [&] {
        std::smatch m;
        const std::string text = read_text(hub_log);
        if (std::regex_search(text, m, std::regex(R"(metrics on http://127\.0\.0\.1:(\d+))"))) {
          port = std::stoi(m[1].str());
        }
        return port != 0;
      },
      kDeadline));

  // A command that refuses, echoing its token as CLIs do, and reads the Secret from stdin.
  fleet.agent_config("agent-a", 8, "",
                     "[apply]\ntarget = \"exec\"\ncommand = '''sh -c 'cat > /dev/null; echo "
                     "\"refused: token " +
                         token + " is not valid\" >&2; exit 1' sh --token=" + token + "'''\n");
  auto synced = fleet.sync_once("agent-a");
  INFO("agent: " << synced.out << synced.err << "\nhub: " << read_text(hub_log));
  REQUIRE(synced.exit_code != 0);
  // The failure itself did travel: the hub has the agent's error, without the token.
  std::string hub_status;
  REQUIRE(wait_until(
      [&] {
        hub_status = run({hub_binary(), "status", "--db", fleet.hub_db, "--json"}).out;
        return hub_status.find("exited with status 1") != std::string::npos;
      },
      kDeadline));

  std::map<std::string, std::string> texts;
  texts["agent output"] = synced.out + synced.err;
  texts["hub log"] = read_text(hub_log);
  texts["sovdev-hub status --json"] = hub_status;
  texts["sovdev-hub status"] = run({hub_binary(), "status", "--db", fleet.hub_db}).out;
  texts["sovdev-agent status --json"] =
      run({agent_binary(), "status", "--state", fleet.agent_state("agent-a"), "--json"}).out;
  texts["/metrics"] = http_request("127.0.0.1", port, "GET", "/metrics").body;
  {
    auto watcher = fleet.client("sovdev-hub", "leak-watcher");
    REQUIRE(watcher->subscribe("sovdev/v1/status/agent-a", 1).has_value());
    std::string retained;
    REQUIRE(wait_until(
        [&] {
          auto e = watcher->next(std::chrono::milliseconds(100));
          if (e && e->kind == mqtt::Event::Kind::message) retained = e->message.payload;
          return !retained.empty();
        },
        kDeadline));
    texts["retained status"] = retained;
  }
  hub.reset();  // killed: hub.db keeps its -wal, which is searched as it is

  for (const auto& [what, text] : texts) {
    INFO(what << ":\n" << text);
    CHECK(text.find(secret) == std::string::npos);
    CHECK(text.find(token) == std::string::npos);
  }
  CHECK_THAT(texts["sovdev-hub status --json"], Catch::Contains("through sh"));

  for (const std::string& place :
       {fleet.hub_db, fleet.hub_db + "-wal", fleet.agent_state("agent-a")}) {
    if (!std::filesystem::exists(place)) continue;
    for (const auto& [path, bytes] : files_under(place)) {
      INFO(path);
      CHECK(bytes.find(token) == std::string::npos);
    }
  }
  for (const std::string& db : {fleet.hub_db, fleet.agent_state("agent-a") + "/agent.db"}) {
    for (const auto& cell : database_cells(db)) {
      INFO(db << " " << cell.substr(0, 200));
      CHECK(cell.find(secret) == std::string::npos);
      CHECK(cell.find(token) == std::string::npos);
    }
  }
}
