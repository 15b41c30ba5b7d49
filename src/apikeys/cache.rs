//! The per-node cache of looked-up API keys ([`crate::cache::HashCache`] of [`ApiKey`]): keyed by the
//! HMAC of the key's secret part, holding the stored key or "no such key" for
//! `TESSERA_API_KEY_CACHE_TTL`.

use super::{ApiKey, ApiKeyId};
pub use crate::cache::{CAPACITY, KeyHash};

pub type KeyCache = crate::cache::HashCache<CachedKey>;

/// A stored key with the headers forward-auth answers for it (`X-Auth-Subject`, `X-Auth-Scopes`,
/// `X-Auth-Key-Id`, `X-Auth-Env`), made when it enters the cache.
pub type CachedKey = crate::cache::WithHeaders<ApiKey>;

/// `key` as the cache keeps it.
pub fn cached(key: ApiKey) -> CachedKey {
    use actix_web::http::header::HeaderName;
    CachedKey::new(key, |k| {
        vec![
            (HeaderName::from_static("x-auth-subject"), k.subject()),
            // Stored scopes are already the space-separated list (or `*` for full access).
            (HeaderName::from_static("x-auth-scopes"), k.scopes.as_str()),
            (HeaderName::from_static("x-auth-key-id"), k.id.as_str()),
            (
                HeaderName::from_static("x-auth-env"),
                k.environment.as_str(),
            ),
        ]
    })
}

impl crate::cache::Fields for ApiKey {
    fn field(&self, name: &str) -> Option<&str> {
        match name {
            "id" => Some(self.id.as_str()),
            "owner_client_id" => self.owner_client_id.as_deref(),
            _ => None,
        }
    }
}

impl KeyCache {
    /// Drops every entry of the key `id` (after a revocation or rotation), on every node.
    pub fn forget_key(&self, id: &ApiKeyId) {
        self.forget_field("id", id.as_str());
    }

    /// Drops every entry of a key owned by the client `client_id` (after the client was deleted), on
    /// every node.
    pub fn forget_client(&self, client_id: &str) {
        self.forget_field("owner_client_id", client_id);
    }

    /// Drops every entry of a key owned by the user `user_id` or by one of their apps `app_ids`
    /// (after the user was disabled or re-enabled here: the cached owner state changed).
    pub fn forget_owner(&self, user_id: &crate::accounts::UserId, app_ids: &[String]) {
        self.forget_where(|k| {
            k.owner_user_id.as_deref() == Some(user_id.as_str())
                || k.owner_client_id
                    .as_ref()
                    .is_some_and(|c| app_ids.contains(c))
        });
    }
}
