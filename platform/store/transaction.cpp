#include "platform/store/transaction.hpp"

namespace sovdev::store {

namespace {
// One name serves every depth: savepoints nest as a stack and RAII releases them in order.
// Through the statement cache: a chunk stored in the caller's transaction opens and releases a
// savepoint of its own, thousands of times a transfer.
constexpr const char* kBegin[] = {"BEGIN IMMEDIATE", "SAVEPOINT sovdev_tx"};
constexpr const char* kRelease = "RELEASE sovdev_tx";
constexpr const char* kRollbackTo = "ROLLBACK TO sovdev_tx";
}  // namespace

Expected<Transaction> Transaction::begin(Database& db) {
  const bool nested = !db.autocommit();
  SOVDEV_TRY(db.exec_cached(nested ? kBegin[1] : kBegin[0]));
  return Transaction(&db, nested);
}

Status Transaction::commit() {
  if (db_ == nullptr) return make_error(Errc::internal, "commit: the transaction is closed");
  SOVDEV_TRY(db_->exec_cached(nested_ ? kRelease : "COMMIT"));
  db_ = nullptr;
  return {};
}

void Transaction::rollback() noexcept {
  Database* db = std::exchange(db_, nullptr);
  if (db == nullptr) return;
  if (nested_) {
    // ROLLBACK TO undoes the work but leaves the savepoint open; RELEASE closes it.
    (void)db->exec_cached(kRollbackTo);
    (void)db->exec_cached(kRelease);
  } else if (!db->autocommit()) {
    (void)db->exec_cached("ROLLBACK");
  }
}

}  // namespace sovdev::store
