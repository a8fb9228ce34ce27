-- Expected hub schema after every migration in migrations/hub/ (checked by tests/store).
-- Update it with each new migration: it is the schema at a glance, and the test proves
-- that the migrations, applied in order from an empty file, produce exactly this.

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

CREATE TABLE chunks (
  id INTEGER PRIMARY KEY,
  digest BLOB NOT NULL REFERENCES bundles (digest) ON DELETE CASCADE,
  idx INTEGER NOT NULL CHECK (idx >= 0),
  data BLOB NOT NULL,
  UNIQUE (digest, idx)
);

CREATE TABLE catalogs (
  channel TEXT PRIMARY KEY,
  serial INTEGER NOT NULL CHECK (serial >= 0),
  expires_at INTEGER NOT NULL,
  envelope BLOB NOT NULL
);

CREATE TABLE agents (
  agent_id TEXT PRIMARY KEY,
  channel TEXT NOT NULL,
  status BLOB NOT NULL,
  updated_at INTEGER NOT NULL,
  seen_at INTEGER NOT NULL DEFAULT 0,
  prior_status BLOB
);

PRAGMA user_version = 2;
