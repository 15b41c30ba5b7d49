-- Flashes (issue 13): what a form created (a client secret, an API key) for the one page that
-- follows its POST → 303 → GET. Bound to the session (gone with it), sealed under the master key
-- (AES-256-GCM, bound to session and target), deleted when read and refused after expires_at.
CREATE TABLE flashes (
    id           TEXT PRIMARY KEY NOT NULL,
    session_hash TEXT NOT NULL REFERENCES sessions (id_hash) ON DELETE CASCADE,
    target       TEXT NOT NULL,
    sealed       BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX flashes_session_target ON flashes (session_hash, target);
CREATE INDEX flashes_expires_at ON flashes (expires_at);
