#include "platform/store/sqlite.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <limits>

namespace sovdev::store {

namespace {

// The message SQLite attached to `rc` on this connection, or the generic text for the code when
// the connection's last error is something else (or there is no connection).
std::string sqlite_message(sqlite3* db, int rc) {
  if (db != nullptr && sqlite3_extended_errcode(db) == rc) return sqlite3_errmsg(db);
  return sqlite3_errstr(rc);
}

std::string file_name(sqlite3* db) {
  const char* name = db == nullptr ? nullptr : sqlite3_db_filename(db, "main");
  return name == nullptr || *name == '\0' ? std::string("the database file") : std::string(name);
}

// The start of a statement for an error message: leading comments skipped, whitespace folded,
// cut at a readable length.
std::string summarize(std::string_view sql) {
  constexpr std::size_t kMax = 60;
  std::string out;
  std::size_t i = 0;
  for (;;) {
    while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i])) != 0) ++i;
    if (sql.substr(i, 2) != "--") break;
    i = sql.find('\n', i);
    if (i == std::string_view::npos) return out;
  }
  bool space = false;
  for (; i < sql.size() && out.size() < kMax; ++i) {
    if (std::isspace(static_cast<unsigned char>(sql[i])) != 0) {
      space = true;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += sql[i];
  }
  if (i < sql.size()) out += "...";
  return out;
}

}  // namespace

Error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  std::string message = std::string(what) + ": " + sqlite_message(db, rc);
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return make_error(Errc::io, "disk full: " + message + " (free space on the disk holding " +
                                      file_name(db) + ")");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return make_error(Errc::store, message + ": " + file_name(db) +
                                         " is damaged or not a SovDev database; move it away "
                                         "(keep it for diagnosis) and start again to rebuild it");
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
      return make_error(Errc::io, message + " (check that " + file_name(db) +
                                      " and its folder exist and are writable by this user)");
    default: return make_error(Errc::store, std::move(message));
  }
}

// ---------------------------------------------------------------- Statement

void Statement::Finalize::operator()(sqlite3_stmt* stmt) const {
  sqlite3_finalize(stmt);
}

Status Statement::check_bind(int rc, int index) {
  if (rc == SQLITE_OK) return {};
  return sqlite_error(sqlite3_db_handle(stmt_.get()), rc,
                      "bind parameter " + std::to_string(index));
}

Status Statement::bind_int64(int index, std::int64_t value) {
  return check_bind(sqlite3_bind_int64(stmt_.get(), index, value), index);
}

Status Statement::bind_uint64(int index, std::uint64_t value) {
  // SQLite integers are signed 64-bit; wrapping a large value would silently store a negative.
  if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return make_error(Errc::invalid, "bind parameter " + std::to_string(index) + ": " +
                                         std::to_string(value) +
                                         " is larger than the largest storable integer");
  }
  return bind_int64(index, static_cast<std::int64_t>(value));
}

Status Statement::bind(int index, std::string_view text) {
  // A non-null pointer even for empty text, or SQLite would store NULL instead of ''.
  const char* data = text.data() == nullptr ? "" : text.data();
  return check_bind(
      sqlite3_bind_text64(stmt_.get(), index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
      index);
}

Status Statement::bind(int index, Blob blob) {
  const char* data = blob.bytes.data() == nullptr ? "" : blob.bytes.data();
  return check_bind(
      sqlite3_bind_blob64(stmt_.get(), index, data, blob.bytes.size(), SQLITE_TRANSIENT), index);
}

Status Statement::bind(int index, std::nullopt_t) {
  return check_bind(sqlite3_bind_null(stmt_.get(), index), index);
}

Expected<bool> Statement::step() {
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Error error = sqlite_error(sqlite3_db_handle(stmt_.get()), rc, "step");
  // A statement left mid-error keeps locks and cannot be re-run until it is reset.
  sqlite3_reset(stmt_.get());
  return error;
}

Status Statement::run() {
  for (;;) {
    SOVDEV_ASSIGN(const bool row, step());
    if (!row) return {};
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_.get());
}

std::int64_t Statement::int64(int column) const {
  return sqlite3_column_int64(stmt_.get(), column);
}

std::uint64_t Statement::uint64(int column) const {
  const std::int64_t value = int64(column);
  return value < 0 ? 0 : static_cast<std::uint64_t>(value);
}

std::string Statement::text(int column) const {
  const unsigned char* data = sqlite3_column_text(stmt_.get(), column);
  const int size = sqlite3_column_bytes(stmt_.get(), column);
  if (data == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(data), static_cast<std::size_t>(size));
}

std::string Statement::blob(int column) const {
  std::string out;
  blob(column, out);
  return out;
}

void Statement::blob(int column, std::string& out) const {
  // Order matters: sqlite3_column_bytes after sqlite3_column_blob reports the blob's size.
  const void* data = sqlite3_column_blob(stmt_.get(), column);
  const int size = sqlite3_column_bytes(stmt_.get(), column);
  if (data == nullptr) {
    out.clear();
    return;
  }
  out.assign(static_cast<const char*>(data), static_cast<std::size_t>(size));
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_.get(), column) == SQLITE_NULL;
}

