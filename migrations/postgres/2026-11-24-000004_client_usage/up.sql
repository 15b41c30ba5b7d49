-- Tokens issued to each OAuth client per day (UTC), counted in memory and added here in batches.
CREATE TABLE client_usage (
    client_id    TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    day          BIGINT NOT NULL,
    allowed      BIGINT NOT NULL DEFAULT 0,
    denied       BIGINT NOT NULL DEFAULT 0,
    rate_limited BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (client_id, day)
);
CREATE INDEX client_usage_day ON client_usage (day);
