-- Hub database, version 2: what the hub itself knows of each agent's report.
-- seen_at is the hub's own clock when it stored the status: the "last seen" people read, which
-- an agent cannot set (its status' updated_at only orders its own reports). prior_status keeps
-- the status an agent's last will replaced, so an offline agent still names the bundle it ran.
ALTER TABLE agents ADD COLUMN seen_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN prior_status BLOB;
-- Rows from before: the best the hub has is the agent's own time, never later than now.
UPDATE agents SET seen_at = MIN(updated_at, CAST(strftime('%s', 'now') AS INTEGER));
