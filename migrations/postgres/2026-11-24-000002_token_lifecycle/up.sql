-- Signing-key rotation: each key names the key it succeeds. The unique index lets exactly one node
-- (or CLI run) create the successor of a key, however many try at once.
ALTER TABLE signing_keys ADD COLUMN successor_of TEXT;
CREATE UNIQUE INDEX signing_keys_successor_of ON signing_keys (successor_of);
-- The janitor deletes expired refresh tokens (used ones of live families) by expiry.
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
