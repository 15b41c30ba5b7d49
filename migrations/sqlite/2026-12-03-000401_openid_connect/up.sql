-- OpenID Connect (issue 15): the user's profile claims, a public session id (`sid`) per sign-in,
-- what an ID token needs from the authorization request (kept with the code, then with the refresh
-- family it starts), the clients' OpenID registration, and the nonces a client has used.
ALTER TABLE users ADD COLUMN name TEXT;
ALTER TABLE users ADD COLUMN given_name TEXT;
ALTER TABLE users ADD COLUMN family_name TEXT;
ALTER TABLE users ADD COLUMN preferred_username TEXT;
ALTER TABLE users ADD COLUMN locale TEXT;
ALTER TABLE users ADD COLUMN picture TEXT;
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;

-- The sign-in's public id, sent to clients as `sid` (never the cookie or its hash). Sessions made
-- before this migration get one derived from their row.
ALTER TABLE sessions ADD COLUMN sid TEXT NOT NULL DEFAULT '';
UPDATE sessions SET sid = 'sid_' || substr(id_hash, 1, 24) WHERE sid = '';
CREATE INDEX sessions_sid ON sessions (sid);

ALTER TABLE authorization_codes ADD COLUMN nonce TEXT;
ALTER TABLE authorization_codes ADD COLUMN auth_time BIGINT;
ALTER TABLE authorization_codes ADD COLUMN sid TEXT;
ALTER TABLE authorization_codes ADD COLUMN claims TEXT;

ALTER TABLE refresh_token_families ADD COLUMN auth_time BIGINT;
ALTER TABLE refresh_token_families ADD COLUMN sid TEXT;
ALTER TABLE refresh_token_families ADD COLUMN claims TEXT;

-- `public` or `pairwise` (with the host of the sector it is pairwise for).
ALTER TABLE oauth_clients ADD COLUMN subject_type TEXT NOT NULL DEFAULT 'public';
ALTER TABLE oauth_clients ADD COLUMN sector_identifier TEXT;
ALTER TABLE oauth_clients ADD COLUMN id_token_signed_response_alg TEXT;
-- Space-separated, each matched exactly.
ALTER TABLE oauth_clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_clients ADD COLUMN backchannel_logout_uri TEXT;

-- A nonce is accepted once per client (its HMAC is kept until expires_at).
CREATE TABLE used_nonces (
    client_id  TEXT NOT NULL,
    nonce_hash TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, nonce_hash)
);
CREATE INDEX used_nonces_expires_at ON used_nonces (expires_at);

-- The `claims` request (its `userinfo` member) of the grant an access token came from, for
-- UserInfo; written only for grants that made one, kept until the token expires.
CREATE TABLE access_token_claims (
    jti        TEXT PRIMARY KEY NOT NULL,
    claims     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX access_token_claims_expires_at ON access_token_claims (expires_at);

-- The clients a browser session signed in to (OpenID Connect): told when it ends (Back-Channel
-- Logout 1.0). Gone with the session.
CREATE TABLE session_clients (
    sid        TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (sid, client_id)
);
