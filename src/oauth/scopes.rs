//! The APIs (resource servers) a token can be for, read through the node's cache, and the scopes a
//! grant gets on one.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::store;
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::i18n::Detail;
use crate::state::AppState;

/// An API by its audience, with the names of the scopes it defines.
pub type ApiScopes = (String, Vec<String>);

/// The API with this audience and the names of its scopes.
pub fn load_api(conn: &mut DbConn, audience: &str) -> Result<Option<ApiScopes>, AppError> {
    let Some(api) = store::find_api_by_audience(conn, audience)? else {
        return Ok(None);
    };
    let defined = store::find_scopes(conn, &api.id)?
        .into_iter()
        .map(|s| s.name)
        .collect();
    Ok(Some((api.audience, defined)))
}

fn api_key(state: &AppState, audience: &str) -> crate::cache::KeyHash {
    crate::cache::KeyHash(state.hasher.hash_raw("api", audience.as_bytes()))
}

/// The API with this audience: from the node's cache when it holds a fresh answer, else read (and
/// cached). Unknown audiences are not cached.
pub async fn find_api(
    state: &actix_web::web::Data<AppState>,
    audience: &str,
) -> Result<Option<Arc<ApiScopes>>, AppError> {
    if let Some(api) = state.api_cache.get(&api_key(state, audience)).flatten() {
        return Ok(Some(api));
    }
    let st = state.clone();
    let wanted = audience.to_owned();
    db::run(&state.pool, move |conn| load_cached_api(conn, &st, &wanted)).await
}

/// [`find_api`] on a connection the caller holds.
pub fn load_cached_api(
    conn: &mut DbConn,
    state: &AppState,
    audience: &str,
) -> Result<Option<Arc<ApiScopes>>, AppError> {
    let key = api_key(state, audience);
    if let Some(api) = state.api_cache.get(&key).flatten() {
        return Ok(Some(api));
    }
    let generation = state.api_cache.generation();
    let api = load_api(conn, audience)?.map(Arc::new);
    if let Some(api) = &api {
        state.api_cache.put(key, Some(api.clone()), generation);
    }
    Ok(api)
}

/// The API a service token is asked for (`resource`, else the default API: the issuer), or
/// `invalid_target`.
pub async fn requested_api(
    state: &actix_web::web::Data<AppState>,
    resource: Option<&str>,
) -> Result<Arc<ApiScopes>, AppError> {
    let audience = resource.unwrap_or_else(|| state.settings.issuer_str());
    find_api(state, audience).await?.ok_or_else(|| {
        AppError::oauth(
            "invalid_target",
            Detail::Value {
                value: audience.chars().take(128).collect(),
            },
        )
    })
}

/// The scopes a token gets: the requested ones (each allowed to the client and defined on the API),
/// or, when none are requested, every allowed scope the API defines except `offline_access`.
pub fn grant_scopes(
    requested: Option<&str>,
    allowed: &[&str],
    defined: &[String],
) -> Result<Vec<String>, AppError> {
    match requested {
        Some(req) => {
            let mut out = BTreeSet::new();
            for s in req.split(' ').filter(|s| !s.is_empty()) {
                if !allowed.contains(&s) || !defined.iter().any(|d| d == s) {
                    return Err(AppError::oauth(
                        "invalid_scope",
                        Detail::ScopeNotAllowed {
                            scope: s.chars().take(64).collect(),
                        },
                    ));
                }
                out.insert(s.to_owned());
            }
            Ok(out.into_iter().collect())
        }
        None => Ok(allowed
            .iter()
            .filter(|s| **s != "offline_access" && defined.iter().any(|d| d == *s))
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()),
    }
}
