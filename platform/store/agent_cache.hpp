// The agent's SQLite cache, split by use: trust roots, bundles and their chunks, what was
// applied, and the last catalog per channel. Each class is a view over one open Database; the
// agent owns the Database and hands it to the views it needs.
//
// Digests are raw 32-byte SHA-256 values and envelopes are serialized protobuf Signed messages;
// this library stores them as given and never parses them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "platform/store/sqlite.hpp"

namespace sovdev::store {

// Opens the agent database, creating and migrating it as needed. synchronous=FULL: edge boxes
// lose power without warning, and the sync protocol requests the next chunk only once the last
// one is committed, so every commit (each chunk, each state change) must survive a power cut.
[[nodiscard]] Expected<Database> open_agent_database(const std::string& path);

// ---------------------------------------------------------------- trust roots

struct TrustRootRecord {
  std::uint64_t version = 0;
  std::string envelope;
};

class TrustHistory {
 public:
  explicit TrustHistory(Database& db) : db_(db) {}

  // Appends a root the caller has verified. The first root may have any version (an agent can
  // be provisioned with a later root); after that only latest + 1 is accepted: a lower or equal
  // version is refused (rollback, duplicate), a higher one skips a rotation step.
  [[nodiscard]] Status add_root(std::uint64_t version, std::string_view envelope);
  [[nodiscard]] Expected<std::optional<TrustRootRecord>> latest();
  // Oldest first.
  [[nodiscard]] Expected<std::vector<TrustRootRecord>> list();

 private:
  Database& db_;
};

// ---------------------------------------------------------------- bundles

enum class BundleState {
  partial,   // some chunks still missing
  complete,  // every chunk stored (each was checked against its hash on arrival)
  verified,  // the whole payload checked and ready to apply
};
const char* state_name(BundleState state);

struct BundleMeta {
  std::string digest;  // of the manifest body
  std::string stack;
  std::string channel;
  std::uint64_t version = 0;
  std::string envelope;  // the Signed manifest
  // Of the payload held here: the signed one's, or for a rebuilt payload the agent's own.
  std::uint32_t chunk_count = 0;
  std::uint64_t payload_size = 0;
  // Every chunk but the last is this long. Given (> 0) and with the database in a file, the
  // payload is kept in payloads/<digest hex> beside it, chunk i at i * chunk_size; 0 (or a
  // database in memory) keeps the chunks in the database. In a BundleInfo: where it is kept.
  std::uint32_t chunk_size = 0;
};

struct BundleInfo : BundleMeta {
  BundleState state = BundleState::partial;
  // The payload was rebuilt from a delta and compressed by the agent: its chunks do not match
  // the signed chunk hashes and are checked through the signed uncompressed hash instead.
  bool rebuilt = false;
};

// Fills `out` with chunk `index` of a payload being stored; asked for in order, from 0.
using ChunkSource = std::function<Status(std::uint32_t index, std::string& out)>;

class BundleCache {
 public:
  explicit BundleCache(Database& db) : db_(db) {}

  // Starts caching a bundle: stores it as partial, or returns the state it already has (so a
  // restarted download resumes). Errc::conflict when the cache holds the same stack and version
  // under another digest; to replace a partial download, remove() it first (both can share one
  // Transaction).
  [[nodiscard]] Expected<BundleState> begin(const BundleMeta& meta);
  // Stores one chunk, committed before returning (or with the caller's Transaction). Storing an
  // identical chunk again is a no-op; other bytes at a held index are Errc::conflict; an index
  // past chunk_count, or a chunk of another length than chunk_size, is Errc::invalid. In a
  // payload file the bytes are written before the row that says they are held, without an
  // fsync: set_state(complete) makes them durable, and after a power cut drop_damaged() finds
  // the chunks whose row outlived their bytes.
  [[nodiscard]] Status put_chunk(std::string_view digest, std::uint32_t index,
                                 std::string_view data);
  // The indexes not stored yet, ascending. Reads only the index, never chunk data.
  [[nodiscard]] Expected<std::vector<std::uint32_t>> missing_chunks(std::string_view digest);
  [[nodiscard]] Expected<std::string> read_chunk(std::string_view digest, std::uint32_t index);
  // The same into a caller's buffer, which keeps its capacity: a reader streaming thousands of
  // chunks allocates once.
  [[nodiscard]] Status read_chunk(std::string_view digest, std::uint32_t index, std::string& out);
  // Reads every held chunk of a partial bundle and forgets those `good` refuses, so they are
  // stored again; returns how many. For a download resumed after a crash or power cut.
  [[nodiscard]] Expected<std::uint32_t> drop_damaged(
      std::string_view digest, const std::function<bool(std::uint32_t, std::string_view)>& good);
  // complete and verified are refused (Errc::invalid) while chunks are missing. Leaving partial
  // flushes a payload file to disk first.
  [[nodiscard]] Status set_state(std::string_view digest, BundleState state);
  // Starts writing what a partial bundle's payload file holds to disk, without waiting for it
  // (sync_file_range WRITE). Called after each batch of chunks, it lets the disk work while the
  // network does, so the flush of set_state(complete) finds little left: on a disk slower than
  // the link that flush was most of a big pull. It promises nothing by itself. Ok and nothing
  // done when the bundle keeps its chunks in the table.
  [[nodiscard]] Status start_writeback(std::string_view digest);
  // Stores a payload the agent rebuilt (from a delta and checked against the signed
  // uncompressed hash) as the bundle's: `meta` gives the rebuilt payload's chunk_count and
  // payload_size, `source` its chunks 0..chunk_count-1. Replaces whatever chunks a partial
  // download held, creates the bundle if it is not cached, and marks it verified and rebuilt,
  // all in one transaction: a crash or an error leaves the cache as it was. Errc::conflict when
  // the bundle is verified already or its stack and version are held under another digest.
  [[nodiscard]] Status put_rebuilt(const BundleMeta& meta, const ChunkSource& source);
  // Forgets a payload found damaged when it was read (a failing disk, a file edited by hand):
  // its chunks go, and the bundle is partial again with the signed payload's shape (`signed_`
  // gives the digest and the manifest's chunk_count, payload_size and chunk_size), so the next
  // fetch of its digest brings the signed payload whole. The row stays, so a stack's last good
  // bundle keeps its place. False when the bundle is not cached. (bundle_scope.cpp)
  [[nodiscard]] Expected<bool> drop_payload(const BundleMeta& signed_);

