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

-- One row per rollout. AUTOINCREMENT: an id is never reused, since it seeds each agent's hash
-- share and names the agents' rollout marks.
CREATE TABLE rollouts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  channel TEXT NOT NULL,
  stack TEXT NOT NULL,
  version INTEGER NOT NULL CHECK (version > 0),
  digest BLOB NOT NULL CHECK (length(digest) = 32),
  base_version INTEGER NOT NULL CHECK (base_version >= 0 AND base_version < version),
  base_digest BLOB NOT NULL CHECK (length(base_digest) = 32),
  success_permille INTEGER NOT NULL CHECK (success_permille BETWEEN 1 AND 1000),
  within_seconds INTEGER NOT NULL CHECK (within_seconds > 0),
  abort_count INTEGER NOT NULL DEFAULT 0 CHECK (abort_count >= 0),
  abort_permille INTEGER NOT NULL DEFAULT 0 CHECK (abort_permille BETWEEN 0 AND 1000),
  pause_between INTEGER NOT NULL DEFAULT 0 CHECK (pause_between >= 0),
  rollback_on_abort INTEGER NOT NULL DEFAULT 0,
  ignore_windows INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL CHECK (state IN ('running', 'paused', 'aborted', 'completed')),
  current_wave INTEGER NOT NULL DEFAULT 0 CHECK (current_wave >= 0),
  wave_opened_at INTEGER NOT NULL,
  gate_met_at INTEGER,
  paused_at INTEGER,
  reason TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  CHECK ((abort_count > 0) <> (abort_permille > 0))
);
-- One rollout per channel and stack at a time: a second `start` is refused by the database
-- too, whichever process races.
CREATE UNIQUE INDEX rollouts_one_active ON rollouts (channel, stack)
  WHERE state IN ('running', 'paused');

CREATE TABLE rollout_waves (
  rollout_id INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
  idx INTEGER NOT NULL CHECK (idx >= 0),
  name TEXT NOT NULL,
  selector TEXT NOT NULL,
  percent INTEGER NOT NULL CHECK (percent BETWEEN 1 AND 100),
  PRIMARY KEY (rollout_id, idx)
) WITHOUT ROWID;

-- A held stack: its catalog entry lists this version whatever newer ones are published.
CREATE TABLE stack_holds (
  channel TEXT NOT NULL,
  stack TEXT NOT NULL,
  version INTEGER NOT NULL CHECK (version >= 0),
  held_at INTEGER NOT NULL,
  PRIMARY KEY (channel, stack)
) WITHOUT ROWID;

-- The hub's maintenance windows; channel '' is every channel. Their text is checked for shape
-- here and in full by platform/windows.
CREATE TABLE hub_windows (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  channel TEXT NOT NULL,
  selector TEXT NOT NULL,
  deny INTEGER NOT NULL DEFAULT 0,
  schedule TEXT NOT NULL,
  duration TEXT NOT NULL,
  zone TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

-- Targets-signed revocation lists; the newest serial of a channel is the one published.
CREATE TABLE revocation_lists (
  channel TEXT NOT NULL,
  serial INTEGER NOT NULL CHECK (serial > 0),
  issued_at INTEGER NOT NULL,
  envelope BLOB NOT NULL,
  PRIMARY KEY (channel, serial)
) WITHOUT ROWID;

CREATE TABLE catalog_changes (
  channel TEXT PRIMARY KEY,
  counter INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER rollouts_insert_change AFTER INSERT ON rollouts BEGIN
  INSERT INTO catalog_changes VALUES (NEW.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
-- What the catalog shows of a rollout: its state and the waves opened, not its timers.
CREATE TRIGGER rollouts_update_change AFTER UPDATE OF state, current_wave ON rollouts
  WHEN OLD.state IS NOT NEW.state OR OLD.current_wave IS NOT NEW.current_wave BEGIN
  INSERT INTO catalog_changes VALUES (NEW.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
CREATE TRIGGER rollouts_delete_change AFTER DELETE ON rollouts BEGIN
  INSERT INTO catalog_changes VALUES (OLD.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
CREATE TRIGGER holds_insert_change AFTER INSERT ON stack_holds BEGIN
  INSERT INTO catalog_changes VALUES (NEW.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
CREATE TRIGGER holds_update_change AFTER UPDATE ON stack_holds
  WHEN OLD.version IS NOT NEW.version BEGIN
  INSERT INTO catalog_changes VALUES (NEW.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
CREATE TRIGGER holds_delete_change AFTER DELETE ON stack_holds BEGIN
  INSERT INTO catalog_changes VALUES (OLD.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
CREATE TRIGGER windows_insert_change AFTER INSERT ON hub_windows BEGIN
  INSERT INTO catalog_changes VALUES (NEW.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
CREATE TRIGGER windows_delete_change AFTER DELETE ON hub_windows BEGIN
  INSERT INTO catalog_changes VALUES (OLD.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
CREATE TRIGGER revocations_insert_change AFTER INSERT ON revocation_lists BEGIN
  INSERT INTO catalog_changes VALUES (NEW.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;

CREATE TABLE image_blobs (
  digest BLOB PRIMARY KEY CHECK (typeof(digest) = 'blob' AND length(digest) = 32),
  media_type TEXT NOT NULL,
  size INTEGER NOT NULL CHECK (size >= 0),
  wire_digest BLOB NOT NULL UNIQUE CHECK (typeof(wire_digest) = 'blob' AND length(wire_digest) = 32),
  wire_size INTEGER NOT NULL CHECK (wire_size >= 0),
  chunk_count INTEGER NOT NULL CHECK (chunk_count >= 0),
  blob_manifest BLOB NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE image_chunks (
  id INTEGER PRIMARY KEY,
  digest BLOB NOT NULL REFERENCES image_blobs (digest) ON DELETE CASCADE
    DEFERRABLE INITIALLY DEFERRED,
  idx INTEGER NOT NULL CHECK (idx >= 0),
  data BLOB NOT NULL,
  UNIQUE (digest, idx)
);

CREATE TABLE bundle_image_blobs (
  bundle_digest BLOB NOT NULL REFERENCES bundles (digest) ON DELETE CASCADE,
  blob_digest BLOB NOT NULL REFERENCES image_blobs (digest),
  PRIMARY KEY (bundle_digest, blob_digest)
) WITHOUT ROWID;
CREATE INDEX bundle_image_blobs_by_blob ON bundle_image_blobs (blob_digest);

PRAGMA user_version = 7;
