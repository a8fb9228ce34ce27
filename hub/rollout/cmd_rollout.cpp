// `sovdev-hub rollout`: staged rollouts (docs/design-rollouts.md). Every subcommand writes or
// reads hub.db only and holds no online key: `serve` sees the change within a tick and signs
// the channel's catalog.
#include <cstdio>
#include <ctime>

#include "common/hex.hpp"
#include "hub/commands.hpp"
#include "hub/rollout/operations.hpp"
#include "hub/rollout/options.hpp"
#include "hub/rollout/view.hpp"
#include "platform/store/hub_store.hpp"

namespace sovdev::hub {
namespace {

using namespace rollout;

struct RolloutOptions {
  std::string db;
  StartRequest start;
  std::uint64_t id = 0;
  bool as_json = false;
};

const char* kServeNote = "serve signs the channel's catalog within a tick";

Status start(const RolloutOptions& o) {
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  SOVDEV_ASSIGN(const store::RolloutRow row, start_rollout(db, o.start, unix_now()));
  std::printf(
      "rollout %llu started: %s/%s %llu -> %llu (digest %s), wave %s open; %s/%s held "
      "at %llu; %s\n",
      static_cast<unsigned long long>(row.id), row.channel.c_str(), row.stack.c_str(),
      static_cast<unsigned long long>(row.base_version),
      static_cast<unsigned long long>(row.version), to_hex(row.digest).substr(0, 16).c_str(),
      row.waves.front().name.c_str(), row.channel.c_str(), row.stack.c_str(),
      static_cast<unsigned long long>(row.base_version), kServeNote);
  return {};
}

Status status(const RolloutOptions& o) {
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  std::vector<RolloutView> views;
  if (o.id != 0) {
    SOVDEV_ASSIGN(RolloutView one, load_rollout(db, o.id, unix_now()));
    views.push_back(std::move(one));
  } else {
    SOVDEV_ASSIGN(views, load_current_rollouts(db, unix_now()));
  }
  if (o.as_json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : views) out.push_back(rollout_json(v));
    std::printf("%s\n", nlohmann::json{{"rollouts", out}}.dump(2).c_str());
    return {};
  }
  for (const auto& v : views) print_rollout(stdout, v);
  if (views.empty()) std::printf("(no rollout)\n");
  return {};
}

Status list(const RolloutOptions& o) {
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  SOVDEV_ASSIGN(const auto rows, store::Rollouts(db).list());
  SOVDEV_ASSIGN(const auto holds, store::StackHolds(db).list());
  if (o.as_json) {
    nlohmann::json out{{"rollouts", nlohmann::json::array()}, {"holds", nlohmann::json::array()}};
    for (const auto& r : rows) {
      out["rollouts"].push_back({{"id", r.id},
                                 {"channel", r.channel},
                                 {"stack", r.stack},
                                 {"version", r.version},
                                 {"base_version", r.base_version},
                                 {"state", store::rollout_state_name(r.state)},
                                 {"reason", r.reason}});
    }
    for (const auto& h : holds) {
      out["holds"].push_back({{"channel", h.channel}, {"stack", h.stack}, {"version", h.version}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return {};
  }
  std::printf("%-5s %-24s %-16s %-10s %-14s %s\n", "ID", "CHANNEL/STACK", "VERSIONS", "STATE",
              "WAVE", "REASON");
  for (const auto& r : rows) print_rollout_line(stdout, r);
  if (rows.empty()) std::printf("(no rollout)\n");
  for (const auto& h : holds) {
    std::printf("hold: %s/%s at version %llu\n", h.channel.c_str(), h.stack.c_str(),
                static_cast<unsigned long long>(h.version));
  }
  return {};
}

Status change(const RolloutOptions& o, Change what) {
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  SOVDEV_ASSIGN(const store::RolloutRow row, change_rollout(db, o.id, what, unix_now()));
  const char* done = what == Change::pause    ? "paused: nobody new starts its version"
                     : what == Change::resume ? "resumed"
                                              : "aborted";
  std::printf("rollout %llu %s%s; %s\n", static_cast<unsigned long long>(row.id), done,
              what == Change::abort && row.rollback_on_abort
                  ? " (its agents go back to their version before it)"
                  : "",
              kServeNote);
  return {};
}

Status release(const RolloutOptions& o) {
  SOVDEV_ASSIGN(store::Database db, store::open_hub_database(o.db));
  SOVDEV_ASSIGN(const std::uint64_t was, release_hold(db, o.start.channel, o.start.stack));
  SOVDEV_ASSIGN(auto now_current, current_version(db, o.start.channel, o.start.stack));
  std::printf("%s/%s released (was held at %llu): version %llu is current; %s\n",
              o.start.channel.c_str(), o.start.stack.c_str(), static_cast<unsigned long long>(was),
              static_cast<unsigned long long>(now_current.value_or(0)), kServeNote);
  return {};
}

void add_db(CLI::App* cmd, RolloutOptions& o) {
  cmd->add_option("--db", o.db, "Hub database")->required()->check(CLI::ExistingFile);
}

void add_stack(CLI::App* cmd, RolloutOptions& o) {
  cmd->add_option("--channel", o.start.channel, "Channel, e.g. prod")->required();
  cmd->add_option("--stack", o.start.stack, "Stack, e.g. sovdev")->required();
}

}  // namespace

void add_rollout(CLI::App& app, cli::Commands& commands) {
  auto* rollout = app.add_subcommand(
      "rollout", "Staged rollouts: a version reaches the fleet wave by wave, behind health gates");
  rollout->require_subcommand(1);

  auto s = std::make_shared<RolloutOptions>();
  auto* start_cmd = rollout->add_subcommand(
      "start",
      "Start rolling a published version out in waves; the stack is held at the version "
      "current before it until the last wave's gate is met");
  add_db(start_cmd, *s);
  add_stack(start_cmd, *s);
  start_cmd->add_option("--version", s->start.version, "The version to roll out (published)")
      ->required()
      ->check(CLI::PositiveNumber);
  start_cmd
      ->add_option("--wave", s->start.waves,
                   "NAME:SELECTOR[:PERCENT], in order, e.g. canary:site=lab:10 or \"eu:region in "
                   "(eu)\" or all:* (repeatable)")
      ->required();
  start_cmd
      ->add_option("--success", s->start.success,
                   "Share of a wave's agents that must be healthy on the version, e.g. 90%")
      ->capture_default_str();
  start_cmd
      ->add_option("--within", s->start.within,
                   "How long a wave has to meet its gate (and an agent to report), e.g. 30m")
      ->required();
  start_cmd
      ->add_option("--abort-failed", s->start.abort_failed,
                   "Failures over all opened waves that abort at once: a count (3) or a share "
                   "of the admitted agents (10%)")
      ->required();
  start_cmd->add_option("--pause-between", s->start.pause_between,
                        "Wait this long after a gate is met before the next wave opens, e.g. 1h");
  start_cmd->add_flag("--rollback-on-abort", s->start.rollback_on_abort,
                      "When it aborts, agents that applied the version go back to the one they "
                      "ran before it");
  start_cmd->add_flag("--ignore-windows", s->start.ignore_windows,
                      "Admitted agents apply outside their maintenance windows");
  commands.push_back({start_cmd, [s] { return start(*s); }});

  auto st = std::make_shared<RolloutOptions>();
  auto* status_cmd = rollout->add_subcommand(
      "status",
      "Each stack's newest rollout (or one by id): waves, admitted, healthy, failed, pending, "
      "offline, waiting for a window, state and why it stopped");
  add_db(status_cmd, *st);
  status_cmd->add_option("id", st->id, "A rollout id (default: the newest of each stack)");
  status_cmd->add_flag("--json", st->as_json, "Machine-readable output: {\"rollouts\": [...]}");
  commands.push_back({status_cmd, [st] { return status(*st); }});

  auto ls = std::make_shared<RolloutOptions>();
  auto* list_cmd = rollout->add_subcommand("list", "Every rollout, newest first, and the holds");
  add_db(list_cmd, *ls);
  list_cmd->add_flag("--json", ls->as_json, "Machine-readable output");
  commands.push_back({list_cmd, [ls] { return list(*ls); }});

  const std::pair<const char*, std::pair<Change, const char*>> changes[] = {
      {"pause",
       {Change::pause,
        "Pause a running rollout: who runs its version keeps it, nobody "
        "new starts it"}},
      {"resume", {Change::resume, "Resume a paused rollout (its wave gets back the time paused)"}},
      {"abort",
       {Change::abort,
        "Stop a rollout for good (with --rollback-on-abort its agents "
        "go back)"}}};
  for (const auto& [name, what] : changes) {
    auto o = std::make_shared<RolloutOptions>();
    auto* cmd = rollout->add_subcommand(name, what.second);
    add_db(cmd, *o);
    cmd->add_option("id", o->id, "Rollout id (sovdev-hub rollout list)")->required();
    const Change c = what.first;
    commands.push_back({cmd, [o, c] { return change(*o, c); }});
  }

  auto rel = std::make_shared<RolloutOptions>();
  auto* release_cmd = rollout->add_subcommand(
      "release", "Drop a stack's hold: its newest published version becomes current");
  add_db(release_cmd, *rel);
  add_stack(release_cmd, *rel);
  commands.push_back({release_cmd, [rel] { return release(*rel); }});
}

}  // namespace sovdev::hub
