//! APIs (resource servers) and the scopes they define: the registry that OAuth grants and API keys
//! are both checked against, and the default API of a fresh install.

pub mod model;
mod store;

use std::sync::Arc;

use crate::audit::{self, Actor};
use crate::crypto::random_id;
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::i18n::Detail;
use crate::state::AppState;
pub use model::{Api, ScopeRow, valid_scope_name};

fn bad_request(detail: impl Into<Detail>) -> AppError {
    AppError::bad_request("invalid_request", detail)
}

/// The scopes of a fresh install's default API, with the text the consent page shows.
pub const DEFAULT_SCOPES: &[(&str, &str)] = &[
    ("read", "Read your data"),
    ("write", "Create and change your data"),
    ("delete", "Delete your data"),
    ("admin", "Manage settings and other people's access"),
    (
        "offline_access",
        "Keep access when you are not using the app (refresh tokens)",
    ),
    // OpenID Connect: who the user is, for apps that sign them in.
    ("openid", "Know who you are (your account id)"),
    (
        "profile",
        "See your profile: name, username, picture and language",
    ),
    ("email", "See your email address"),
];

/// The scopes of OpenID Connect: they describe a user, so a service token never gets them unasked.
pub const IDENTITY_SCOPES: &[&str] = &["openid", "profile", "email"];

/// Creates the default API (audience = the issuer) and its scopes when missing. Idempotent.
pub fn ensure_default_api(conn: &mut DbConn, issuer: &str) -> Result<Api, AppError> {
    crate::db::transaction(conn, |conn| {
        let api = match store::find_api_by_audience(conn, issuer)? {
            Some(api) => api,
            None => {
                store::insert_api(
                    conn,
                    &random_id("api", 20),
                    issuer,
                    "Default API",
                    db::now(),
                )?;
                store::find_api_by_audience(conn, issuer)?.ok_or(AppError::NotFound)?
            }
        };
        let existing = store::find_scopes(conn, &api.id)?;
        for (name, description) in DEFAULT_SCOPES {
            if !existing.iter().any(|s| s.name == *name) {
                store::insert_scope(
                    conn,
                    &random_id("scp", 20),
                    &api.id,
                    name,
                    description,
                    db::now(),
                )?;
            }
        }
        Ok(api)
    })
}

/// Every registered API (resource server), by audience.
pub fn list_apis(conn: &mut DbConn) -> Result<Vec<Api>, AppError> {
    Ok(store::find_apis(conn)?)
}

/// Every registered scope with its description (for forms).
pub fn list_scopes(conn: &mut DbConn) -> Result<Vec<ScopeRow>, AppError> {
    use db::schema::scopes;
    use diesel::prelude::*;
    Ok(scopes::table
        .order(scopes::name.asc())
        .select(ScopeRow::as_select())
        .load(conn)?)
}

/// The names of every registered scope, sorted (what API keys may be restricted to).
pub fn registered_scope_names(conn: &mut DbConn) -> Result<Vec<String>, AppError> {
    Ok(store::find_all_scope_names(conn)?)
}

/// `requested` audiences (repeatable, or space-separated), each the audience of a registered API;
/// duplicates dropped. An unknown one is refused with the registered audiences listed.
pub fn registered_audiences(
    conn: &mut DbConn,
    requested: &[String],
) -> Result<Vec<String>, AppError> {
    let mut out: Vec<String> = Vec::new();
    let words = requested.iter().flat_map(|a| a.split(' '));
    let words: Vec<&str> = words.filter(|a| !a.is_empty()).collect();
    if words.is_empty() {
        return Ok(out);
    }
    let known = store::find_api_audiences(conn)?;
    for a in words {
        if !known.iter().any(|k| k == a) {
            return Err(bad_request(Detail::UnknownAudience {
                audience: a.chars().take(128).collect(),
                registered: known,
            }));
        }
        if !out.iter().any(|o| o == a) {
            out.push(a.to_owned());
        }
    }
    Ok(out)
}

/// Registers an API (a resource server) by its audience.
pub fn create_api(
    conn: &mut DbConn,
    audience: &str,
    name: &str,
    actor: Actor,
) -> Result<Api, AppError> {
    let audience = audience.trim();
    let name = name.trim();
    if audience.is_empty() || audience.len() > 512 || audience.contains(' ') {
        return Err(bad_request(Detail::AudienceFormat));
    }
    if name.is_empty() || name.chars().count() > 100 {
        return Err(bad_request(Detail::TextLength {
            field: "name",
            max: 100,
        }));
    }
    crate::db::transaction(conn, |conn| {
        if store::find_api_by_audience(conn, audience)?.is_some() {
            return Err(AppError::Conflict("conflict"));
        }
        let id = random_id("api", 20);
        store::insert_api(conn, &id, audience, name, db::now())?;
        audit::record(
            conn,
            audit::Event::new(actor, "api.create")
                .target("api", &id)
                .details(serde_json::json!({ "audience": audience, "name": name })),
        )?;
        store::find_api_by_audience(conn, audience)?.ok_or(AppError::NotFound)
    })
}

