-- Hub database, version 4: the agents enrolled for secrets and the channels' epoch keys
-- (docs/design-secrets.md). An epoch key is kept sealed under the secret-store key
-- (sealed_key) and, for each agent of the channel at that epoch, sealed to the agent's X25519
-- key (epoch_grants.sealed): what `serve` hands out without being able to open it. Removing or
-- rotating an agent starts the channel's next epoch, granted to the agents that remain.
CREATE TABLE enrolled_agents (
  agent_id TEXT PRIMARY KEY,
  channel TEXT NOT NULL,
  public_key BLOB NOT NULL CHECK (length(public_key) = 32),
  labels TEXT NOT NULL DEFAULT '{}',
  added_at INTEGER NOT NULL,
  rotated_at INTEGER
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
