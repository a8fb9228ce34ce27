// Thin RAII wrappers over the SQLite C API that report every failure as an Error.
#pragma once

#include <concepts>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/error.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace sovdev::store {

enum class Synchronous {
  full,    // fsync on every commit: a committed transaction survives a power cut
  normal,  // fsync at checkpoints only: a power cut may lose the last commits, never consistency
};

// Files are created 0600 and an existing database, -wal and -shm of this user narrowed to its
// owner: the caches hold bundle payloads, which may carry Secrets.
struct OpenOptions {
  bool create = true;
  // Never writes, so it works on a read-only folder or another user's files (`status`).
  bool read_only = false;
  Synchronous synchronous = Synchronous::full;
  // Page cache per connection. SQLite's default (2 MiB) would be a large share of the agent's
  // private-memory budget; chunks are written once and read once, so a big cache buys little.
  int cache_kib = 512;
  int busy_timeout_ms = 5000;
  // Page size of a database this open creates (0: SQLite's 4096). An existing file keeps the
  // size it was made with: WAL mode cannot change it.
  int page_size = 0;
};

// Binds its bytes as a BLOB rather than TEXT.
struct Blob {
  std::string_view bytes;
};

// Converts a SQLite result code into the project's Error: disk full becomes Errc::io, a damaged
// file says to move it away, permission problems are Errc::io, everything else Errc::store.
// `db` may be null (then only the code's generic text is used).
Error sqlite_error(sqlite3* db, int rc, std::string_view what);

class Statement {
 public:
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = default;
  ~Statement() = default;

  // Parameters are numbered from 1, as in SQLite. Text and blobs are copied by SQLite, so the
  // argument need not outlive the call.
  template <std::integral T>
  [[nodiscard]] Status bind(int index, T value) {
    if constexpr (std::is_signed_v<T>) {
      return bind_int64(index, static_cast<std::int64_t>(value));
    } else {
      return bind_uint64(index, static_cast<std::uint64_t>(value));
    }
  }
  [[nodiscard]] Status bind(int index, std::string_view text);
  [[nodiscard]] Status bind(int index, const char* text) {
    return bind(index, std::string_view(text));
  }
  [[nodiscard]] Status bind(int index, const std::string& text) {
    return bind(index, std::string_view(text));
  }
  [[nodiscard]] Status bind(int index, Blob blob);
  [[nodiscard]] Status bind(int index, std::nullopt_t);
  template <class T>
  [[nodiscard]] Status bind(int index, const std::optional<T>& value) {
    if (!value) return bind(index, std::nullopt);
    return bind(index, *value);
  }

  // Binds the arguments to parameters 1..N in order.
  template <class... Args>
  [[nodiscard]] Status bind_all(const Args&... args) {
    int index = 0;
    Status result;
    // Stops at the first failure: the fold short-circuits on `&&`.
    (void)((result = bind(++index, args), result.has_value()) && ...);
    return result;
  }

  // true: a row is available through the column getters; false: the statement is done.
  [[nodiscard]] Expected<bool> step();
  // Steps to completion, for statements that return no rows.
  [[nodiscard]] Status run();
  // Makes the statement ready to run again; bindings are kept until rebound.
  void reset();

  // Column getters are for the current row; a NULL reads as 0 or an empty string.
  [[nodiscard]] std::int64_t int64(int column) const;
  // For columns that hold values bound through bind(uint64): never negative.
  [[nodiscard]] std::uint64_t uint64(int column) const;
  [[nodiscard]] std::string text(int column) const;
  [[nodiscard]] std::string blob(int column) const;
  // The same into `out`, reusing its capacity.
  void blob(int column, std::string& out) const;
  [[nodiscard]] bool is_null(int column) const;

  [[nodiscard]] sqlite3_stmt* handle() const { return stmt_.get(); }

 private:
  friend class Database;
  struct Finalize {
    void operator()(sqlite3_stmt* stmt) const;
  };
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}

  [[nodiscard]] Status bind_int64(int index, std::int64_t value);
  [[nodiscard]] Status bind_uint64(int index, std::uint64_t value);
  [[nodiscard]] Status check_bind(int rc, int index);

  std::unique_ptr<sqlite3_stmt, Finalize> stmt_;
};

