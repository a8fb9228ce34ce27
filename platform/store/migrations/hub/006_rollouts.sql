-- Hub database, version 6: staged rollouts, holds, maintenance windows and revocation lists
-- (docs/design-rollouts.md). The CLI writes these rows and holds no online key; `serve` signs
-- the catalogs they shape. catalog_changes counts every change that alters a channel's
-- catalog (kept by the triggers below, so no writer can forget it): serve polls it each tick
-- and re-signs the channels whose count moved.

-- One row per rollout. AUTOINCREMENT: an id is never reused, since it seeds each agent's hash
-- share and names the agents' rollout marks.
CREATE TABLE rollouts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  channel TEXT NOT NULL,
  stack TEXT NOT NULL,
  version INTEGER NOT NULL CHECK (version > 0),
  digest BLOB NOT NULL CHECK (length(digest) = 32),
  base_version INTEGER NOT NULL CHECK (base_version >= 0 AND base_version < version),
  base_digest BLOB NOT NULL CHECK (length(base_digest) = 32),
  success_permille INTEGER NOT NULL CHECK (success_permille BETWEEN 1 AND 1000),
  within_seconds INTEGER NOT NULL CHECK (within_seconds > 0),
  abort_count INTEGER NOT NULL DEFAULT 0 CHECK (abort_count >= 0),
  abort_permille INTEGER NOT NULL DEFAULT 0 CHECK (abort_permille BETWEEN 0 AND 1000),
  pause_between INTEGER NOT NULL DEFAULT 0 CHECK (pause_between >= 0),
  rollback_on_abort INTEGER NOT NULL DEFAULT 0,
  ignore_windows INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL CHECK (state IN ('running', 'paused', 'aborted', 'completed')),
  current_wave INTEGER NOT NULL DEFAULT 0 CHECK (current_wave >= 0),
  wave_opened_at INTEGER NOT NULL,
  gate_met_at INTEGER,
  paused_at INTEGER,
  reason TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  CHECK ((abort_count > 0) <> (abort_permille > 0))
);
-- One rollout per channel and stack at a time: a second `start` is refused by the database
-- too, whichever process races.
CREATE UNIQUE INDEX rollouts_one_active ON rollouts (channel, stack)
  WHERE state IN ('running', 'paused');

CREATE TABLE rollout_waves (
  rollout_id INTEGER NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
  idx INTEGER NOT NULL CHECK (idx >= 0),
  name TEXT NOT NULL,
  selector TEXT NOT NULL,
  percent INTEGER NOT NULL CHECK (percent BETWEEN 1 AND 100),
  PRIMARY KEY (rollout_id, idx)
) WITHOUT ROWID;

-- A held stack: its catalog entry lists this version whatever newer ones are published.
CREATE TABLE stack_holds (
  channel TEXT NOT NULL,
  stack TEXT NOT NULL,
  version INTEGER NOT NULL CHECK (version >= 0),
  held_at INTEGER NOT NULL,
  PRIMARY KEY (channel, stack)
) WITHOUT ROWID;

-- The hub's maintenance windows; channel '' is every channel. Their text is checked for shape
-- here and in full by platform/windows.
CREATE TABLE hub_windows (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  channel TEXT NOT NULL,
  selector TEXT NOT NULL,
  deny INTEGER NOT NULL DEFAULT 0,
  schedule TEXT NOT NULL,
  duration TEXT NOT NULL,
  zone TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

-- Targets-signed revocation lists; the newest serial of a channel is the one published.
CREATE TABLE revocation_lists (
  channel TEXT NOT NULL,
  serial INTEGER NOT NULL CHECK (serial > 0),
  issued_at INTEGER NOT NULL,
  envelope BLOB NOT NULL,
  PRIMARY KEY (channel, serial)
) WITHOUT ROWID;

CREATE TABLE catalog_changes (
  channel TEXT PRIMARY KEY,
  counter INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER rollouts_insert_change AFTER INSERT ON rollouts BEGIN
  INSERT INTO catalog_changes VALUES (NEW.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
-- What the catalog shows of a rollout: its state and the waves opened, not its timers.
CREATE TRIGGER rollouts_update_change AFTER UPDATE OF state, current_wave ON rollouts
  WHEN OLD.state IS NOT NEW.state OR OLD.current_wave IS NOT NEW.current_wave BEGIN
  INSERT INTO catalog_changes VALUES (NEW.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
CREATE TRIGGER rollouts_delete_change AFTER DELETE ON rollouts BEGIN
  INSERT INTO catalog_changes VALUES (OLD.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
CREATE TRIGGER holds_insert_change AFTER INSERT ON stack_holds BEGIN
  INSERT INTO catalog_changes VALUES (NEW.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
CREATE TRIGGER holds_update_change AFTER UPDATE ON stack_holds
  WHEN OLD.version IS NOT NEW.version BEGIN
  INSERT INTO catalog_changes VALUES (NEW.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
CREATE TRIGGER holds_delete_change AFTER DELETE ON stack_holds BEGIN
  INSERT INTO catalog_changes VALUES (OLD.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
CREATE TRIGGER windows_insert_change AFTER INSERT ON hub_windows BEGIN
  INSERT INTO catalog_changes VALUES (NEW.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
CREATE TRIGGER windows_delete_change AFTER DELETE ON hub_windows BEGIN
  INSERT INTO catalog_changes VALUES (OLD.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
CREATE TRIGGER revocations_insert_change AFTER INSERT ON revocation_lists BEGIN
  INSERT INTO catalog_changes VALUES (NEW.channel, 1)
    ON CONFLICT (channel) DO UPDATE SET counter = counter + 1;
END;
