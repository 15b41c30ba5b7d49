//! API keys: typed, prefixed, scoped and expiring; stored only as HMACs; verified without writes.

mod admin;
pub mod cache;
pub mod format;
mod handlers;
pub mod model;
mod store;
pub mod usage;

use std::time::Duration;

use actix_web::web;

use crate::accounts::UserId;
use crate::apis::valid_scope_name;
use crate::audit::{self, Actor, Origin};
use crate::config::{KeyTypeSetting, Settings};
use crate::crypto::{Hasher, random_id};
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::i18n::Detail;
pub use handlers::{Presented, check_key, presented, split_scopes, wrong_audience};
pub use model::{ALL_SCOPES, ApiKey, ApiKeyId, KeyStatus, KeyView};

/// The state of this feature: the key cache, the usage counters and the rate limits, beside the
/// [`AppState`](crate::state::AppState) it derefs to.
#[derive(Debug)]
pub struct ApiKeys {
    pub core: web::Data<crate::state::AppState>,
    pub limits: web::Data<crate::ratelimit::RateLimits>,
    /// Recent API-key lookups by HMAC, for `TESSERA_API_KEY_CACHE_TTL`.
    pub key_cache: cache::KeyCache,
    /// API-key (and OAuth-client) usage counted since the last flush.
    pub usage: usage::Usage,
}
crate::feature_state!(ApiKeys);

/// Purpose string of API-key hashes under the pepper. Short on purpose: with the key's secret part
/// (see [`hash_input`]) the message fits one SHA-256 block, so an HMAC costs two compressions, not
/// three (the verify hot path).
pub const KEY_PURPOSE: &str = "ak";

/// What is hashed of a key: its random body and checksum (the last 49 characters). The prefix and
/// environment are not secret; a presented key must still carry the stored ones (see [`judge`]).
pub fn hash_input(key: &str) -> &[u8] {
    let tail = format::BODY_LEN + format::CHECKSUM_LEN;
    let bytes = key.as_bytes();
    &bytes[bytes.len().saturating_sub(tail)..]
}
/// The pepper version new keys are hashed under (the column lets the pepper rotate later).
const PEPPER_VERSION: i32 = 1;
const MAX_METADATA_BYTES: usize = 4096;

/// `POST /v1/keys/verify`, a hot path: registered among the first routes (see `startup`).
pub fn configure_verify(cfg: &mut web::ServiceConfig) {
    handlers::configure(cfg);
}

/// The key management API (`/v1/keys`, `/v1/keys/{id}`…).
pub fn configure(cfg: &mut web::ServiceConfig) {
    admin::configure(cfg);
}

/// The OpenAPI description of the routes `configure` adds.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    let mut doc = handlers::Docs::openapi();
    doc.merge(admin::Docs::openapi());
    doc
}

/// What a new key is made of.
#[derive(Debug, Default, Clone)]
pub struct KeyInput {
    pub name: String,
    /// A configured key type (`sk`, `rk`, or the operator's own).
    pub key_type: String,
    /// `live` or `test`.
    pub env: String,
    pub scopes: Vec<String>,
    /// The audiences of the APIs the key is for (registered APIs); empty: any API.
    pub apis: Vec<String>,
    /// Lifetime from now; the type's default when `None`.
    pub expires_in: Option<Duration>,
    /// Requests per 15 minutes for this key (the server default when `None`).
    pub rate_limit: Option<u32>,
    pub metadata: Option<serde_json::Value>,
    pub owner_user_id: Option<String>,
    pub owner_client_id: Option<String>,
}

/// The full key, shown once. `Debug` never prints it.
pub struct KeySecret(pub String);

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySecret([redacted])")
    }
}

fn bad(detail: Detail) -> AppError {
    AppError::bad_request("invalid_request", detail)
}

/// A kind of API key (`sk`, `rk`, or the operator's own from `[key_types.NAME]`): its prefix, what its
/// keys may be allowed, and how long they live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyType {
    pub name: String,
    /// The text before the environment, e.g. `sk_` (then `live_`/`test_`).
    pub prefix: String,
    pub access: Access,
    /// Safe to ship in client code: only the type's listed (public) scopes, never full access.
    pub publishable: bool,
    pub default_ttl: Option<Duration>,
    pub max_ttl: Option<Duration>,
}

/// What the keys of a type may be allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Every scope ([`ALL_SCOPES`]): a key of the type names none.
    Full,
    /// A chosen, non-empty set of registered scopes (and [`KEY_ONLY_SCOPES`]).
    Chosen,
    /// A non-empty subset of these scopes.
    Listed(Vec<String>),
}

