-- Requests per API key per day (UTC), counted in memory and added here in batches.
CREATE TABLE api_key_usage (
    key_id       TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    day          BIGINT NOT NULL,
    allowed      BIGINT NOT NULL DEFAULT 0,
    denied       BIGINT NOT NULL DEFAULT 0,
    rate_limited BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, day)
);
CREATE INDEX api_key_usage_day ON api_key_usage (day);
-- Keys are found by their HMAC on every verification (the UNIQUE constraint is that index).
