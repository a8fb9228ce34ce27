#include "platform/store/transaction.hpp"

namespace sovdev::store {

namespace {
// One name serves every depth: savepoints nest as a stack and RAII releases them in order.
constexpr const char* kSavepoint = "sovdev_tx";
}  // namespace

Expected<Transaction> Transaction::begin(Database& db) {
  const bool nested = !db.autocommit();
  SOVDEV_TRY(db.exec(nested ? std::string("SAVEPOINT ") + kSavepoint : "BEGIN IMMEDIATE"));
  return Transaction(&db, nested);
}

Status Transaction::commit() {
  if (db_ == nullptr) return make_error(Errc::internal, "commit: the transaction is closed");
  SOVDEV_TRY(db_->exec(nested_ ? std::string("RELEASE ") + kSavepoint : "COMMIT"));
  db_ = nullptr;
  return {};
}

void Transaction::rollback() noexcept {
  Database* db = std::exchange(db_, nullptr);
  if (db == nullptr) return;
  if (nested_) {
    // ROLLBACK TO undoes the work but leaves the savepoint open; RELEASE closes it.
    (void)db->exec(std::string("ROLLBACK TO ") + kSavepoint);
    (void)db->exec(std::string("RELEASE ") + kSavepoint);
  } else if (!db->autocommit()) {
    (void)db->exec("ROLLBACK");
  }
}

}  // namespace sovdev::store