// A statement lent by Database::cached(): reset when the loan ends (so no read stays open), its
// bindings kept until rebound. Use it like a Statement, through -> or *.
class CachedStatement {
 public:
  CachedStatement(CachedStatement&& other) noexcept
      : lent_(std::exchange(other.lent_, nullptr)),
        busy_(std::exchange(other.busy_, nullptr)),
        own_(std::move(other.own_)) {
    other.own_.reset();
  }
  CachedStatement& operator=(CachedStatement&&) = delete;
  CachedStatement(const CachedStatement&) = delete;
  CachedStatement& operator=(const CachedStatement&) = delete;
  ~CachedStatement();

  Statement* operator->() { return lent_ != nullptr ? lent_ : &*own_; }
  Statement& operator*() { return *operator->(); }

 private:
  friend class Database;
  CachedStatement(Statement* lent, bool* busy) : lent_(lent), busy_(busy) {}
  explicit CachedStatement(Statement own) : own_(std::move(own)) {}

  Statement* lent_ = nullptr;
  bool* busy_ = nullptr;
  std::optional<Statement> own_;  // compiled for this use only: the cached one was lent already
};

// One connection. Use it from one thread at a time (give each thread its own); the views built
// on it (BundleCache, HubBundles ...) hold a reference, so keep it in place while they live.
class Database {
 public:
  [[nodiscard]] static Expected<Database> open(const std::string& path, const OpenOptions& options);

  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  Database(Database&&) noexcept = default;
  Database& operator=(Database&&) noexcept = default;
  ~Database() = default;

  // Runs one or more statements that return no rows of interest (DDL, PRAGMA, BEGIN ...).
  [[nodiscard]] Status exec(std::string_view sql);
  // Compiles exactly one statement; trailing statements are refused rather than ignored.
  [[nodiscard]] Expected<Statement> prepare(std::string_view sql);
  // The same, compiled once per connection and kept (up to kCachedStatements texts), for the
  // statements run for every chunk: compiling one costs more than running it. A text asked for
  // again while its statement is still lent gets a fresh one, so nesting is safe.
  [[nodiscard]] Expected<CachedStatement> cached(std::string_view sql);
  // exec() of one statement through the cache (BEGIN, COMMIT, SAVEPOINT ...).
  [[nodiscard]] Status exec_cached(std::string_view sql);
  static constexpr std::size_t kCachedStatements = 32;

  // Rows changed by the last INSERT, UPDATE or DELETE on this connection.
  [[nodiscard]] std::int64_t changes() const;
  [[nodiscard]] std::int64_t last_insert_rowid() const;
  // Whether no transaction is open (SQLite's autocommit mode).
  [[nodiscard]] bool autocommit() const;
  // Gives the page cache and the cached statements not lent out back to the allocator (an
  // idle agent has no use for them); the next query reads the pages and compiles again.
  void release_memory();

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] sqlite3* handle() const { return db_.get(); }

 private:
  struct Close {
    void operator()(sqlite3* db) const;
  };
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  [[nodiscard]] static Expected<Database> open_once(const std::string& path,
                                                    const OpenOptions& options, bool immutable);
  [[nodiscard]] Status configure(const OpenOptions& options);

  struct Kept {
    Statement statement;
    bool busy = false;
  };

  std::unique_ptr<sqlite3, Close> db_;
  std::string path_;
  // Declared after db_: destroyed first, so every statement is finalized before the close.
  // In a unique_ptr so that a moved Database keeps the addresses lent out.
  std::unique_ptr<std::map<std::string, Kept, std::less<>>> kept_ =
      std::make_unique<std::map<std::string, Kept, std::less<>>>();
};

// Runs a query expected to return one integer (PRAGMA user_version, count(*) ...).
[[nodiscard]] Expected<std::int64_t> query_int64(Database& db, std::string_view sql);

}  // namespace sovdev::store
