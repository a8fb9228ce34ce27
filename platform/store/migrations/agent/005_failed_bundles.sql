-- Agent cache, version 5: bundles whose apply failed, and why. Kept across restarts so a
-- version that failed its health gate (and was rolled back from) is not tried again after a
-- crash, a watchdog kill or a reboot. A newer version of the stack, or `sovdev-agent retry`,
-- clears them.
CREATE TABLE failed_bundles (
  digest BLOB PRIMARY KEY CHECK (typeof(digest) = 'blob' AND length(digest) = 32),
  stack TEXT NOT NULL,
  version INTEGER NOT NULL CHECK (version >= 0),
  reason TEXT NOT NULL,
  failed_at INTEGER NOT NULL
) WITHOUT ROWID;