impl KeyType {
    pub fn from_setting(t: &KeyTypeSetting) -> Self {
        Self {
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            access: match &t.scopes {
                None => Access::Full,
                Some(list) if list.is_empty() => Access::Chosen,
                Some(list) => Access::Listed(list.clone()),
            },
            publishable: t.publishable,
            default_ttl: t.default_ttl,
            max_ttl: t.max_ttl,
        }
    }
}

/// The configured key types, in the settings' order.
pub fn key_types(settings: &Settings) -> impl Iterator<Item = KeyType> + '_ {
    settings.key_types.iter().map(KeyType::from_setting)
}

fn key_type(settings: &Settings, name: &str) -> Result<KeyType, AppError> {
    key_types(settings).find(|t| t.name == name).ok_or_else(|| {
        bad(Detail::UnknownKeyType {
            name: name.chars().take(64).collect(),
            known: settings.key_types.iter().map(|t| t.name.clone()).collect(),
        })
    })
}

/// A place an API key may be presented in (`TESSERA_API_KEY_PRESENTATIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presentation {
    Bearer,
    XApiKey,
    Token,
    Query,
    Body,
}

impl Presentation {
    pub const ALL: [Presentation; 5] = [
        Presentation::Bearer,
        Presentation::XApiKey,
        Presentation::Token,
        Presentation::Query,
        Presentation::Body,
    ];

    /// Its name in the setting.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "bearer",
            Self::XApiKey => "x-api-key",
            Self::Token => "token",
            Self::Query => "query",
            Self::Body => "body",
        }
    }

    /// Whether the settings accept keys presented here.
    pub fn allowed(self, settings: &Settings) -> bool {
        settings
            .api_key_presentations
            .iter()
            .any(|p| p == self.as_str())
    }
}

/// Scopes an API key may carry without being registered on an API: permissions of Tessera itself.
pub const KEY_ONLY_SCOPES: &[&str] = &["introspect"];

/// The scopes a key of `kt` gets: full access for a type without a scope list, else a non-empty
/// subset of the type's scopes. A type with an empty list takes the `registered` scope names (and
/// [`KEY_ONLY_SCOPES`]); `None` skips that check (a rotation keeps what the old key had).
fn key_scopes(
    kt: &KeyType,
    requested: &[String],
    registered: Option<&[String]>,
) -> Result<String, AppError> {
    let mut scopes: Vec<&str> = Vec::new();
    for s in requested.iter().flat_map(|s| s.split([' ', ','])) {
        let s = s.trim();
        if s.is_empty() || scopes.contains(&s) {
            continue;
        }
        if !valid_scope_name(s) || s == ALL_SCOPES {
            return Err(bad(Detail::NotAScopeName {
                value: s.chars().take(128).collect(),
            }));
        }
        scopes.push(s);
    }
    match &kt.access {
        Access::Full if scopes.is_empty() => Ok(ALL_SCOPES.to_owned()),
        Access::Full => Err(bad(Detail::FullAccessTakesNoScopes {
            key_type: kt.name.clone(),
        })),
        _ if scopes.is_empty() => Err(bad(Detail::KeysNeedScope {
            key_type: kt.name.clone(),
        })),
        Access::Listed(allowed) => {
            if let Some(s) = scopes.iter().find(|s| !allowed.iter().any(|a| a == *s)) {
                let (scope, key_type, allowed) = (
                    s.chars().take(128).collect(),
                    kt.name.clone(),
                    allowed.clone(),
                );
                return Err(bad(if kt.publishable {
                    Detail::ScopeNotPublicOfType {
                        scope,
                        key_type,
                        allowed,
                    }
                } else {
                    Detail::ScopeNotOfType {
                        scope,
                        key_type,
                        allowed,
                    }
                }));
            }
            scopes.sort_unstable();
            Ok(scopes.join(" "))
        }
        Access::Chosen => {
            if let Some(known) = registered
                && let Some(s) = scopes
                    .iter()
                    .find(|s| !known.iter().any(|k| k == *s) && !KEY_ONLY_SCOPES.contains(s))
            {
                let mut valid: Vec<String> = known.to_vec();
                valid.extend(KEY_ONLY_SCOPES.iter().map(|s| (*s).to_owned()));
                valid.sort_unstable();
                valid.dedup();
                return Err(bad(Detail::ScopeNotRegisteredValid {
                    scope: s.chars().take(128).collect(),
                    valid,
                }));
            }
            scopes.sort_unstable();
            Ok(scopes.join(" "))
        }
    }
}

