//! `AppState`: what every feature may reach (settings, the pool, metrics, the pepper's hasher, the
//! master key and the invalidation bus), built once in `startup` and shared as `web::Data`. It names
//! no feature: each feature keeps its own state (caches, limits, keys) in a value of its own that
//! holds this one and derefs to it (`oauth::OAuth`, `apikeys::ApiKeys`, `accounts::Accounts`,
//! `apis::Apis`), registered beside it.

use crate::config::Settings;
use crate::crypto::{Hasher, SecretBytes};
use crate::db::Pool;
use crate::metrics::Metrics;

#[derive(Debug)]
pub struct AppState {
    pub settings: Settings,
    pub pool: Pool,
    pub metrics: Metrics,
    /// HMAC-SHA256 under the server pepper, for sessions, CSRF tokens, client secrets and API keys.
    pub hasher: Hasher,
    /// The AEAD key for secrets kept encrypted at rest (signing keys, `client_secret_jwt` secrets).
    pub master_key: SecretBytes,
    /// Publishes this node's cache drops to the other nodes (PostgreSQL; disabled on SQLite).
    pub bus: crate::invalidate::Bus,
}

/// A feature's state: its own parts beside the [`AppState`] it derefs to.
#[macro_export]
macro_rules! feature_state {
    ($name:ident) => {
        impl std::ops::Deref for $name {
            type Target = $crate::state::AppState;
            fn deref(&self) -> &$crate::state::AppState {
                &self.core
            }
        }
    };
}
