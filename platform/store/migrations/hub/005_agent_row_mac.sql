-- Hub database, version 5: a MAC over each enrolled agent and each channel epoch, keyed from
-- the secret-store key (hub/secrets/row_mac.hpp). `serve` may write hub.db but does not hold
-- the store key: a row it changed or added no longer matches its MAC, and the offline commands
-- refuse to seal an epoch key to it. Rows made before this version have no MAC (NULL): they are
-- listed as unverified and nothing is sealed to them until the agent is enrolled again.
ALTER TABLE enrolled_agents ADD COLUMN row_mac BLOB CHECK (row_mac IS NULL OR length(row_mac) = 32);
ALTER TABLE channel_epochs ADD COLUMN row_mac BLOB CHECK (row_mac IS NULL OR length(row_mac) = 32);
