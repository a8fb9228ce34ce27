-- Agent cache, version 1.
-- Migrations run inside a transaction with their user_version bump: no BEGIN/COMMIT here, and
-- no PRAGMA foreign_keys (a no-op inside a transaction). Never edit a released migration: add
-- the next number, and update schema/agent.sql to the result.
-- Digests are raw 32-byte SHA-256 BLOBs; envelopes are serialized protobuf Signed messages.
-- Versions and serials are uint64 in the formats; the store refuses values above INT64_MAX.

-- Trust roots in the order they were accepted; the highest version is the pinned one.
CREATE TABLE trust_roots (
  version INTEGER PRIMARY KEY CHECK (version >= 1),
  envelope BLOB NOT NULL,
  added_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);

-- One row per bundle manifest the agent has started to fetch. Same stack and version with
-- another digest is the "same version, other content" attack the agent refuses.
CREATE TABLE bundles (
  digest BLOB PRIMARY KEY CHECK (typeof(digest) = 'blob' AND length(digest) = 32),
  stack TEXT NOT NULL,
  channel TEXT NOT NULL,
  version INTEGER NOT NULL CHECK (version >= 0),
  envelope BLOB NOT NULL,
  chunk_count INTEGER NOT NULL CHECK (chunk_count >= 0),
  payload_size INTEGER NOT NULL CHECK (payload_size >= 0),
  state TEXT NOT NULL CHECK (state IN ('partial', 'complete', 'verified')),
  UNIQUE (stack, version)
);

-- Payload chunks (64 KiB each). A rowid table, not WITHOUT ROWID: large rows belong in a
-- rowid table, and the rowid lets readers stream a blob by incremental I/O. The UNIQUE index
-- covers (digest, idx), so listing the chunks held never reads their data.
CREATE TABLE chunks (
  id INTEGER PRIMARY KEY,
  digest BLOB NOT NULL REFERENCES bundles (digest) ON DELETE CASCADE,
  idx INTEGER NOT NULL CHECK (idx >= 0),
  data BLOB NOT NULL,
  UNIQUE (digest, idx)
);

-- What was applied, newest last; pruned to a bounded length per stack by the program.
CREATE TABLE apply_log (
  id INTEGER PRIMARY KEY,
  stack TEXT NOT NULL,
  version INTEGER NOT NULL,
  digest BLOB NOT NULL,
  result TEXT NOT NULL,
  message TEXT NOT NULL,
  at INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);
CREATE INDEX apply_log_by_stack ON apply_log (stack, id);

-- The bundle to fall back to. The foreign key (no cascade) keeps that bundle from being
-- removed from the cache while it is the fallback.
CREATE TABLE last_good (
  stack TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  digest BLOB NOT NULL REFERENCES bundles (digest),
  set_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);

-- The newest signed catalog seen per channel, so a restart offline still knows what is current.
CREATE TABLE catalogs (
  channel TEXT PRIMARY KEY,
  serial INTEGER NOT NULL CHECK (serial >= 0),
  envelope BLOB NOT NULL,
  received_at INTEGER NOT NULL
);