/// Creates a key: validated (its scopes and APIs must be registered), stored only as its HMAC (plus
/// prefix and last four characters for display), audited in the same transaction. The full key is
/// returned once.
pub fn create_key(
    conn: &mut DbConn,
    settings: &Settings,
    hasher: &Hasher,
    input: &KeyInput,
    actor: Actor,
    origin: Origin,
) -> Result<(ApiKey, KeySecret), AppError> {
    let registered = crate::apis::registered_scope_names(conn)?;
    new_key(
        conn,
        settings,
        hasher,
        input,
        Some(&registered),
        actor,
        origin,
    )
}

fn new_key(
    conn: &mut DbConn,
    settings: &Settings,
    hasher: &Hasher,
    input: &KeyInput,
    registered: Option<&[String]>,
    actor: Actor,
    origin: Origin,
) -> Result<(ApiKey, KeySecret), AppError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(bad(Detail::TextLength {
            field: "name",
            max: 100,
        }));
    }
    let kt = key_type(settings, input.key_type.trim())?;
    let env = input.env.trim();
    if !matches!(env, "live" | "test") {
        return Err(bad(Detail::EnvLiveOrTest));
    }
    let scopes = key_scopes(&kt, &input.scopes, registered)?;
    let audiences = crate::apis::registered_audiences(conn, &input.apis)?.join(" ");
    let now = db::now();
    let ttl = input.expires_in.or(kt.default_ttl);
    if let Some(max) = kt.max_ttl {
        match ttl {
            Some(t) if t <= max => {}
            _ => {
                return Err(bad(Detail::KeyMaxLifetime {
                    key_type: kt.name.clone(),
                    days: max.as_secs() / 86_400,
                }));
            }
        }
    }
    if ttl.is_some_and(|t| t.as_secs() == 0) {
        return Err(bad(Detail::KeyMinLifetime));
    }
    let expires_at = ttl.map(|t| now.saturating_add(t.as_secs().min(i64::MAX as u64 / 2) as i64));
    if input.rate_limit.is_some_and(|r| r == 0 || r > 10_000_000) {
        return Err(bad(Detail::KeyRateLimitRange));
    }
    let metadata = match &input.metadata {
        None => "{}".to_owned(),
        Some(m @ serde_json::Value::Object(_)) => m.to_string(),
        Some(_) => return Err(bad(Detail::MetadataObject)),
    };
    if metadata.len() > MAX_METADATA_BYTES {
        return Err(bad(Detail::MetadataTooLarge {
            max: MAX_METADATA_BYTES,
        }));
    }
    let secret = format::generate(&kt.prefix, env);
    let hash = hasher.hash(KEY_PURPOSE, hash_input(&secret));
    let id = random_id("key", 20);
    let display_prefix = format!("{}{env}_", kt.prefix);
    let last_four = &secret[secret.len() - 4..];
    crate::db::transaction(conn, |conn| {
        store::insert_key(
            conn,
            &store::NewApiKey {
                id: &id,
                key_hash: &hash,
                pepper_version: PEPPER_VERSION,
                display_prefix: &display_prefix,
                last_four,
                name,
                key_type: &kt.name,
                environment: env,
                scopes: &scopes,
                owner_user_id: input.owner_user_id.as_deref(),
                owner_client_id: input.owner_client_id.as_deref(),
                rate_limit: input.rate_limit.map(|r| r as i32),
                metadata: &metadata,
                created_at: now,
                expires_at,
                audiences: &audiences,
            },
        )?;
        audit::record(
            conn,
            audit::Event::new(actor, "api_key.create")
                .target("api_key", &id)
                .origin(origin)
                .details(serde_json::json!({
                    "name": name, "type": kt.name, "env": env, "scopes": scopes,
                    "apis": audiences, "expires_at": expires_at,
                })),
        )?;
        let key = store::find_by_id(conn, &id)?.ok_or(AppError::NotFound)?;
        Ok((key, KeySecret(secret.clone())))
    })
}

pub fn find_key(conn: &mut DbConn, id: &ApiKeyId) -> Result<ApiKey, AppError> {
    store::find_by_id(conn, id.as_str())?.ok_or(AppError::NotFound)
}

/// The key with this id as a caller bound to `env` may see it: 404 for a key of another environment
/// (a test key learns nothing of live keys).
pub fn find_key_in(
    conn: &mut DbConn,
    id: &ApiKeyId,
    env: Option<&str>,
) -> Result<ApiKey, AppError> {
    let key = find_key(conn, id)?;
    if env.is_some_and(|e| e != key.environment) {
        return Err(AppError::NotFound);
    }
    Ok(key)
}

