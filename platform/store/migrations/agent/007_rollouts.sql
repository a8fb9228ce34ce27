-- Agent cache, version 7: staged rollouts (docs/design-rollouts.md).
--
-- rollout_marks: written before the first apply of a rollout's version, naming the version
-- the agent held as last good at that moment (its pre-rollout last good). An aborted rollout
-- with `revert` sends the agent back there, once: the mark is closed ('reverted'), or
-- 'superseded' when another version of the stack is applied. While a mark is open its prior
-- bundle cannot be deleted from the cache (the trigger below), whichever code path tries.
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

-- revocations: each channel's newest targets-signed RevocationList, as received. Only a higher
-- serial replaces it, so a replayed older catalog cannot un-revoke a version.
CREATE TABLE revocations (
  channel TEXT PRIMARY KEY,
  serial INTEGER NOT NULL CHECK (serial >= 0),
  envelope BLOB NOT NULL,
  received_at INTEGER NOT NULL
) WITHOUT ROWID;
