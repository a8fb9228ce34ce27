-- Hub database, version 7: container image blobs (docs/design-images.md), each stored once per
-- digest however many bundles name it, in the wire form the agents fetch: a zstd stream cut
-- into chunks, described by its BlobManifest (whose SHA-256, wire_digest, the signed bundle
-- manifest names).

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

-- The wire form's chunks, keyed by the blob's digest. A blob is written in one transaction,
-- its chunks as the encoder hands them out and its row (which needs the finished
-- BlobManifest) last: hence the deferred key, checked at commit.
CREATE TABLE image_chunks (
  id INTEGER PRIMARY KEY,
  digest BLOB NOT NULL REFERENCES image_blobs (digest) ON DELETE CASCADE
    DEFERRABLE INITIALLY DEFERRED,
  idx INTEGER NOT NULL CHECK (idx >= 0),
  data BLOB NOT NULL,
  UNIQUE (digest, idx)
);

-- Which published bundle names which blob. No ON DELETE on the blob's side: a blob a bundle
-- names cannot be removed while that bundle is stored.
CREATE TABLE bundle_image_blobs (
  bundle_digest BLOB NOT NULL REFERENCES bundles (digest) ON DELETE CASCADE,
  blob_digest BLOB NOT NULL REFERENCES image_blobs (digest),
  PRIMARY KEY (bundle_digest, blob_digest)
) WITHOUT ROWID;
CREATE INDEX bundle_image_blobs_by_blob ON bundle_image_blobs (blob_digest);