/// Keys, newest first; only `owner`'s when given.
pub fn list_keys(
    conn: &mut DbConn,
    owner: Option<&UserId>,
    limit: i64,
    offset: i64,
) -> Result<Vec<ApiKey>, AppError> {
    Ok(store::list_keys(
        conn,
        owner.map(|o| o.as_str()),
        None,
        limit,
        offset,
    )?)
}

/// Keys of the environment `env` only, newest first.
pub fn list_env_keys(
    conn: &mut DbConn,
    env: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<ApiKey>, AppError> {
    Ok(store::list_keys(conn, None, Some(env), limit, offset)?)
}

/// Revokes a key at once (idempotent); audited.
pub fn revoke_key(
    conn: &mut DbConn,
    id: &ApiKeyId,
    actor: Actor,
    origin: Origin,
) -> Result<ApiKey, AppError> {
    crate::db::transaction(conn, |conn| {
        find_key(conn, id)?; // 404 for an unknown id
        if store::revoke(conn, id.as_str(), db::now())? {
            audit::record(
                conn,
                audit::Event::new(actor, "api_key.revoke")
                    .target("api_key", id.as_str())
                    .origin(origin),
            )?;
        }
        find_key(conn, id)
    })
}

/// Replaces a key: the new one (same name, type, env, scopes, owner, limit, metadata, lifetime) is
/// returned once; the old one keeps working for `grace`, then fails as expired.
pub fn rotate_key(
    conn: &mut DbConn,
    settings: &Settings,
    hasher: &Hasher,
    id: &ApiKeyId,
    grace: Duration,
    actor: Actor,
    origin: Origin,
) -> Result<(ApiKey, KeySecret), AppError> {
    let old = find_key(conn, id)?;
    let now = db::now();
    if old.status(now) != KeyStatus::Active {
        return Err(AppError::Conflict("api_key_not_active"));
    }
    // A key in its grace period already has a successor: rotating it again would fork the key.
    if old.replaced_by.is_some() {
        return Err(AppError::Conflict("api_key_already_rotated"));
    }
    let input = KeyInput {
        name: old.name.clone(),
        key_type: old.key_type.clone(),
        env: old.environment.clone(),
        scopes: if old.full_access() {
            Vec::new()
        } else {
            old.scope_list().into_iter().map(str::to_owned).collect()
        },
        apis: old.audience_list().into_iter().map(str::to_owned).collect(),
        expires_in: old
            .expires_at
            .map(|e| Duration::from_secs((e - old.created_at).max(1) as u64)),
        rate_limit: old.rate_limit.map(|r| r as u32),
        metadata: serde_json::from_str(&old.metadata).ok(),
        owner_user_id: old.owner_user_id.clone(),
        owner_client_id: old.owner_client_id.clone(),
    };
    crate::db::transaction(conn, |conn| {
        // The old key's scopes are kept as they were, registered or not.
        let (new, secret) = new_key(
            conn,
            settings,
            hasher,
            &input,
            None,
            actor.clone(),
            origin.clone(),
        )?;
        let grace_end = now.saturating_add(grace.as_secs() as i64);
        let end = old.expires_at.map_or(grace_end, |e| e.min(grace_end));
        if !store::retire_rotated(conn, id, end, &new.id)? {
            // Rotated or revoked meanwhile: the new key is rolled back with the transaction.
            return Err(AppError::Conflict("api_key_already_rotated"));
        }
        audit::record(
            conn,
            audit::Event::new(actor, "api_key.rotate")
                .target("api_key", id)
                .origin(origin)
                .details(serde_json::json!({ "replaced_by": new.id, "old_expires_at": end })),
        )?;
        Ok((new, secret))
    })
}

/// The answer of a verification, as `code` in `/v1/keys/verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Valid,
    InvalidApiKey,
    ExpiredApiKey,
    RevokedApiKey,
    /// The key's owner (a user, or an app's owner) is disabled: refused until re-enabled.
    DisabledApiKey,
    InsufficientPermissions,
    RateLimited,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::InvalidApiKey => "invalid_api_key",
            Self::ExpiredApiKey => "expired_api_key",
            Self::RevokedApiKey => "revoked_api_key",
            Self::DisabledApiKey => "disabled_api_key",
            Self::InsufficientPermissions => "insufficient_permissions",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// Whether `presented` is well formed for one of the configured key types: no database work.
pub fn well_formed(settings: &Settings, presented: &str) -> bool {
    let prefixes = settings.key_types.iter().map(|k| k.prefix.as_str());
    format::parse(presented, prefixes).is_ok()
}

/// Verifies a presented key: format and checksum first (no database work), then one indexed lookup
/// by HMAC. Writes nothing. `required_env` refuses a test key where a live one is required.
pub fn verify(
    conn: &mut DbConn,
    settings: &Settings,
    hasher: &Hasher,
    presented: &str,
    required_scopes: &[String],
    required_env: Option<&str>,
) -> Result<(Code, Option<ApiKey>), AppError> {
    if !well_formed(settings, presented) {
        return Ok((Code::InvalidApiKey, None));
    }
    let hash = hasher.hash(KEY_PURPOSE, hash_input(presented));
    let key = store::find_by_hash(conn, &hash)?;
    let code = judge(
        settings,
        presented,
        key.as_ref(),
        required_scopes,
        required_env,
        db::now(),
    );
    Ok((code, key.filter(|_| code != Code::InvalidApiKey)))
}

/// Looks up the stored key with HMAC `hash` (one indexed query).
pub fn find_by_hash(conn: &mut DbConn, hash: &str) -> Result<Option<ApiKey>, AppError> {
    Ok(store::find_by_hash(conn, hash)?)
}

/// The verdict on the key looked up for `presented` at `now`: unknown, presented with another prefix or
/// environment than it was issued with, of a type no longer configured, or of the wrong environment →
/// invalid; then revoked, expired, of a disabled owner, lacking a scope, or valid.
/// Whether `presented` carries the prefix and length `key` was issued with (its last 49 characters
/// are what the stored HMAC covers).
pub fn issued_as(presented: &str, key: &ApiKey) -> bool {
    presented.len() == key.display_prefix.len() + format::BODY_LEN + format::CHECKSUM_LEN
        && presented.starts_with(&key.display_prefix)
}

pub fn judge(
    settings: &Settings,
    presented: &str,
    key: Option<&ApiKey>,
    required_scopes: &[String],
    required_env: Option<&str>,
    now: i64,
) -> Code {
    let Some(key) = key else {
        return Code::InvalidApiKey;
    };
    let known_type = settings.key_types.iter().any(|t| t.name == key.key_type);
    if !known_type
        || !issued_as(presented, key)
        || required_env.is_some_and(|e| e != key.environment)
    {
        return Code::InvalidApiKey;
    }
    match key.status(now) {
        KeyStatus::Revoked => Code::RevokedApiKey,
        KeyStatus::Expired => Code::ExpiredApiKey,
        _ if key.owner_disabled => Code::DisabledApiKey,
        _ if required_scopes.iter().any(|s| !key.grants(s)) => Code::InsufficientPermissions,
        _ => Code::Valid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_secret_part_is_hashed_but_the_prefix_must_match() {
        let settings = Settings::default();
        let key = format::generate("sk_", "live");
        let tail = std::str::from_utf8(hash_input(&key)).expect("ascii");
        assert_eq!(tail.len(), format::BODY_LEN + format::CHECKSUM_LEN);
        assert!(key.ends_with(tail));
        // "ak" + NUL + 49 bytes fit one SHA-256 block with its padding (at most 55 bytes).
        assert!(KEY_PURPOSE.len() + 1 + tail.len() <= 55);
        let row = ApiKey::fixture("key_1");
        assert_eq!(
            judge(&settings, &key, Some(&row), &[], None, 1),
            Code::Valid
        );
        for other in [
            format!("rk_live_{tail}"),
            format!("sk_test_{tail}"),
            format!("sk_live_x{tail}"),
        ] {
            assert_eq!(
                judge(&settings, &other, Some(&row), &[], None, 1),
                Code::InvalidApiKey,
                "{other}"
            );
        }
    }

    #[test]
    fn the_settings_name_every_presentation_and_key_type_access() {
        assert_eq!(
            Presentation::ALL.map(Presentation::as_str),
            crate::config::PRESENTATIONS
        );
        let settings = Settings::default();
        assert!(Presentation::ALL.iter().all(|p| p.allowed(&settings)));
        let types: Vec<(String, Access)> =
            key_types(&settings).map(|t| (t.name, t.access)).collect();
        assert_eq!(
            types,
            [("sk".into(), Access::Full), ("rk".into(), Access::Chosen)]
        );
        let listed = KeyTypeSetting {
            scopes: Some(vec!["a".into()]),
            ..settings.key_types[0].clone()
        };
        assert_eq!(
            KeyType::from_setting(&listed).access,
            Access::Listed(vec!["a".into()])
        );
    }
}