// ---------------------------------------------------------------- Database

void Database::Close::operator()(sqlite3* db) const {
  // _v2 defers the close until any statement still alive is finalized, instead of failing.
  sqlite3_close_v2(db);
}

namespace {

// Debian's SQLite gives every connection's page cache one 20-page block up front (about
// 90 KB) that stays allocated as long as the connection, however little the cache holds.
// Without it pages come and go one by one, and release_memory() gives them all back. Must run
// before SQLite initialises; later calls are refused harmlessly (SQLITE_MISUSE).
void configure_sqlite_once() {
  static const int configured = sqlite3_config(SQLITE_CONFIG_PAGECACHE, nullptr, 0, 0);
  (void)configured;
}

bool is_file_path(const std::string& path) {
  return !path.empty() && path != ":memory:" && path.rfind("file:", 0) != 0;
}

// The database and its -wal and -shm files readable by their owner alone: the agent's cache
// holds bundle payloads, which may carry Secrets. SQLite creates a new file 0644 (less the
// umask) and gives -wal and -shm the database file's mode, so the main file is created here,
// 0600, before SQLite opens it; files an older version left 0644 are narrowed. Best effort:
// a file owned by someone else keeps its mode, and SQLite reports whatever stops the open.
void keep_private(const std::string& path, bool create) {
  if (!is_file_path(path)) return;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
  if (fd < 0) return;
  ::close(fd);
  for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 || (st.st_mode & 077) == 0 || st.st_uid != ::geteuid()) {
      continue;
    }
    ::chmod(file.c_str(), st.st_mode & 0700);
  }
}