  [[nodiscard]] Expected<std::optional<BundleInfo>> find(std::string_view digest);
  [[nodiscard]] Expected<std::optional<BundleInfo>> find_version(std::string_view stack,
                                                                 std::uint64_t version);
  [[nodiscard]] Expected<std::optional<BundleInfo>> highest_verified(std::string_view stack);
  // The same within one channel: rollback protection, "newest held" and offline apply are per
  // (channel, stack), so a bundle of another channel never sets the floor. (bundle_scope.cpp)
  [[nodiscard]] Expected<std::optional<BundleInfo>> highest_verified(std::string_view channel,
                                                                     std::string_view stack);
  // Forgets every bundle of a channel not in `followed` (imported or fetched before the agent
  // followed other channels): such a bundle is never applied, never a rollback target and
  // never a rollback floor. A last good bundle among them stops being the last good one.
  // Returns the bundles forgotten, as "stack@version (channel c)"; an empty `followed` forgets
  // nothing. (bundle_scope.cpp)
  [[nodiscard]] Expected<std::vector<std::string>> forget_other_channels(
      const std::vector<std::string>& followed);
  // Ordered by stack, then version.
  [[nodiscard]] Expected<std::vector<BundleInfo>> list();
  // Deletes the bundle and its chunks; false when it was not cached. Errc::conflict while it is
  // a stack's last good bundle, which must stay available for rollback. A payload file goes
  // once the deletion is committed (inside a caller's Transaction: by the next sweep).
  [[nodiscard]] Expected<bool> remove(std::string_view digest);
  // Deletes payload files no bundle owns (left by a crash between a removal's commit and the
  // unlink, or mid-rebuild); returns how many. Takes the write lock, so it never touches what
  // another process is writing (and waits for it): the daemon runs it as it starts, a CLI
  // opening the cache never does.
  [[nodiscard]] Expected<std::uint32_t> sweep_payloads();

 private:
  // The payload file of a bundle; empty for a database in memory.
  [[nodiscard]] std::string payload_path(std::string_view digest) const;
  [[nodiscard]] Status write_payload(const BundleInfo& info, std::uint32_t index,
                                     std::string_view data);
  [[nodiscard]] Status read_payload(const BundleInfo& info, std::uint32_t index, std::string& out);

  Database& db_;
};

// ---------------------------------------------------------------- apply history

struct ApplyEntry {
  std::int64_t id = 0;
  std::string stack;
  std::uint64_t version = 0;
  std::string digest;
  std::string result;  // e.g. "applied", "failed", "rolled_back"
  std::string message;
  std::int64_t at = 0;  // unix seconds
};

struct LastGood {
  std::uint64_t version = 0;
  std::string digest;
};

class ApplyLog {
 public:
  // The log keeps the newest `keep_per_stack` entries of each stack: drift correction applies
  // again and again for months, and the disk of an edge box is small.
  explicit ApplyLog(Database& db, std::size_t keep_per_stack = 1000)
      : db_(db), keep_per_stack_(keep_per_stack) {}

  [[nodiscard]] Status record(std::string_view stack, std::uint64_t version,
                              std::string_view digest, std::string_view result,
                              std::string_view message);
  // Newest first, at most `limit`.
  [[nodiscard]] Expected<std::vector<ApplyEntry>> history(std::string_view stack,
                                                          std::size_t limit);

  [[nodiscard]] Expected<std::optional<LastGood>> last_good(std::string_view stack);
  // The bundle must be cached, verified, and of this stack and version.
  [[nodiscard]] Status set_last_good(std::string_view stack, std::uint64_t version,
                                     std::string_view digest);

 private:
  Database& db_;
  std::size_t keep_per_stack_;
};

// ---------------------------------------------------------------- catalogs

struct CatalogRecord {
  std::string channel;
  std::uint64_t serial = 0;
  std::string envelope;  // the Signed catalog
  std::int64_t received_at = 0;
};

class CatalogCache {
 public:
  explicit CatalogCache(Database& db) : db_(db) {}

  // Keeps the newest catalog of a channel. The same serial again is a no-op when the envelope
  // is identical (the broker re-sends the retained catalog on every reconnect) and Errc::conflict
  // otherwise; a lower serial is Errc::rollback.
  [[nodiscard]] Status put(const CatalogRecord& record);
  [[nodiscard]] Expected<std::optional<CatalogRecord>> get(std::string_view channel);

 private:
  Database& db_;
};

}  // namespace sovdev::store
