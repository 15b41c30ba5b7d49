-- Tessera's first schema. Times are unix seconds (BIGINT) so both backends share one Diesel schema.
-- No column holds a secret in plaintext: secrets are HMAC-SHA256 hashes (hex) under the server
-- pepper, Argon2id PHC strings (passwords), or AEAD ciphertext under the master key.

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_at   BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ip           TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE resource_servers (
    id         TEXT PRIMARY KEY NOT NULL,
    audience   TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE scopes (
    id                 TEXT PRIMARY KEY NOT NULL,
    resource_server_id TEXT NOT NULL REFERENCES resource_servers (id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    description        TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    UNIQUE (resource_server_id, name)
);

CREATE TABLE oauth_clients (
    id                         TEXT PRIMARY KEY NOT NULL,
    name                       TEXT NOT NULL,
    owner_user_id              TEXT REFERENCES users (id) ON DELETE SET NULL,
    is_public                  BOOLEAN NOT NULL DEFAULT FALSE,
    secret_hash                TEXT,
    secret_pepper_version      INTEGER,
    secret_encrypted           BLOB,
    token_endpoint_auth_method TEXT NOT NULL,
    grant_types                TEXT NOT NULL,
    allowed_scopes             TEXT NOT NULL,
    jwks_uri                   TEXT,
    jwks                       TEXT,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL,
    disabled_at                BIGINT
);
CREATE INDEX oauth_clients_owner ON oauth_clients (owner_user_id);

CREATE TABLE oauth_redirect_uris (
    client_id  TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    uri        TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, uri)
);

CREATE TABLE authorization_codes (
    code_hash             TEXT PRIMARY KEY NOT NULL,
    client_id             TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri          TEXT NOT NULL,
    scope                 TEXT NOT NULL,
    audience              TEXT NOT NULL,
    code_challenge        TEXT NOT NULL,
    code_challenge_method TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    consumed_at           BIGINT,
    refresh_family_id     TEXT,
    access_token_jti      TEXT,
    access_token_exp      BIGINT
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

CREATE TABLE refresh_token_families (
    id             TEXT PRIMARY KEY NOT NULL,
    client_id      TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    user_id        TEXT REFERENCES users (id) ON DELETE CASCADE,
    scope          TEXT NOT NULL,
    audience       TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX refresh_token_families_expires_at ON refresh_token_families (expires_at);
CREATE INDEX refresh_token_families_client ON refresh_token_families (client_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    family_id  TEXT NOT NULL REFERENCES refresh_token_families (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    access_token_jti TEXT,
    access_token_exp BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    family_id  TEXT,
    revoked_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);

CREATE TABLE used_assertion_jtis (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX used_assertion_jtis_expires_at ON used_assertion_jtis (expires_at);

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    audience   TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id, audience)
);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY NOT NULL,
    key_hash        TEXT NOT NULL UNIQUE,
    pepper_version  INTEGER NOT NULL,
    display_prefix  TEXT NOT NULL,
    last_four       TEXT NOT NULL,
    name            TEXT NOT NULL,
    key_type        TEXT NOT NULL,
    environment     TEXT NOT NULL,
    scopes          TEXT NOT NULL,
    owner_user_id   TEXT REFERENCES users (id) ON DELETE CASCADE,
    owner_client_id TEXT REFERENCES oauth_clients (id) ON DELETE CASCADE,
    rate_limit      INTEGER,
    metadata        TEXT NOT NULL DEFAULT '{}',
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    last_used_at    BIGINT,
    revoked_at      BIGINT,
    replaced_by     TEXT
);
CREATE INDEX api_keys_owner_user ON api_keys (owner_user_id);
CREATE INDEX api_keys_owner_client ON api_keys (owner_client_id);

CREATE TABLE signing_keys (
    kid                   TEXT PRIMARY KEY NOT NULL,
    algorithm             TEXT NOT NULL,
    public_jwk            TEXT NOT NULL,
    private_key_encrypted BLOB NOT NULL,
    created_at            BIGINT NOT NULL,
    publish_at            BIGINT NOT NULL,
    sign_from             BIGINT NOT NULL,
    sign_until            BIGINT,
    retire_at             BIGINT
);

CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY NOT NULL,
    occurred_at BIGINT NOT NULL,
    actor_type  TEXT NOT NULL,
    actor_id    TEXT,
    action      TEXT NOT NULL,
    target_type TEXT,
    target_id   TEXT,
    ip          TEXT,
    user_agent  TEXT,
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
CREATE INDEX audit_events_actor ON audit_events (actor_id);
CREATE INDEX audit_events_action ON audit_events (action);
