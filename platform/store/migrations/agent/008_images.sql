-- Agent cache, version 8: container image blobs (docs/design-images.md).
--
-- image_blobs: one row per blob a cached bundle names for this agent's arch. Its bytes live in
-- images/ beside the database: images/partial/<wire digest hex> while it is fetched (chunk i at
-- i * chunk_size; image_chunks says which are held), images/blobs/<digest hex>.zst once the whole
-- blob decoded to its signed size and digest (state 'verified'). blob_manifest is the
-- BlobManifest received (checked against wire_digest), kept so a resumed fetch needs no answer
-- before it asks for chunks. used_at (unix seconds) orders garbage collection, oldest first.
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

-- The chunks of a partial blob held in its file: markers only, the bytes are in the file.
CREATE TABLE image_chunks (
  digest BLOB NOT NULL,
  idx INTEGER NOT NULL CHECK (idx >= 0),
  PRIMARY KEY (digest, idx)
) WITHOUT ROWID;

-- Which cached bundles need which blobs: what garbage collection keeps. No foreign keys: a
-- bundle removed from the cache simply stops keeping its blobs.
CREATE TABLE bundle_image_blobs (
  bundle BLOB NOT NULL CHECK (typeof(bundle) = 'blob' AND length(bundle) = 32),
  digest BLOB NOT NULL CHECK (typeof(digest) = 'blob' AND length(digest) = 32),
  PRIMARY KEY (bundle, digest)
) WITHOUT ROWID;
CREATE INDEX bundle_image_blobs_by_blob ON bundle_image_blobs (digest);
