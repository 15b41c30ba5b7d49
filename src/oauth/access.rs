//! Access-token verification (signature, issuer, expiry, revocation, client and user still
//! enabled) with the node's cache, for introspection and the forward-auth check; the access-token
//! half of forward-auth (`/v1/auth/check`, in the gateway module).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};

use super::store;
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::jwt::CachedClaims;
use crate::oauth::OAuth;

/// The cache key of an access token: its HMAC under the pepper (the token itself is never kept).
pub fn access_token_hash(state: &OAuth, token: &str) -> crate::cache::KeyHash {
    crate::cache::KeyHash(state.hasher.hash_raw("at", token.as_bytes()))
}

/// The claims of an access token this node verified within the cache TTL (signature, issuer,
/// revocation and client checked then), if it has not expired since. Past half the TTL one caller
/// re-verifies it in the background (a token found bad is dropped at once) and still gets the old
/// answer.
pub fn cached_access(
    state: &web::Data<OAuth>,
    hash: &crate::cache::KeyHash,
    token: &str,
) -> Option<std::sync::Arc<CachedClaims>> {
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
    state: &OAuth,
    hash: crate::cache::KeyHash,
    token: &str,
) -> Result<Option<std::sync::Arc<CachedClaims>>, AppError> {
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
    let claims = std::sync::Arc::new(crate::jwt::cached(claims));
    state
        .token_cache
        .put(hash, Some(claims.clone()), generation);
    Ok(Some(claims))
}

/// `at:{client}:{subject}`, the rate-limit key of a token's holder (built without the formatting
/// machinery: it is on every forward-auth request with a token).
fn limit_key(client_id: &str, sub: &str) -> String {
    let mut key = String::with_capacity(4 + client_id.len() + sub.len());
    key.push_str("at:");
    key.push_str(client_id);
    key.push(':');
    key.push_str(sub);
    key
}

/// A Tessera access token: signature, issuer and expiry from the keyring, then the revoked-jti list and
/// the client (a disabled or deleted client's tokens are refused). A verified token is cached by HMAC
/// for `TESSERA_API_KEY_CACHE_TTL` like an API key, so a busy token costs one verification per TTL per
/// node; its expiry is checked on every request, and a revocation through this node drops it at once.
/// A token is counted against `TESSERA_API_KEY_RATE_LIMIT` per client and subject, like a key.
pub async fn check_bearer(
    state: &web::Data<OAuth>,
    token: &str,
    required: Vec<String>,
    audience: Option<String>,
) -> Result<HttpResponse, AppError> {
    let hash = access_token_hash(state, token);
    let claims = match cached_access(state, &hash, token) {
        Some(claims) => claims,
        None => {
            let st = state.clone();
            let token = token.to_owned();
            // Boxed: a cached token, the common case, keeps a small future.
            Box::pin(db::run(&state.pool, move |conn| {
                verify_access(conn, &st, hash, &token)
            }))
            .await?
            .ok_or(AppError::Unauthorized("invalid_api_key"))?
        }
    };
    if required
        .iter()
        .any(|r| !claims.scope.split(' ').any(|s| s == r))
    {
        return Err(AppError::Forbidden("insufficient_permissions"));
    }
    if let Some(audience) = audience
        && audience != claims.aud
    {
        return Err(crate::apikeys::wrong_audience(&audience));
    }
    let limit = state
        .limits
        .check(
            crate::ratelimit::Bucket::ApiKey,
            &limit_key(&claims.client_id, &claims.sub),
            None,
        )
        .await;
    if !limit.allowed {
        return Err(limit.refused());
    }
    let Some(identity) = claims.headers.as_deref() else {
        return Err(AppError::Internal(
            "a verified token's claim is not a valid header value".into(),
        ));
    };
    let mut res = HttpResponse::Ok();
    for (name, value) in limit.headers() {
        res.insert_header((name, value));
    }
    for (name, value) in identity {
        res.insert_header((name.clone(), value.clone()));
    }
    Ok(res
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .finish())
}
