#include "platform/store/rollout_marks.hpp"

#include "platform/store/detail.hpp"
#include "platform/store/transaction.hpp"

namespace sovdev::store {

using detail::check_digest;
using detail::with_context;

namespace {

constexpr const char* kMarkColumns =
    "SELECT stack, rollout_id, channel, version, digest, prior_version, prior_digest, state, "
    "marked_at FROM rollout_marks ";

RolloutMark mark_of_row(const Statement& s) {
  RolloutMark m;
  m.stack = s.text(0);
  m.rollout_id = s.uint64(1);
  m.channel = s.text(2);
  m.version = s.uint64(3);
  m.digest = s.blob(4);
  if (!s.is_null(6)) m.prior = LastGood{s.uint64(5), s.blob(6)};
  m.state = s.text(7);
  m.marked_at = s.int64(8);
  return m;
}

Expected<std::optional<RolloutMark>> one_mark(Statement& select) {
  SOVDEV_ASSIGN(const bool row, select.step());
  if (!row) return std::optional<RolloutMark>();
  return std::optional<RolloutMark>(mark_of_row(select));
}

}  // namespace

Expected<bool> RolloutMarks::record(const RolloutMark& m) {
  return with_context(
      "record rollout " + std::to_string(m.rollout_id) + " of " + m.stack + "@" +
          std::to_string(m.version),
      [&]() -> Expected<bool> {
        SOVDEV_TRY(check_digest(m.digest));
        if (m.rollout_id == 0) return make_error(Errc::invalid, "a rollout id is above 0");
        if (m.prior) SOVDEV_TRY(check_digest(m.prior->digest));
        SOVDEV_ASSIGN(Statement insert,
                      db_.prepare("INSERT OR IGNORE INTO rollout_marks (stack, rollout_id, "
                                  "channel, version, digest, prior_version, prior_digest, state, "
                                  "marked_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?)"));
        std::optional<std::uint64_t> prior_version;
        std::optional<Blob> prior_digest;
        if (m.prior) {
          prior_version = m.prior->version;
          prior_digest = Blob{m.prior->digest};
        }
        SOVDEV_TRY(insert.bind_all(m.stack, m.rollout_id, m.channel, m.version, Blob{m.digest},
                                   prior_version, prior_digest, m.marked_at));
        SOVDEV_TRY(insert.run());
        return db_.changes() > 0;
      }());
}

Expected<std::optional<RolloutMark>> RolloutMarks::find(std::string_view stack,
                                                        std::uint64_t rollout_id) {
  SOVDEV_ASSIGN(Statement select,
                db_.prepare(std::string(kMarkColumns) + "WHERE stack = ? AND rollout_id = ?"));
  SOVDEV_TRY(select.bind_all(stack, rollout_id));
  return one_mark(select);
}

Expected<std::optional<RolloutMark>> RolloutMarks::find_open(std::string_view stack,
                                                             std::string_view digest) {
  SOVDEV_ASSIGN(Statement select, db_.prepare(std::string(kMarkColumns) +
                                              "WHERE stack = ? AND digest = ? AND state = 'open' "
                                              "ORDER BY rollout_id DESC LIMIT 1"));
  SOVDEV_TRY(select.bind_all(stack, Blob{digest}));
  return one_mark(select);
}

Expected<bool> RolloutMarks::close(std::string_view stack, std::uint64_t rollout_id,
                                   std::string_view state, std::int64_t now) {
  if (state != "reverted" && state != "superseded") {
    return make_error(Errc::invalid, "a mark closes as reverted or superseded");
  }
  SOVDEV_ASSIGN(Statement update,
                db_.prepare("UPDATE rollout_marks SET state = ?, closed_at = ? "
                            "WHERE stack = ? AND rollout_id = ? AND state = 'open'"));
  SOVDEV_TRY(update.bind_all(state, now, stack, rollout_id));
  SOVDEV_TRY(update.run());
  return db_.changes() > 0;
}

Expected<std::int64_t> RolloutMarks::supersede(std::string_view stack, std::string_view applied,
                                               std::int64_t now) {
  SOVDEV_ASSIGN(Statement update,
                db_.prepare("UPDATE rollout_marks SET state = 'superseded', closed_at = ? "
                            "WHERE stack = ? AND digest != ? AND state = 'open'"));
  SOVDEV_TRY(update.bind_all(now, stack, Blob{applied}));
  SOVDEV_TRY(update.run());
  return db_.changes();
}

Expected<std::int64_t> RolloutMarks::close_other_channels(const std::vector<std::string>& followed,
                                                          std::int64_t now) {
  if (followed.empty()) return std::int64_t{0};
  SOVDEV_ASSIGN(auto marks, list());
  std::int64_t closed = 0;
  for (const auto& m : marks) {
    if (m.state != "open") continue;
    bool kept = false;
    for (const auto& c : followed) kept = kept || c == m.channel;
    if (kept) continue;
    SOVDEV_ASSIGN(const bool done, close(m.stack, m.rollout_id, "superseded", now));
    closed += done ? 1 : 0;
  }
  return closed;
}

Expected<std::vector<RolloutMark>> RolloutMarks::list() {
  SOVDEV_ASSIGN(Statement select,
                db_.prepare(std::string(kMarkColumns) + "ORDER BY stack, rollout_id"));
  std::vector<RolloutMark> all;
  for (;;) {
    SOVDEV_ASSIGN(const bool row, select.step());
    if (!row) return all;
    all.push_back(mark_of_row(select));
  }
}

Expected<bool> RevocationCache::put(const RevocationRecord& r) {
  return with_context(
      "keep the revocations of " + r.channel + " serial " + std::to_string(r.serial),
      transaction(db_, [&]() -> Expected<bool> {
        SOVDEV_ASSIGN(auto held, get(r.channel));
        if (held && held->serial == r.serial) return false;
        if (held && held->serial > r.serial) {
          return make_error(Errc::rollback, "serial " + std::to_string(r.serial) +
                                                " is below the held " +
                                                std::to_string(held->serial));
        }
        SOVDEV_ASSIGN(Statement insert,
                      db_.prepare("INSERT OR REPLACE INTO revocations (channel, serial, envelope, "
                                  "received_at) VALUES (?, ?, ?, ?)"));
        SOVDEV_TRY(insert.bind_all(r.channel, r.serial, Blob{r.envelope}, r.received_at));
        SOVDEV_TRY(insert.run());
        return true;
      }));
}

Expected<std::optional<RevocationRecord>> RevocationCache::get(std::string_view channel) {
  SOVDEV_ASSIGN(Statement select,
                db_.prepare("SELECT channel, serial, envelope, received_at FROM revocations "
                            "WHERE channel = ?"));
  SOVDEV_TRY(select.bind_all(channel));
  SOVDEV_ASSIGN(const bool row, select.step());
  if (!row) return std::optional<RevocationRecord>();
  return std::optional<RevocationRecord>(
      RevocationRecord{select.text(0), select.uint64(1), select.blob(2), select.int64(3)});
}

}  // namespace sovdev::store
