#include "platform/store/catalog_inputs.hpp"

#include "platform/store/detail.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::store {

using detail::with_context;

// ---------------------------------------------------------------- StackHolds

Status StackHolds::set(const StackHold& hold) {
  const std::string what =
      "hold " + hold.channel + "/" + hold.stack + " at version " + std::to_string(hold.version);
  return with_context(what, [&]() -> Status {
    // Only a real move counts as a change: the trigger would re-sign the catalog for nothing.
    SOVDEV_ASSIGN(auto held, get(hold.channel, hold.stack));
    if (held && held->version == hold.version) return {};
    SOVDEV_ASSIGN(Statement upsert,
                  db_.prepare("INSERT INTO stack_holds (channel, stack, version, held_at) VALUES "
                              "(?, ?, ?, ?) ON CONFLICT (channel, stack) DO UPDATE SET "
                              "version = excluded.version, held_at = excluded.held_at"));
    SOVDEV_TRY(upsert.bind_all(hold.channel, hold.stack, hold.version, hold.held_at));
    return upsert.run();
  }());
}

Expected<std::optional<StackHold>> StackHolds::get(std::string_view channel,
                                                   std::string_view stack) {
  SOVDEV_ASSIGN(CachedStatement s, db_.cached("SELECT version, held_at FROM stack_holds WHERE "
                                              "channel = ? AND stack = ?"));
  SOVDEV_TRY(s->bind_all(channel, stack));
  SOVDEV_ASSIGN(const bool row, s->step());
  if (!row) return std::optional<StackHold>();
  return std::optional<StackHold>(
      StackHold{std::string(channel), std::string(stack), s->uint64(0), s->int64(1)});
}

Expected<bool> StackHolds::release(std::string_view channel, std::string_view stack) {
  SOVDEV_ASSIGN(Statement s,
                db_.prepare("DELETE FROM stack_holds WHERE channel = ? AND stack = ?"));
  SOVDEV_TRY(s.bind_all(channel, stack));
  SOVDEV_TRY(s.run());
  return db_.changes() > 0;
}

Expected<std::vector<StackHold>> StackHolds::list() {
  SOVDEV_ASSIGN(Statement s, db_.prepare("SELECT channel, stack, version, held_at FROM "
                                         "stack_holds ORDER BY channel, stack"));
  std::vector<StackHold> out;
  for (;;) {
    SOVDEV_ASSIGN(const bool row, s.step());
    if (!row) return out;
    out.push_back({s.text(0), s.text(1), s.uint64(2), s.int64(3)});
  }
}

// ---------------------------------------------------------------- HubWindows

namespace {

Expected<std::vector<HubWindow>> read_windows(Statement& s) {
  std::vector<HubWindow> out;
  for (;;) {
    SOVDEV_ASSIGN(const bool row, s.step());
    if (!row) return out;
    out.push_back({s.uint64(0), s.text(1), s.text(2), s.int64(3) != 0, s.text(4), s.text(5),
                   s.text(6), s.int64(7)});
  }
}

constexpr const char* kWindowColumns =
    "SELECT id, channel, selector, deny, schedule, duration, zone, created_at FROM hub_windows ";

}  // namespace

Expected<std::uint64_t> HubWindows::add(const HubWindow& w) {
  return with_context("add window", [&]() -> Expected<std::uint64_t> {
    SOVDEV_ASSIGN(Statement s, db_.prepare("INSERT INTO hub_windows (channel, selector, deny, "
                                           "schedule, duration, zone, created_at) VALUES (?, ?, "
                                           "?, ?, ?, ?, ?)"));
    SOVDEV_TRY(s.bind_all(w.channel, w.selector, w.deny ? 1 : 0, w.schedule, w.duration, w.zone,
                          w.created_at));
    SOVDEV_TRY(s.run());
    return static_cast<std::uint64_t>(db_.last_insert_rowid());
  }());
}

Expected<bool> HubWindows::remove(std::uint64_t id) {
  SOVDEV_ASSIGN(Statement s, db_.prepare("DELETE FROM hub_windows WHERE id = ?"));
  SOVDEV_TRY(s.bind(1, id));
  SOVDEV_TRY(s.run());
  return db_.changes() > 0;
}

Expected<std::vector<HubWindow>> HubWindows::list() {
  SOVDEV_ASSIGN(Statement s, db_.prepare(std::string(kWindowColumns) + "ORDER BY id"));
  return read_windows(s);
}

Expected<std::vector<HubWindow>> HubWindows::for_channel(std::string_view channel) {
  SOVDEV_ASSIGN(Statement s, db_.prepare(std::string(kWindowColumns) +
                                         "WHERE channel = ? OR channel = '' ORDER BY id"));
  SOVDEV_TRY(s.bind(1, channel));
  return read_windows(s);
}

// ---------------------------------------------------------------- RevocationLists

Status RevocationLists::put(const StoredRevocations& list) {
  const std::string what =
      "store revocation list " + list.channel + " serial " + std::to_string(list.serial);
  return with_context(
      what, transaction(db_, [&]() -> Status {
        SOVDEV_ASSIGN(auto held, newest(list.channel));
        if (held && list.serial <= held->serial) {
          return make_error(Errc::rollback, "the channel's list is at serial " +
                                                std::to_string(held->serial) +
                                                " already; agents take only a higher one");
        }
        SOVDEV_ASSIGN(Statement s, db_.prepare("INSERT INTO revocation_lists (channel, serial, "
                                               "issued_at, envelope) VALUES (?, ?, ?, ?)"));
        SOVDEV_TRY(s.bind_all(list.channel, list.serial, list.issued_at, Blob{list.envelope}));
        return s.run();
      }));
}

Expected<std::optional<StoredRevocations>> RevocationLists::newest(std::string_view channel) {
  SOVDEV_ASSIGN(CachedStatement s,
                db_.cached("SELECT serial, issued_at, envelope FROM revocation_lists WHERE "
                           "channel = ? ORDER BY serial DESC LIMIT 1"));
  SOVDEV_TRY(s->bind(1, channel));
  SOVDEV_ASSIGN(const bool row, s->step());
  if (!row) return std::optional<StoredRevocations>();
  return std::optional<StoredRevocations>(
      StoredRevocations{std::string(channel), s->uint64(0), s->int64(1), s->blob(2)});
}

Expected<std::int64_t> catalog_change_count(Database& db, std::string_view channel) {
  SOVDEV_ASSIGN(CachedStatement s, db.cached("SELECT COALESCE(SUM(counter), 0) FROM "
                                             "catalog_changes WHERE channel = ? OR channel = ''"));
  SOVDEV_TRY(s->bind(1, channel));
  SOVDEV_ASSIGN(const bool row, s->step());
  return row ? s->int64(0) : 0;
}

Expected<std::int64_t> all_catalog_changes(Database& db) {
  SOVDEV_ASSIGN(CachedStatement s,
                db.cached("SELECT COALESCE(SUM(counter), 0) FROM catalog_changes"));
  SOVDEV_ASSIGN(const bool row, s->step());
  return row ? s->int64(0) : 0;
}

}  // namespace sovdev::store
