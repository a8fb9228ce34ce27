// The hub's SQLite store, split by use: published bundles and their chunks, the catalog of each
// channel, and the status each agent last reported. Each class is a view over one Database.
//
// Digests are raw 32-byte SHA-256 values; envelopes and statuses are serialized protobuf
// messages this library stores as given.
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

// Opens the hub database, creating and migrating it as needed. synchronous=NORMAL: WAL stays
// consistent through a power cut, and what the last commits held (a publish, a status) is
// redone by re-running publish or by the agent's next report, so an fsync per commit would
// only slow down serving hundreds of agents.
[[nodiscard]] Expected<Database> open_hub_database(const std::string& path);
// A read-only connection for a thread beside the serve loop (metrics, delta worker): WAL lets
// it read while the loop writes; a small page cache; never creates or migrates the file.
[[nodiscard]] Expected<Database> open_hub_reader(const std::string& path);

struct HubBundle {
  std::string digest;  // of the manifest body
  std::string channel;
  std::string stack;
  std::uint64_t version = 0;
  std::string envelope;  // the Signed manifest
  std::uint32_t chunk_count = 0;
  std::uint64_t payload_size = 0;
  std::uint64_t uncompressed_size = 0;
  std::int64_t created_at = 0;  // unix seconds
};

struct VersionEntry {
  std::uint64_t version = 0;
  std::string digest;
};

// Produces chunk `index` (0 .. chunk_count-1, called in order) of a payload being stored.
using HubChunkSource = std::function<Expected<std::string>(std::uint32_t index)>;

class HubBundles {
 public:
  explicit HubBundles(Database& db) : db_(db) {}

  // Stores a bundle and all its chunks in one transaction: agents never see half a bundle.
  // Returns false when this digest is already stored (publishing again is a no-op). Refuses
  // another digest for a held channel/stack/version (Errc::conflict), a version below the
  // newest of the stack (Errc::rollback), and chunks whose sizes do not add up to
  // payload_size (Errc::invalid).
  [[nodiscard]] Expected<bool> put_bundle(const HubBundle& bundle, const HubChunkSource& chunks);
  [[nodiscard]] Expected<std::optional<HubBundle>> find(std::string_view digest);
  // The same with `envelope` left empty: what a chunk request needs, without copying the
  // signed manifest (32 bytes per chunk) out of the database for every request.
  [[nodiscard]] Expected<std::optional<HubBundle>> find_without_envelope(std::string_view digest);
  [[nodiscard]] Expected<std::string> read_chunk(std::string_view digest, std::uint32_t index);
  [[nodiscard]] Status read_chunk(std::string_view digest, std::uint32_t index, std::string& out);
  [[nodiscard]] Expected<std::optional<HubBundle>> latest(std::string_view channel,
                                                          std::string_view stack);
  // Oldest first.
  [[nodiscard]] Expected<std::vector<VersionEntry>> versions(std::string_view channel,
                                                             std::string_view stack);
  // False when it was not stored.
  [[nodiscard]] Expected<bool> remove(std::string_view digest);

  // Channels with at least one bundle, sorted.
  [[nodiscard]] Expected<std::vector<std::string>> channels();
  // The newest bundle of every stack of a channel, ordered by stack: what its catalog lists.
  [[nodiscard]] Expected<std::vector<HubBundle>> newest_per_stack(std::string_view channel);

 private:
  Database& db_;
};

struct HubCatalog {
  std::string channel;
  std::uint64_t serial = 0;
  std::int64_t expires_at = 0;  // unix seconds
  std::string envelope;         // the Signed catalog
};

class HubCatalogs {
 public:
  explicit HubCatalogs(Database& db) : db_(db) {}

  // Errc::rollback unless `serial` is above the stored one: agents refuse a catalog whose
  // serial does not grow, so publishing it would only strand them.
  [[nodiscard]] Status put_catalog(std::string_view channel, std::uint64_t serial,
                                   std::int64_t expires_at, std::string_view envelope);
  [[nodiscard]] Expected<std::optional<HubCatalog>> catalog(std::string_view channel);

 private:
  Database& db_;
};

struct AgentRecord {
  std::string agent_id;
  std::string channel;
  std::string status;  // serialized AgentStatus
  std::int64_t updated_at = 0;
  // Stored even when the held status is newer: a last will ("offline") carries the time the
  // agent connected, yet the broker sends it after everything that connection published.
  bool replaces_newer = false;
  // Read back only (upsert sets them): the hub's clock when it stored the status, and the
  // status a replaces_newer one (a last will) replaced, empty otherwise.
  std::int64_t seen_at = 0;
  std::string prior_status = {};
};

class FleetStatus {
 public:
  explicit FleetStatus(Database& db) : db_(db) {}

  // Keeps the newest status per agent; returns false (and stores nothing) when the held one
  // is newer, as happens when a retained status and a live one arrive out of order. The
  // agent's updated_at only orders its reports, and counts as no later than the hub's clock
  // (one report dated 2100 must not shut out the agent's honest ones); seen_at is that clock.
  // `now` is the hub's clock in unix seconds (0: the system's).
  [[nodiscard]] Expected<bool> upsert(const AgentRecord& record, std::int64_t now = 0);
  // Ordered by agent id.
  [[nodiscard]] Expected<std::vector<AgentRecord>> list();

 private:
  Database& db_;
};

}  // namespace sovdev::store
