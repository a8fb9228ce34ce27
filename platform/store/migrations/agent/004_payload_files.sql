-- Agent cache, version 4: payloads in files beside the database.
-- A bundle with chunk_size > 0 keeps its payload in payloads/<digest in hex> next to the
-- database file, chunk i at byte i * chunk_size; its rows in `chunks` only record which chunks
-- are held (data is empty). Writing a chunk once to a file costs a third of what SQLite's WAL
-- and checkpoint cost (the full pull's figure). chunk_size 0 keeps the chunks in the table:
-- bundles cached before this version, and databases without a folder (in memory).
ALTER TABLE bundles ADD COLUMN chunk_size INTEGER NOT NULL DEFAULT 0 CHECK (chunk_size >= 0);
