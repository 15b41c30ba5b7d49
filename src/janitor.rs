//! Background work of every node: re-reading signing keys and following the rotation schedule, and
//! purging expired rows in bounded batches (also run once by `tessera purge`).

use actix_web::web;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{
    access_token_claims, authorization_codes, refresh_token_families, refresh_tokens,
    revoked_access_tokens, sessions, used_assertion_jtis, used_nonces,
};
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::node::Node;

/// The tables the janitor purges, in the order it purges them (tokens before their families).
pub const TABLES: [Table; 8] = [
    Table::AuthorizationCodes,
    Table::RefreshTokens,
    Table::RefreshTokenFamilies,
    Table::RevokedAccessTokens,
    Table::UsedAssertionJtis,
    Table::UsedNonces,
    Table::AccessTokenClaims,
    Table::Sessions,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    AuthorizationCodes,
    RefreshTokens,
    RefreshTokenFamilies,
    RevokedAccessTokens,
    UsedAssertionJtis,
    UsedNonces,
    AccessTokenClaims,
    Sessions,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Self::AuthorizationCodes => "authorization_codes",
            Self::RefreshTokens => "refresh_tokens",
            Self::RefreshTokenFamilies => "refresh_token_families",
            Self::RevokedAccessTokens => "revoked_access_tokens",
            Self::UsedAssertionJtis => "used_assertion_jtis",
            Self::UsedNonces => "used_nonces",
            Self::AccessTokenClaims => "access_token_claims",
            Self::Sessions => "sessions",
        }
    }
}

/// Deletes up to `limit` rows that expired before `now`: their keys are read first (an indexed range
/// scan), then deleted by key, so each statement touches a bounded number of rows on both backends.
macro_rules! purge_by_key {
    ($conn:expr, $table:ident, $key:ident, $now:expr, $limit:expr) => {{
        let keys: Vec<String> = $table::table
            .filter($table::expires_at.lt($now))
            .order($table::expires_at.asc())
            .select($table::$key)
            .limit($limit)
            .load($conn)?;
        if keys.is_empty() {
            0
        } else {
            diesel::delete(
                $table::table
                    .filter($table::$key.eq_any(&keys))
                    .filter($table::expires_at.lt($now)),
            )
            .execute($conn)?
        }
    }};
}

/// One bounded batch of one table. Returns the rows deleted (fewer than `limit`: the table is clean).
pub fn purge_batch(conn: &mut DbConn, table: Table, now: i64, limit: i64) -> QueryResult<usize> {
    Ok(match table {
        Table::AuthorizationCodes => {
            purge_by_key!(conn, authorization_codes, code_hash, now, limit)
        }
        Table::RefreshTokens => purge_by_key!(conn, refresh_tokens, token_hash, now, limit),
        Table::RefreshTokenFamilies => purge_by_key!(conn, refresh_token_families, id, now, limit),
        Table::RevokedAccessTokens => purge_by_key!(conn, revoked_access_tokens, jti, now, limit),
        // Keyed by (client_id, jti): jtis are selected, and only expired rows with them are deleted.
        Table::UsedAssertionJtis => purge_by_key!(conn, used_assertion_jtis, jti, now, limit),
        // Likewise by (client_id, nonce_hash).
        Table::UsedNonces => purge_by_key!(conn, used_nonces, nonce_hash, now, limit),
        Table::AccessTokenClaims => purge_by_key!(conn, access_token_claims, jti, now, limit),
        Table::Sessions => purge_by_key!(conn, sessions, id_hash, now, limit),
    })
}

/// Rows deleted per table by one purge.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Purged {
    pub authorization_codes: usize,
    pub refresh_tokens: usize,
    pub refresh_token_families: usize,
    pub revoked_access_tokens: usize,
    pub used_assertion_jtis: usize,
    pub used_nonces: usize,
    pub access_token_claims: usize,
    pub sessions: usize,
}

impl Purged {
    fn add(&mut self, table: Table, n: usize) {
        let slot = match table {
            Table::AuthorizationCodes => &mut self.authorization_codes,
            Table::RefreshTokens => &mut self.refresh_tokens,
            Table::RefreshTokenFamilies => &mut self.refresh_token_families,
            Table::RevokedAccessTokens => &mut self.revoked_access_tokens,
            Table::UsedAssertionJtis => &mut self.used_assertion_jtis,
            Table::UsedNonces => &mut self.used_nonces,
            Table::AccessTokenClaims => &mut self.access_token_claims,
            Table::Sessions => &mut self.sessions,
        };
        *slot += n;
    }

    pub fn total(&self) -> usize {
        self.authorization_codes
            + self.refresh_tokens
            + self.refresh_token_families
            + self.revoked_access_tokens
            + self.used_assertion_jtis
            + self.used_nonces
            + self.access_token_claims
            + self.sessions
    }
}

/// Purges everything expired before `now`, batch after batch, on one connection (`tessera purge`).
pub fn purge_all(conn: &mut DbConn, now: i64, batch: u32) -> QueryResult<Purged> {
    let mut purged = Purged::default();
    for table in TABLES {
        loop {
            let n = purge_batch(conn, table, now, i64::from(batch))?;
            purged.add(table, n);
            if n < batch as usize {
                break;
            }
        }
    }
    Ok(purged)
}

