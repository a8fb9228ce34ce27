// Write transactions that commit only when the work succeeds (Mender's WriteTransaction idea).
#pragma once

#include <type_traits>
#include <utility>

#include "common/error.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::store {

// An open write transaction; rolls back when destroyed uncommitted, so every early return
// (SOVDEV_TRY included) undoes the partial work. Opened inside another transaction it becomes
// a savepoint, so store operations that are atomic on their own also compose into larger ones.
class Transaction {
 public:
  // BEGIN IMMEDIATE takes the write lock up front: a transaction that reads then writes cannot
  // fail half-way with SQLITE_BUSY because another writer slipped in after the read.
  [[nodiscard]] static Expected<Transaction> begin(Database& db);

  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction(Transaction&& other) noexcept
      : db_(std::exchange(other.db_, nullptr)), nested_(other.nested_) {}
  Transaction& operator=(Transaction&& other) noexcept {
    if (this != &other) {
      rollback();
      db_ = std::exchange(other.db_, nullptr);
      nested_ = other.nested_;
    }
    return *this;
  }
  ~Transaction() { rollback(); }

  // On failure the transaction is still open and the destructor rolls it back.
  [[nodiscard]] Status commit();
  // Idempotent; errors are ignored because SQLite may already have rolled back by itself
  // (after SQLITE_FULL or an I/O error) and there is nothing more to undo.
  void rollback() noexcept;

 private:
  Transaction(Database* db, bool nested) : db_(db), nested_(nested) {}

  Database* db_;
  bool nested_;
};

template <class R>
inline constexpr bool is_expected_v = false;
template <class T>
inline constexpr bool is_expected_v<Expected<T>> = true;

// Runs `fn` (returning Status or Expected<T>) in a transaction; commits when it succeeds, rolls
// back when it returns an error. Returns what `fn` returned, or the error of BEGIN/COMMIT.
template <class F>
[[nodiscard]] auto transaction(Database& db, F&& fn) -> std::invoke_result_t<F&> {
  using Result = std::invoke_result_t<F&>;
  static_assert(is_expected_v<Result>, "the transaction body must return Status or Expected<T>");
  auto tx = Transaction::begin(db);
  if (!tx) return Result(std::move(tx).error());
  Result result = fn();
  if (!result) return result;
  if (auto committed = tx->commit(); !committed) return Result(std::move(committed).error());
  return result;
}

}  // namespace sovdev::store
