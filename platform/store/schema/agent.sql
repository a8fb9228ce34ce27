-- Expected agent schema after every migration in migrations/agent/ (checked by tests/store).
-- Update it with each new migration: it is the schema at a glance, and the test proves
-- that the migrations, applied in order from an empty file, produce exactly this.

CREATE TABLE trust_roots (
  version INTEGER PRIMARY KEY CHECK (version >= 1),
  envelope BLOB NOT NULL,
  added_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);

CREATE TABLE bundles (
  digest BLOB PRIMARY KEY CHECK (typeof(digest) = 'blob' AND length(digest) = 32),
  stack TEXT NOT NULL,
  channel TEXT NOT NULL,
  version INTEGER NOT NULL CHECK (version >= 0),
  envelope BLOB NOT NULL,
  chunk_count INTEGER NOT NULL CHECK (chunk_count >= 0),
  payload_size INTEGER NOT NULL CHECK (payload_size >= 0),
  state TEXT NOT NULL CHECK (state IN ('partial', 'complete', 'verified')),
  payload_origin TEXT NOT NULL DEFAULT 'signed' CHECK (payload_origin IN ('signed', 'rebuilt')),
  chunk_size INTEGER NOT NULL DEFAULT 0 CHECK (chunk_size >= 0),
  UNIQUE (stack, version)
);

CREATE TABLE chunks (
  id INTEGER PRIMARY KEY,
  digest BLOB NOT NULL REFERENCES bundles (digest) ON DELETE CASCADE,
  idx INTEGER NOT NULL CHECK (idx >= 0),
  data BLOB NOT NULL,
  UNIQUE (digest, idx)
);

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

CREATE TABLE last_good (
  stack TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  digest BLOB NOT NULL REFERENCES bundles (digest),
  set_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);

CREATE TABLE catalogs (
  channel TEXT PRIMARY KEY,
  serial INTEGER NOT NULL CHECK (serial >= 0),
  envelope BLOB NOT NULL,
  received_at INTEGER NOT NULL
);

CREATE TABLE kube_inventory (
  stack TEXT NOT NULL,
  api_group TEXT NOT NULL,
  kind TEXT NOT NULL,
  namespace TEXT NOT NULL,
  name TEXT NOT NULL,
  api_version TEXT NOT NULL,
  applied_digest BLOB NOT NULL CHECK (typeof(applied_digest) = 'blob' AND length(applied_digest) = 32),
  resource_version TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (stack, api_group, kind, namespace, name)
) WITHOUT ROWID;

CREATE TABLE failed_bundles (
  digest BLOB PRIMARY KEY CHECK (typeof(digest) = 'blob' AND length(digest) = 32),
  stack TEXT NOT NULL,
  version INTEGER NOT NULL CHECK (version >= 0),
  reason TEXT NOT NULL,
  failed_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE epoch_keys (
  channel TEXT NOT NULL,
  epoch INTEGER NOT NULL CHECK (epoch > 0),
  sealed BLOB NOT NULL CHECK (typeof(sealed) = 'blob' AND length(sealed) = 80),
  received_at INTEGER NOT NULL,
  PRIMARY KEY (channel, epoch)
) WITHOUT ROWID;

CREATE TABLE rollout_marks (
  stack TEXT NOT NULL,
  rollout_id INTEGER NOT NULL CHECK (rollout_id > 0),
  channel TEXT NOT NULL,
  version INTEGER NOT NULL CHECK (version >= 0),
  digest BLOB NOT NULL CHECK (typeof(digest) = 'blob' AND length(digest) = 32),
  prior_version INTEGER CHECK (prior_version IS NULL OR prior_version >= 0),
  prior_digest BLOB CHECK (prior_digest IS NULL OR
                           (typeof(prior_digest) = 'blob' AND length(prior_digest) = 32)),
  state TEXT NOT NULL CHECK (state IN ('open', 'reverted', 'superseded')),
  marked_at INTEGER NOT NULL,
  closed_at INTEGER,
  PRIMARY KEY (stack, rollout_id)
) WITHOUT ROWID;

CREATE TRIGGER rollout_marks_keep_prior BEFORE DELETE ON bundles
WHEN EXISTS (SELECT 1 FROM rollout_marks WHERE state = 'open' AND prior_digest = OLD.digest)
BEGIN
  SELECT RAISE(ABORT, 'kept: the pre-rollout last good version of an open rollout mark');
END;

CREATE TABLE revocations (
  channel TEXT PRIMARY KEY,
  serial INTEGER NOT NULL CHECK (serial >= 0),
  envelope BLOB NOT NULL,
  received_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE image_blobs (
  digest BLOB PRIMARY KEY CHECK (typeof(digest) = 'blob' AND length(digest) = 32),
  wire_digest BLOB NOT NULL UNIQUE
    CHECK (typeof(wire_digest) = 'blob' AND length(wire_digest) = 32),
  media_type TEXT NOT NULL,
  size INTEGER NOT NULL CHECK (size >= 0),
  wire_size INTEGER NOT NULL CHECK (wire_size >= 0),
  blob_manifest BLOB,
  chunk_size INTEGER NOT NULL DEFAULT 0 CHECK (chunk_size >= 0),
  chunk_count INTEGER NOT NULL DEFAULT 0 CHECK (chunk_count >= 0),
  state TEXT NOT NULL CHECK (state IN ('partial', 'verified')),
  used_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE image_chunks (
  digest BLOB NOT NULL,
  idx INTEGER NOT NULL CHECK (idx >= 0),
  PRIMARY KEY (digest, idx)
) WITHOUT ROWID;

CREATE TABLE bundle_image_blobs (
  bundle BLOB NOT NULL CHECK (typeof(bundle) = 'blob' AND length(bundle) = 32),
  digest BLOB NOT NULL CHECK (typeof(digest) = 'blob' AND length(digest) = 32),
  PRIMARY KEY (bundle, digest)
) WITHOUT ROWID;
CREATE INDEX bundle_image_blobs_by_blob ON bundle_image_blobs (digest);

PRAGMA user_version = 8;