/// The server's purge: each batch takes a pooled connection of its own and gives it back, so
/// requests are served between batches however much there is to delete.
pub async fn purge_pool(state: &web::Data<Node>) -> Result<Purged, AppError> {
    let batch = state.settings.purge_batch_size;
    let now = db::now();
    let mut purged = Purged::default();
    for table in TABLES {
        loop {
            let n = db::run(&state.pool, move |conn| {
                Ok(purge_batch(conn, table, now, i64::from(batch))?)
            })
            .await?;
            purged.add(table, n);
            state.metrics.purged(table.name(), n);
            if n < batch as usize {
                break;
            }
            actix_web::rt::task::yield_now().await;
        }
    }
    Ok(purged)
}

/// Writes the usage counted since the last flush (API-key requests, tokens issued to clients) in one
/// write (on SQLite through the writer, beside the token writes rather than against them); a failure
/// puts the counts back for the next try.
pub async fn flush_usage(state: &web::Data<Node>) {
    let (keys, clients) = (state.keys.usage.take(), state.oauth.usage.take());
    if keys.is_empty() && clients.is_empty() {
        return;
    }
    let written = (keys.clone(), clients.clone());
    let result = db::run_writing(&state.pool, move |conn| {
        conn.write(move |db| -> Result<usize, AppError> {
            Ok(written.0.write(db)? + written.1.write(db)?)
        })
    })
    .await;
    if let Err(e) = result {
        state.keys.usage.put_back(keys);
        state.oauth.usage.put_back(clients);
        tracing::warn!(error = %e, "cannot write API-key usage; will retry");
    }
}

/// Starts the node's background jobs; they end when the returned handles are aborted.
pub fn spawn(state: web::Data<Node>) -> Vec<actix_web::rt::task::JoinHandle<()>> {
    let keys = {
        let state = state.clone();
        actix_web::rt::spawn(async move {
            let every = state.settings.key_reload_interval;
            loop {
                actix_web::rt::time::sleep(every).await;
                let st = state.clone();
                let result = db::run(&state.pool.clone(), move |conn| {
                    st.keyring
                        .maintain(conn, &st.settings)
                        .map_err(AppError::internal)
                })
                .await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, "signing-key maintenance failed; will retry");
                }
            }
        })
    };
    let usage = {
        let state = state.clone();
        actix_web::rt::spawn(async move {
            loop {
                actix_web::rt::time::sleep(state.settings.usage_flush_interval).await;
                flush_usage(&state).await;
            }
        })
    };
    let logout = actix_web::rt::spawn(crate::oauth::logout::deliver(state.oauth.clone()));
    let purge = actix_web::rt::spawn(async move {
        let every = state.settings.purge_interval;
        loop {
            actix_web::rt::time::sleep(every).await;
            state.limits.forget_idle();
            state.keys.key_cache.forget_stale();
            state.oauth.token_cache.forget_stale();
            state.oauth.client_cache.forget_stale();
            state.apis.api_cache.forget_stale();
            match purge_pool(&state).await {
                Ok(p) if p.total() > 0 => {
                    tracing::info!(rows = p.total(), "purged expired rows");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purge failed; will retry"),
            }
        }
    });
    vec![keys, purge, usage, logout]
}

/// The names the caches publish their drops under (the same on every node).
pub const KEYS: &str = "keys";
pub const TOKENS: &str = "tokens";
pub const CLIENTS: &str = "clients";
pub const APIS: &str = "apis";

/// Starts the cross-node invalidation listener (PostgreSQL): the other nodes' cache drops are applied
/// here, a signing-key change is re-read at once, and after a reconnection everything cached is
/// dropped (messages may have been missed). It stops when the returned guard is dropped; `None` on
/// SQLite.
pub fn listen(state: web::Data<Node>) -> Option<crate::invalidate::Listening> {
    let crate::config::DatabaseUrl::Postgres(url) = &state.settings.database_url else {
        return None;
    };
    let url = url.clone();
    let bus = state.bus.clone();
    bus.listen(url, move |incoming| apply(&state, incoming))
}

/// Applies one message from the invalidation listener (on its thread).
fn apply(state: &Node, incoming: crate::invalidate::Incoming) {
    use crate::invalidate::{Event, Incoming, Selector};
    match incoming {
        Incoming::Reconnected => {
            for cache in [KEYS, TOKENS, CLIENTS, APIS] {
                apply_to_cache(state, cache, &Selector::All);
            }
            reload_keys(state);
        }
        Incoming::Event(Event::SigningKeys) => reload_keys(state),
        Incoming::Event(Event::Cache { cache, selector }) => {
            apply_to_cache(state, &cache, &selector);
        }
    }
}

fn apply_to_cache(state: &Node, cache: &str, selector: &crate::invalidate::Selector) {
    match cache {
        KEYS => state.keys.key_cache.apply(selector),
        TOKENS => state.oauth.token_cache.apply(selector),
        CLIENTS => state.oauth.client_cache.apply(selector),
        APIS => state.apis.api_cache.apply(selector),
        other => tracing::warn!(cache = other, "invalidation for an unknown cache ignored"),
    }
}

/// Re-reads the signing keys now (a rotation on another node or by the CLI); a failure leaves it to
/// the periodic reload.
fn reload_keys(state: &Node) {
    let result = state
        .pool
        .get()
        .map_err(|e| e.to_string())
        .and_then(|mut conn| state.keyring.reload(&mut conn).map_err(|e| e.to_string()));
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot re-read the signing keys; the periodic reload will");
    }
}
