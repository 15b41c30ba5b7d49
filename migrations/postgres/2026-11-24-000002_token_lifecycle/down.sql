DROP INDEX refresh_tokens_expires_at;
DROP INDEX signing_keys_successor_of;
ALTER TABLE signing_keys DROP COLUMN successor_of;
