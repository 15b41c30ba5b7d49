//! Access-token verification (signature, issuer, expiry, revocation, client and user still
//! enabled) with the node's cache, for introspection and the forward-auth check.

use actix_web::web;

use super::store;
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::jwt::AccessClaims;
use crate::state::AppState;

/// The cache key of an access token: its HMAC under the pepper (the token itself is never kept).
pub fn access_token_hash(state: &AppState, token: &str) -> crate::cache::KeyHash {
    crate::cache::KeyHash(state.hasher.hash_raw("at", token.as_bytes()))
}

/// The claims of an access token this node verified within the cache TTL (signature, issuer,
/// revocation and client checked then), if it has not expired since. Past half the TTL one caller
/// re-verifies it in the background (a token found bad is dropped at once) and still gets the old
/// answer.
pub fn cached_access(
    state: &web::Data<AppState>,
    hash: &crate::cache::KeyHash,
    token: &str,
) -> Option<std::sync::Arc<AccessClaims>> {
    let found = match state.token_cache.lookup(hash) {
        crate::cache::Lookup::Hit(found) => found,
        crate::cache::Lookup::Refresh(found) => {
            let st = state.clone();
            let (hash, token) = (*hash, token.to_owned());
            actix_web::rt::spawn(async move {
                let s = st.clone();
                let verified =
                    db::run(&st.pool, move |conn| verify_access(conn, &s, hash, &token)).await;
                // No longer good: dropped now. On a database error the old answer stays until
                // its limit, then requests verify the token themselves.
                if matches!(verified, Ok(None)) {
                    st.token_cache.forget(&hash);
                }
            });
            found
        }
        crate::cache::Lookup::Miss => None,
    };
    found.filter(|c| c.exp >= db::now())
}

/// Verifies an access token in full: signature, issuer and expiry (the keyring), then in one query
/// not revoked, its client (and the client's owner) still enabled and its user not disabled. An
/// active token is cached for the credential-cache TTL.
pub fn verify_access(
    conn: &mut DbConn,
    state: &AppState,
    hash: crate::cache::KeyHash,
    token: &str,
) -> Result<Option<std::sync::Arc<AccessClaims>>, AppError> {
    let generation = state.token_cache.generation();
    let Some(claims) = state
        .keyring
        .verify_fresh(conn, token, state.settings.issuer_str())
    else {
        return Ok(None);
    };
    if !store::access_token_live(conn, &claims.jti, &claims.client_id, &claims.sub)? {
        return Ok(None);
    }
    let claims = std::sync::Arc::new(claims);
    state
        .token_cache
        .put(hash, Some(claims.clone()), generation);
    Ok(Some(claims))
}
