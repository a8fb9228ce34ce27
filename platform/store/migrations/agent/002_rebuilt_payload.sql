-- Agent cache, version 2: payloads the agent rebuilt itself from a delta.
-- The agent applies a delta to the base bundle's record stream, checks the result against the
-- signed manifest's uncompressed hash, and compresses it again at a level it can afford. Those
-- chunks cannot match the signed chunk hashes, so payload_origin tells every reader how to
-- check the payload: 'signed' through the chunk and payload hashes, 'rebuilt' through the
-- uncompressed hash. chunk_count and payload_size always describe the chunks held here (for a
-- rebuilt payload the agent's own compression); the signed figures stay in the envelope.
ALTER TABLE bundles ADD COLUMN payload_origin TEXT NOT NULL DEFAULT 'signed'
  CHECK (payload_origin IN ('signed', 'rebuilt'));
