#include "platform/store/rollout_store.hpp"

#include "platform/store/detail.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::store {

using detail::with_context;

const char* rollout_state_name(RolloutState state) {
  switch (state) {
    case RolloutState::running: return "running";
    case RolloutState::paused: return "paused";
    case RolloutState::aborted: return "aborted";
    case RolloutState::completed: return "completed";
  }
  return "unknown";
}

Expected<RolloutState> parse_rollout_state(std::string_view text) {
  for (auto s : {RolloutState::running, RolloutState::paused, RolloutState::aborted,
                 RolloutState::completed}) {
    if (text == rollout_state_name(s)) return s;
  }
  return make_error(Errc::store, "unknown rollout state '" + std::string(text) + "'");
}

namespace {

constexpr const char* kRolloutColumns =
    "SELECT id, channel, stack, version, digest, base_version, base_digest, success_permille, "
    "within_seconds, abort_count, abort_permille, pause_between, rollback_on_abort, "
    "ignore_windows, state, current_wave, wave_opened_at, gate_met_at, paused_at, reason, "
    "created_at, updated_at FROM rollouts ";

std::optional<std::int64_t> optional_int(const Statement& s, int column) {
  if (s.is_null(column)) return std::nullopt;
  return s.int64(column);
}

Expected<RolloutRow> read_row(const Statement& s) {
  RolloutRow r;
  r.id = s.uint64(0);
  r.channel = s.text(1);
  r.stack = s.text(2);
  r.version = s.uint64(3);
  r.digest = s.blob(4);
  r.base_version = s.uint64(5);
  r.base_digest = s.blob(6);
  r.success_permille = static_cast<std::uint32_t>(s.uint64(7));
  r.within_seconds = s.int64(8);
  r.abort_count = static_cast<std::uint32_t>(s.uint64(9));
  r.abort_permille = static_cast<std::uint32_t>(s.uint64(10));
  r.pause_between = s.int64(11);
  r.rollback_on_abort = s.int64(12) != 0;
  r.ignore_windows = s.int64(13) != 0;
  SOVDEV_ASSIGN(r.state, parse_rollout_state(s.text(14)));
  r.current_wave = static_cast<std::uint32_t>(s.uint64(15));
  r.wave_opened_at = s.int64(16);
  r.gate_met_at = optional_int(s, 17);
  r.paused_at = optional_int(s, 18);
  r.reason = s.text(19);
  r.created_at = s.int64(20);
  r.updated_at = s.int64(21);
  return r;
}

Status read_waves(Database& db, RolloutRow& row) {
  SOVDEV_ASSIGN(CachedStatement waves,
                db.cached("SELECT name, selector, percent FROM rollout_waves WHERE rollout_id = ? "
                          "ORDER BY idx"));
  SOVDEV_TRY(waves->bind(1, row.id));
  for (;;) {
    SOVDEV_ASSIGN(const bool more, waves->step());
    if (!more) break;
    row.waves.push_back(
        {waves->text(0), waves->text(1), static_cast<std::uint32_t>(waves->uint64(2))});
  }
  if (row.waves.empty()) {
    return make_error(Errc::store, "rollout " + std::to_string(row.id) + " has no waves");
  }
  return {};
}

}  // namespace

