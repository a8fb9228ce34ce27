-- Hub database, version 3: secret values (docs/design-secrets.md). Each value is sealed with
-- XChaCha20-Poly1305 under the secret-store key, a file the offline commands load and `serve`
-- never does; its associated data names (environment, name, key), so a row moved to another
-- place does not open. store_key_id says which store key sealed it: another key file is
-- refused with that message, not with a failed decryption. Values never appear in plaintext
-- here, in the WAL or in any listing.
CREATE TABLE secret_values (
  environment TEXT NOT NULL,
  name TEXT NOT NULL,
  key TEXT NOT NULL,
  sealed BLOB NOT NULL,
  store_key_id BLOB NOT NULL CHECK (length(store_key_id) = 32),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (environment, name, key)
) WITHOUT ROWID;