// `file:` URI of a path: the characters that mean something in a URI escaped.
std::string file_uri(const std::string& path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "file:";
  for (const char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '%' || c == '?' || c == '#' || u < 0x21 || u >= 0x7f) {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

Expected<Database> Database::open(const std::string& path, const OpenOptions& options) {
  auto db = open_once(path, options, false);
  // A read-only open of a WAL database needs its -shm file, which SQLite cannot create in a
  // folder this user may not write to (`status` on a read-only state folder, or as another
  // user). With no -wal file nothing is pending outside the main file, so reading it as
  // immutable sees exactly what a normal read would.
  if (!db && options.read_only && is_file_path(path) && !file_exists(path + "-shm") &&
      !file_exists(path + "-wal") && file_exists(path)) {
    return open_once(path, options, true);
  }
  return db;
}

Expected<Database> Database::open_once(const std::string& path, const OpenOptions& options,
                                       bool immutable) {
  configure_sqlite_once();
  int flags = options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (options.create && !options.read_only) flags |= SQLITE_OPEN_CREATE;
  if (!options.read_only) keep_private(path, options.create);
  const std::string name = immutable ? file_uri(path) + "?immutable=1" : path;
  if (immutable) flags |= SQLITE_OPEN_URI;
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(name.c_str(), &raw, flags, nullptr);
  // SQLite hands out a handle even when opening fails; own it before anything else.
  Database db(raw, path);
  const std::string what = "open database " + path;
  if (raw == nullptr) return make_error(Errc::store, what + ": out of memory");
  if (rc != SQLITE_OK) return sqlite_error(raw, rc, what);
  sqlite3_extended_result_codes(raw, 1);
  // Opening read-write silently falls back to read-only on a write-protected file; the first
  // write would then fail far from here with a vaguer message.
  if (!options.read_only && sqlite3_db_readonly(raw, "main") == 1) {
    return make_error(Errc::io, what +
                                    ": the file is not writable (check its owner and "
                                    "permissions, or open it read-only)");
  }
  if (auto configured = db.configure(options); !configured) {
    return std::move(configured).error().context(what);
  }
  return db;
}

Status Database::configure(const OpenOptions& options) {
  sqlite3_busy_timeout(db_.get(), options.busy_timeout_ms);
  // Reads the header now, so a file that is not a database fails here, with advice.
  SOVDEV_TRY(exec("SELECT count(*) FROM sqlite_master"));
  SOVDEV_TRY(exec("PRAGMA foreign_keys = ON"));
  // Memory-mapped I/O would turn a disk error into SIGBUS and blur the memory figures.
  SOVDEV_TRY(exec("PRAGMA mmap_size = 0"));
  SOVDEV_TRY(exec("PRAGMA cache_size = -" + std::to_string(options.cache_kib)));
  SOVDEV_TRY(exec(options.synchronous == Synchronous::full ? "PRAGMA synchronous = FULL"
                                                           : "PRAGMA synchronous = NORMAL"));
  if (options.read_only) return {};
  // Before WAL mode is set: that writes the header, and the page size with it.
  if (options.page_size > 0) {
    SOVDEV_TRY(exec("PRAGMA page_size = " + std::to_string(options.page_size)));
  }
  // WAL: readers never block the writer, and a commit is one append plus (with FULL) one fsync.
  std::string mode;
  {
    SOVDEV_ASSIGN(Statement wal, prepare("PRAGMA journal_mode = WAL"));
    SOVDEV_ASSIGN(const bool row, wal.step());
    if (row) mode = wal.text(0);
  }
  if (mode != "wal" && mode != "memory") {
    return make_error(Errc::store, "could not switch to WAL journal mode (got '" + mode +
                                       "'); the file system may not support shared memory");
  }
  // Checkpoints truncate the WAL back to this size, so a 256 MiB download does not leave a
  // 256 MiB WAL behind on a small disk.
  return exec("PRAGMA journal_size_limit = 4194304");
}

Status Database::exec(std::string_view sql) {
  // sqlite3_exec needs a terminated string; statements are short, the copy is irrelevant.
  const std::string text(sql);
  char* message = nullptr;
  const int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &message);
  sqlite3_free(message);  // sqlite_error reads the same text from the connection
  if (rc != SQLITE_OK) return sqlite_error(db_.get(), rc, "run " + summarize(sql));
  return {};
}

Expected<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  const int rc =
      sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()), 0, &raw, &tail);
  Statement statement(raw);
  const std::string what = "prepare " + summarize(sql);
  if (rc != SQLITE_OK) return sqlite_error(db_.get(), rc, what);
  if (raw == nullptr) return make_error(Errc::internal, what + ": no statement in the text");
  const std::string_view rest(tail, static_cast<std::size_t>(sql.data() + sql.size() - tail));
  if (rest.find_first_not_of(" \t\r\n;") != std::string_view::npos) {
    return make_error(Errc::internal, what + ": more than one statement");
  }
  return statement;
}

CachedStatement::~CachedStatement() {
  if (lent_ == nullptr) return;  // moved from, or compiled for one use (finalized with it)
  lent_->reset();
  *busy_ = false;
}

Expected<CachedStatement> Database::cached(std::string_view sql) {
  auto it = kept_->find(sql);
  if (it == kept_->end()) {
    SOVDEV_ASSIGN(Statement compiled, prepare(sql));
    if (kept_->size() >= kCachedStatements) return CachedStatement(std::move(compiled));
    it = kept_->emplace(std::string(sql), Kept{std::move(compiled), false}).first;
  }
  if (it->second.busy) {
    SOVDEV_ASSIGN(Statement compiled, prepare(sql));
    return CachedStatement(std::move(compiled));
  }
  it->second.busy = true;
  return CachedStatement(&it->second.statement, &it->second.busy);
}

Status Database::exec_cached(std::string_view sql) {
  SOVDEV_ASSIGN(CachedStatement statement, cached(sql));
  return statement->run();
}

std::int64_t Database::changes() const {
  return sqlite3_changes64(db_.get());
}

std::int64_t Database::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_.get());
}

void Database::release_memory() {
  // The compiled statements go too (those lent out stay): they are made again on first use,
  // and an idle agent has no use for them.
  std::erase_if(*kept_, [](const auto& entry) { return !entry.second.busy; });
  sqlite3_db_release_memory(db_.get());
}

bool Database::autocommit() const {
  return sqlite3_get_autocommit(db_.get()) != 0;
}

Expected<std::int64_t> query_int64(Database& db, std::string_view sql) {
  SOVDEV_ASSIGN(Statement statement, db.prepare(sql));
  SOVDEV_ASSIGN(const bool row, statement.step());
  if (!row) return make_error(Errc::internal, std::string(sql) + ": returned no row");
  return statement.int64(0);
}

}  // namespace sovdev::store
