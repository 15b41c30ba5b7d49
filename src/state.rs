//! `AppState`: what every handler can reach, built once in `startup` and shared as `web::Data`.

use crate::config::Settings;
use crate::crypto::{Hasher, SecretBytes};
use crate::db::Pool;
use crate::jwt::Keyring;
use crate::metrics::Metrics;

#[derive(Debug)]
pub struct AppState {
    pub settings: Settings,
    pub pool: Pool,
    pub metrics: Metrics,
    /// HMAC-SHA256 under the server pepper, for sessions, CSRF tokens, client secrets and API keys.
    pub hasher: Hasher,
    /// The keys that sign access tokens.
    pub keyring: Keyring,
    /// The AEAD key for secrets kept encrypted at rest (signing keys, `client_secret_jwt` secrets).
    pub master_key: SecretBytes,
    /// Client JWKS fetched from their `jwks_uri`.
    pub jwks_cache: crate::oauth::JwksCache,
    /// Bounds concurrent password hashing (Argon2id, 19 MiB each) and its queue.
    pub password_gate: crate::accounts::password::PasswordGate,
    /// Every rate limit (per key, per IP, sign-in, introspection), in process or in Redis.
    pub limits: crate::ratelimit::RateLimits,
    /// API-key usage counted since the last flush.
    pub usage: crate::apikeys::usage::Usage,
    /// Recent API-key lookups by HMAC, for `TESSERA_API_KEY_CACHE_TTL`.
    pub key_cache: crate::apikeys::cache::KeyCache,
    /// Recently verified access tokens at `/v1/auth/check` (signature, expiry and revocation checked),
    /// by HMAC, for the same TTL.
    pub token_cache: crate::jwt::TokenCache,
    /// Recently read OAuth clients, by HMAC of the client id, for the same TTL; a change through this
    /// node (secret regenerated, client deleted) drops the entry at once.
    pub client_cache: crate::oauth::ClientCache,
    /// Recently read APIs and their scopes, by HMAC of the audience, for the same TTL.
    pub api_cache: crate::apis::ApiCache,
    /// Publishes this node's cache drops to the other nodes (PostgreSQL; disabled on SQLite).
    pub bus: crate::invalidate::Bus,
}