Expected<std::uint64_t> Rollouts::insert(const RolloutRow& r) {
  const std::string what =
      "store rollout of " + r.channel + "/" + r.stack + "@" + std::to_string(r.version);
  return with_context(
      what, transaction(db_, [&]() -> Expected<std::uint64_t> {
        SOVDEV_TRY(detail::check_digest(r.digest));
        SOVDEV_TRY(detail::check_digest(r.base_digest));
        if (r.waves.empty()) return make_error(Errc::invalid, "no waves");
        SOVDEV_ASSIGN(auto active,
                      select("WHERE channel = ? AND stack = ? AND "
                             "state IN ('running', 'paused')",
                             [&](Statement& st) { return st.bind_all(r.channel, r.stack); }));
        if (!active.empty()) {
          return make_error(Errc::conflict, "rollout " + std::to_string(active.front().id) +
                                                " of this stack is " +
                                                rollout_state_name(active.front().state) +
                                                ": abort it first (sovdev-hub rollout abort " +
                                                std::to_string(active.front().id) + ")");
        }
        SOVDEV_ASSIGN(
            Statement insert,
            db_.prepare("INSERT INTO rollouts (channel, stack, version, digest, "
                        "base_version, base_digest, success_permille, within_seconds, "
                        "abort_count, abort_permille, pause_between, rollback_on_abort, "
                        "ignore_windows, state, current_wave, wave_opened_at, "
                        "gate_met_at, paused_at, reason, created_at, updated_at) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
        SOVDEV_TRY(insert.bind_all(
            r.channel, r.stack, r.version, Blob{r.digest}, r.base_version, Blob{r.base_digest},
            r.success_permille, r.within_seconds, r.abort_count, r.abort_permille, r.pause_between,
            r.rollback_on_abort ? 1 : 0, r.ignore_windows ? 1 : 0, rollout_state_name(r.state),
            r.current_wave, r.wave_opened_at, r.gate_met_at, r.paused_at, r.reason, r.created_at,
            r.updated_at));
        SOVDEV_TRY(insert.run());
        const auto id = static_cast<std::uint64_t>(db_.last_insert_rowid());
        SOVDEV_ASSIGN(Statement wave,
                      db_.prepare("INSERT INTO rollout_waves (rollout_id, idx, "
                                  "name, selector, percent) VALUES (?, ?, ?, ?, ?)"));
        for (std::size_t i = 0; i < r.waves.size(); ++i) {
          wave.reset();
          SOVDEV_TRY(wave.bind_all(id, static_cast<std::uint64_t>(i), r.waves[i].name,
                                   r.waves[i].selector, r.waves[i].percent));
          SOVDEV_TRY(wave.run());
        }
        return id;
      }));
}

Expected<std::vector<RolloutRow>> Rollouts::select(const std::string& where,
                                                   const std::function<Status(Statement&)>& bind) {
  SOVDEV_ASSIGN(Statement s, db_.prepare(kRolloutColumns + where));
  if (bind) SOVDEV_TRY(bind(s));
  std::vector<RolloutRow> out;
  for (;;) {
    SOVDEV_ASSIGN(const bool row, s.step());
    if (!row) break;
    SOVDEV_ASSIGN(RolloutRow r, read_row(s));
    out.push_back(std::move(r));
  }
  for (auto& r : out) SOVDEV_TRY(read_waves(db_, r));
  return out;
}

Expected<std::optional<RolloutRow>> Rollouts::find(std::uint64_t id) {
  if (id == 0) return std::optional<RolloutRow>();
  SOVDEV_ASSIGN(auto rows, select("WHERE id = ?", [id](Statement& st) { return st.bind(1, id); }));
  if (rows.empty()) return std::optional<RolloutRow>();
  return std::optional<RolloutRow>(std::move(rows.front()));
}

Expected<std::vector<RolloutRow>> Rollouts::list() {
  return with_context("list rollouts", select("ORDER BY id DESC"));
}

Expected<std::vector<RolloutRow>> Rollouts::running() {
  return with_context("list running rollouts", select("WHERE state = 'running' ORDER BY id"));
}

Expected<std::optional<RolloutRow>> Rollouts::newest(std::string_view channel,
                                                     std::string_view stack) {
  SOVDEV_ASSIGN(auto rows, select("WHERE channel = ? AND stack = ? ORDER BY id DESC LIMIT 1",
                                  [&](Statement& st) { return st.bind_all(channel, stack); }));
  if (rows.empty()) return std::optional<RolloutRow>();
  return std::optional<RolloutRow>(std::move(rows.front()));
}

Status Rollouts::update_progress(const RolloutRow& r) {
  const std::string what = "update rollout " + std::to_string(r.id);
  return with_context(what, [&]() -> Status {
    SOVDEV_ASSIGN(Statement update,
                  db_.prepare("UPDATE rollouts SET state = ?, current_wave = ?, wave_opened_at = "
                              "?, gate_met_at = ?, paused_at = ?, reason = ?, updated_at = ? "
                              "WHERE id = ?"));
    SOVDEV_TRY(update.bind_all(rollout_state_name(r.state), r.current_wave, r.wave_opened_at,
                               r.gate_met_at, r.paused_at, r.reason, r.updated_at, r.id));
    SOVDEV_TRY(update.run());
    if (db_.changes() == 0) {
      return make_error(Errc::not_found, "no rollout " + std::to_string(r.id));
    }
    return {};
  }());
}

}  // namespace sovdev::store
