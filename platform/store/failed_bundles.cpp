#include "platform/store/failed_bundles.hpp"

#include "platform/store/detail.hpp"

namespace sovdev::store {

using detail::check_digest;
using detail::with_context;

Status FailedBundles::add(const FailedBundle& f) {
  return with_context("record the failure of " + f.stack + "@" + std::to_string(f.version),
                      [&]() -> Status {
                        SOVDEV_TRY(check_digest(f.digest));
                        SOVDEV_ASSIGN(Statement insert,
                                      db_.prepare("INSERT OR REPLACE INTO failed_bundles (digest, "
                                                  "stack, version, reason, failed_at) "
                                                  "VALUES (?, ?, ?, ?, ?)"));
                        // A reason is for people: a page of a command's stderr is enough.
                        SOVDEV_TRY(insert.bind_all(Blob{f.digest}, f.stack, f.version,
                                                   f.reason.substr(0, 4096), f.failed_at));
                        return insert.run();
                      }());
}

namespace {

FailedBundle row_of(const Statement& s) {
  return {s.blob(0), s.text(1), s.uint64(2), s.text(3), s.int64(4)};
}

constexpr const char* kFailedBundleColumns =
    "SELECT digest, stack, version, reason, failed_at FROM failed_bundles ";

}  // namespace

Expected<std::optional<FailedBundle>> FailedBundles::find(std::string_view digest) {
  SOVDEV_ASSIGN(Statement select,
                db_.prepare(std::string(kFailedBundleColumns) + "WHERE digest = ?"));
  SOVDEV_TRY(select.bind_all(Blob{digest}));
  SOVDEV_ASSIGN(const bool row, select.step());
  if (!row) return std::optional<FailedBundle>();
  return std::optional<FailedBundle>(row_of(select));
}

Expected<std::vector<FailedBundle>> FailedBundles::list() {
  SOVDEV_ASSIGN(Statement select,
                db_.prepare(std::string(kFailedBundleColumns) + "ORDER BY stack, version"));
  std::vector<FailedBundle> all;
  for (;;) {
    SOVDEV_ASSIGN(const bool row, select.step());
    if (!row) return all;
    all.push_back(row_of(select));
  }
}

Expected<std::int64_t> FailedBundles::clear_below(std::string_view stack, std::uint64_t version) {
  SOVDEV_ASSIGN(Statement del,
                db_.prepare("DELETE FROM failed_bundles WHERE stack = ? AND version < ?"));
  SOVDEV_TRY(del.bind_all(stack, version));
  SOVDEV_TRY(del.run());
  return db_.changes();
}

Expected<std::int64_t> FailedBundles::clear(std::string_view stack) {
  SOVDEV_ASSIGN(Statement del,
                db_.prepare(stack.empty() ? "DELETE FROM failed_bundles"
                                          : "DELETE FROM failed_bundles WHERE stack = ?"));
  if (!stack.empty()) SOVDEV_TRY(del.bind_all(stack));
  SOVDEV_TRY(del.run());
  return db_.changes();
}

}  // namespace sovdev::store
