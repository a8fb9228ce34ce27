-- Agent cache, version 6: the channel epoch keys this agent was sent, kept exactly as received:
-- sealed (crypto_box_seal) to its X25519 key, so this table opens nothing without agent.key
-- beside it (docs/design-secrets.md). A site offline for weeks still opens every cached
-- version it holds a key for.
CREATE TABLE epoch_keys (
  channel TEXT NOT NULL,
  epoch INTEGER NOT NULL CHECK (epoch > 0),
  sealed BLOB NOT NULL CHECK (typeof(sealed) = 'blob' AND length(sealed) = 80),
  received_at INTEGER NOT NULL,
  PRIMARY KEY (channel, epoch)
) WITHOUT ROWID;
