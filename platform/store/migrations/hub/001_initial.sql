-- Hub store, version 1.
-- Migrations run inside a transaction with their user_version bump: no BEGIN/COMMIT here, and
-- no PRAGMA foreign_keys (a no-op inside a transaction). Never edit a released migration: add
-- the next number, and update schema/hub.sql to the result.
-- Digests are raw 32-byte SHA-256 BLOBs; envelopes are serialized protobuf Signed messages.

-- Published bundles, content-addressed by the digest of the manifest body.
CREATE TABLE bundles (
  digest BLOB PRIMARY KEY CHECK (typeof(digest) = 'blob' AND length(digest) = 32),
  channel TEXT NOT NULL,
  stack TEXT NOT NULL,
  version INTEGER NOT NULL CHECK (version >= 0),
  envelope BLOB NOT NULL,
  chunk_count INTEGER NOT NULL CHECK (chunk_count >= 0),
  payload_size INTEGER NOT NULL CHECK (payload_size >= 0),
  uncompressed_size INTEGER NOT NULL CHECK (uncompressed_size >= 0),
  created_at INTEGER NOT NULL,
  UNIQUE (channel, stack, version)
);

-- Payload chunks; see the agent schema for why this is a rowid table.
CREATE TABLE chunks (
  id INTEGER PRIMARY KEY,
  digest BLOB NOT NULL REFERENCES bundles (digest) ON DELETE CASCADE,
  idx INTEGER NOT NULL CHECK (idx >= 0),
  data BLOB NOT NULL,
  UNIQUE (digest, idx)
);

-- The signed catalog published (retained) per channel; its serial only grows.
CREATE TABLE catalogs (
  channel TEXT PRIMARY KEY,
  serial INTEGER NOT NULL CHECK (serial >= 0),
  expires_at INTEGER NOT NULL,
  envelope BLOB NOT NULL
);

-- The latest status each agent reported (serialized AgentStatus).
CREATE TABLE agents (
  agent_id TEXT PRIMARY KEY,
  channel TEXT NOT NULL,
  status BLOB NOT NULL,
  updated_at INTEGER NOT NULL
);