/// Registers a scope on an API (by audience; the default API when `None`).
pub fn create_scope(
    conn: &mut DbConn,
    issuer: &str,
    name: &str,
    description: &str,
    audience: Option<&str>,
    actor: Actor,
) -> Result<ScopeRow, AppError> {
    if !model::valid_scope_name(name) {
        return Err(bad_request(Detail::NotAScopeName {
            value: name.chars().take(128).collect(),
        }));
    }
    let description = description.trim();
    if description.is_empty() || description.chars().count() > 200 {
        return Err(bad_request(Detail::TextLength {
            field: "description",
            max: 200,
        }));
    }
    let audience = audience.unwrap_or(issuer);
    crate::db::transaction(conn, |conn| {
        let api = store::find_api_by_audience(conn, audience)?.ok_or_else(|| {
            bad_request(Detail::NoApiWithAudience {
                audience: audience.chars().take(128).collect(),
            })
        })?;
        if store::find_scopes(conn, &api.id)?
            .iter()
            .any(|s| s.name == name)
        {
            return Err(AppError::Conflict("conflict"));
        }
        let id = random_id("scp", 20);
        store::insert_scope(conn, &id, &api.id, name, description, db::now())?;
        audit::record(
            conn,
            audit::Event::new(actor, "scope.create")
                .target("scope", &id)
                .details(serde_json::json!({ "name": name, "audience": audience })),
        )?;
        store::find_scopes(conn, &api.id)?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or(AppError::NotFound)
    })
}

/// An API by its audience, with the names of the scopes it defines.
pub type ApiScopes = (String, Vec<String>);

/// APIs by HMAC of the audience, with their scope names, for service grants and key checks.
pub type ApiCache = crate::cache::HashCache<ApiScopes>;

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

/// The scopes of the API with this audience, with their descriptions (for the consent page).
pub fn described_scopes(conn: &mut DbConn, audience: &str) -> Result<Vec<ScopeRow>, AppError> {
    let api = store::find_api_by_audience(conn, audience)?.ok_or(AppError::NotFound)?;
    Ok(store::find_scopes(conn, &api.id)?)
}

/// The state of this feature: the cache of APIs, beside the [`AppState`] it derefs to.
#[derive(Debug)]
pub struct Apis {
    pub core: actix_web::web::Data<AppState>,
    /// Recently read APIs and their scopes, by HMAC of the audience, for the credential-cache TTL.
    pub api_cache: ApiCache,
}
crate::feature_state!(Apis);

fn api_key(state: &AppState, audience: &str) -> crate::cache::KeyHash {
    crate::cache::KeyHash(state.hasher.lookup_key("api", audience.as_bytes()))
}

/// The API with this audience: from the node's cache when it holds a fresh answer, else read (and
/// cached). Unknown audiences are not cached.
pub fn find_api<'a>(
    state: &'a actix_web::web::Data<Apis>,
    audience: &str,
) -> crate::cache::NowOrLater<'a, Result<Option<Arc<ApiScopes>>, AppError>> {
    if let Some(api) = state
        .api_cache
        .get(&api_key(state, audience))
        .flatten()
        .filter(|api| api.0 == audience)
    {
        return crate::cache::now(Ok(Some(api)));
    }
    let st = state.clone();
    let wanted = audience.to_owned();
    crate::cache::later(db::run(&state.pool, move |conn| {
        load_cached_api(conn, &st, &wanted)
    }))
}

/// [`find_api`] on a connection the caller holds.
pub fn load_cached_api(
    conn: &mut DbConn,
    state: &Apis,
    audience: &str,
) -> Result<Option<Arc<ApiScopes>>, AppError> {
    let key = api_key(state, audience);
    if let Some(api) = state
        .api_cache
        .get(&key)
        .flatten()
        .filter(|api| api.0 == audience)
    {
        return Ok(Some(api));
    }
    let generation = state.api_cache.generation();
    let api = load_api(conn, audience)?.map(Arc::new);
    if let Some(api) = &api {
        state.api_cache.put(key, Some(api.clone()), generation);
    }
    Ok(api)
}
