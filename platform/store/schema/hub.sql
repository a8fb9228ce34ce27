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

-- Secret values (003) and the agents enrolled for secrets with their epochs (004), each agent
-- and epoch row with a MAC keyed from the secret-store key (005).
CREATE TABLE secret_values (
  environment TEXT NOT NULL,
  name TEXT NOT NULL,
  key TEXT NOT NULL,
  sealed BLOB NOT NULL,
  store_key_id BLOB NOT NULL CHECK (length(store_key_id) = 32),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (environment, name, key)
) WITHOUT ROWID;

CREATE TABLE enrolled_agents (
  agent_id TEXT PRIMARY KEY,
  channel TEXT NOT NULL,
  public_key BLOB NOT NULL CHECK (length(public_key) = 32),
  labels TEXT NOT NULL DEFAULT '{}',
  added_at INTEGER NOT NULL,
  rotated_at INTEGER,
  row_mac BLOB CHECK (row_mac IS NULL OR length(row_mac) = 32)
) WITHOUT ROWID;
CREATE INDEX enrolled_agents_by_channel ON enrolled_agents (channel);

CREATE TABLE channel_epochs (
  channel TEXT NOT NULL,
  epoch INTEGER NOT NULL CHECK (epoch >= 1),
  key_id BLOB NOT NULL CHECK (length(key_id) = 32),
  sealed_key BLOB NOT NULL,
  store_key_id BLOB NOT NULL CHECK (length(store_key_id) = 32),
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  row_mac BLOB CHECK (row_mac IS NULL OR length(row_mac) = 32),
  PRIMARY KEY (channel, epoch)
) WITHOUT ROWID;

CREATE TABLE epoch_grants (
  channel TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  agent_id TEXT NOT NULL,
  sealed BLOB NOT NULL CHECK (length(sealed) = 80),
  PRIMARY KEY (channel, epoch, agent_id),
  FOREIGN KEY (channel, epoch) REFERENCES channel_epochs (channel, epoch) ON DELETE CASCADE
) WITHOUT ROWID;

PRAGMA user_version = 5;
