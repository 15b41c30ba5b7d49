-- Which key material this database was created with (issue 13): HMAC-SHA256 fingerprints of the pepper and
-- of the master key, never the keys. A node or CLI command with other keys is refused instead of writing
-- secrets no other node can check. One row (id = 1).
CREATE TABLE key_fingerprint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pepper TEXT NOT NULL,
    master_key TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
