//! `POST /v1/keys/verify`, and the API-key half of the forward-auth endpoint (the gateway module).

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::Deserialize;

use super::usage::Outcome;
use std::sync::Arc;

use super::cache::CachedKey;
use super::{ApiKey, Code, Presentation};
use crate::apikeys::ApiKeys;
use crate::cache::Lookup;
use crate::db;
use crate::error::AppError;
use crate::i18n::{Detail, Lang};
use crate::ratelimit::{Bucket, Decision};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(verify_key);
}

/// Scopes from a list or a space/comma-separated string.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum Scopes {
    List(Vec<String>),
    Text(String),
}

impl Scopes {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::List(l) => l,
            Self::Text(t) => split_scopes(&t),
        }
    }
}

pub fn split_scopes(text: &str) -> Vec<String> {
    text.split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The body of `POST /v1/keys/verify`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    /// The API key presented to the caller.
    key: String,
    /// Scopes the key must grant (all of them).
    required_scopes: Option<Scopes>,
    /// The environment the key must belong to (`live` or `test`).
    required_env: Option<String>,
}

use crate::request::{client_addr, header_text};

/// 403 `invalid_audience`: the credential is not for the API the gateway asked about.
pub fn wrong_audience(audience: &str) -> AppError {
    AppError::forbidden(
        "invalid_audience",
        Detail::Value {
            value: audience.chars().take(128).collect(),
        },
    )
}

/// Counts an allowed or rate-limited request in the key's usage.
fn record(state: &ApiKeys, key: &ApiKey, limit: &Decision) {
    let outcome = if limit.allowed {
        Outcome::Allowed
    } else {
        Outcome::RateLimited
    };
    state.usage.record(&key.id, outcome, db::now());
}

/// Counts a request against the key's limit: its own, else `TESSERA_API_KEY_RATE_LIMIT` per 15 minutes.
async fn key_limit(state: &ApiKeys, key: &ApiKey) -> Decision {
    let own = key.rate_limit.and_then(|r| u32::try_from(r).ok());
    state.limits.check(Bucket::ApiKey, &key.id, own).await
}

/// `POST /v1/keys/verify {key, required_scopes?, required_env?}`: holding the key is the proof, so the
/// caller needs no credential of its own, but each IP is rate limited. An unknown key gets
/// `invalid_api_key` and nothing more.
#[utoipa::path(
    operation_id = "verify_key",
    tag = "keys",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "The verdict (every known outcome is 200; see `valid` and `code`)",
            body = VerifyAnswer, headers(
                ("X-RateLimit-Limit" = u32, description = "Requests allowed to this IP per window"),
                ("X-RateLimit-Remaining" = u32, description = "Requests left in the window"),
                ("X-RateLimit-Reset" = i64, description = "When the window is full again (Unix seconds)"),
            )),
        (status = 400, description = "Malformed body"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not JSON"),
        (status = 429, description = "Too many verifications from this IP"),
        (status = 503, description = "The database cannot serve now"),
    )
)]
#[post("/v1/keys/verify")]
async fn verify_key(
    req: HttpRequest,
    state: web::Data<ApiKeys>,
    ctx: crate::request::RequestContext,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, AppError> {
    // The answer is 200 whatever the result: the metrics count by the code it carries.
    let out = verify(&req, &state, ctx.lang, body).await;
    let code = match &out {
        Ok((_, code)) => code.as_str(),
        Err(e) => e.code(),
    };
    state.metrics.key_verified("verify", code);
    out.map(|(res, _)| res)
}

/// The answer of `POST /v1/keys/verify` and its code.
async fn verify(
    req: &HttpRequest,
    state: &web::Data<ApiKeys>,
    lang: crate::i18n::Lang,
    body: web::Json<VerifyRequest>,
) -> Result<(HttpResponse, Code), AppError> {
    let network = crate::ratelimit::Network::of(client_addr(req));
    let ip = state.limits.check_network(Bucket::Ip, network).await;
    if !ip.allowed {
        return Err(ip.refused());
    }
    let VerifyRequest {
        key,
        required_scopes,
        required_env,
    } = body.into_inner();
    let scopes = required_scopes.map(Scopes::into_vec).unwrap_or_default();
    let (code, found) = lookup(state, &key, scopes, required_env).await?;
    let mut res = HttpResponse::Ok();
    for (name, value) in ip.headers() {
        res.insert_header((name, value));
    }
    res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    res.insert_header((header::CONTENT_LANGUAGE, lang.tag()));
    if let Some(key) = &found
        && code != Code::Valid
    {
        state.usage.record(&key.id, Outcome::Denied, db::now());
    }
    let Some(key) = found.filter(|_| code != Code::InvalidApiKey) else {
        // An unknown key learns nothing more.
        return Ok((res.json(VerifyAnswer::bare(code, lang)), code));
    };
    let (code, ratelimit) = if code == Code::Valid {
        let limit = key_limit(state, &key).await;
        record(state, &key, &limit);
        let code = if limit.allowed {
            Code::Valid
        } else {
            Code::RateLimited
        };
        (code, Some(limit))
    } else {
        (code, None)
    };
    let scopes = if key.full_access() {
        vec![super::model::ALL_SCOPES]
    } else {
        key.scope_list()
    };
    let answer = res.json(VerifyAnswer {
        valid: code == Code::Valid,
        code: code.as_str(),
        message: refusal(code, lang),
        key: Some(KeyFacts {
            key_id: &key.id,
            name: &key.name,
            r#type: &key.key_type,
            env: &key.environment,
            scopes,
            owner: key.owner(),
            expires_at: key.expires_at,
        }),
        ratelimit: ratelimit.map(|l| RateLimitFacts {
            limit: l.limit,
            remaining: l.remaining,
            reset: l.reset,
        }),
    });
    Ok((answer, code))
}

/// The answer of `POST /v1/keys/verify`, serialized straight from the cached key.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct VerifyAnswer<'a> {
    valid: bool,
    /// `valid`, `invalid_api_key`, `expired_api_key`, `revoked_api_key`, `disabled_api_key`,
    /// `insufficient_permissions` or `rate_limited`.
    #[schema(value_type = String, example = "valid")]
    code: &'static str,
    /// Why the key is refused, in the caller's language; absent when it is valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// The key's facts: absent for an unknown key.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    key: Option<KeyFacts<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ratelimit: Option<RateLimitFacts>,
}

impl VerifyAnswer<'_> {
    fn bare(code: Code, lang: Lang) -> Self {
        Self {
            valid: code == Code::Valid,
            code: code.as_str(),
            message: refusal(code, lang),
            key: None,
            ratelimit: None,
        }
    }
}

/// The catalogue message for a refused key's `code` (none for a valid key).
fn refusal(code: Code, lang: Lang) -> Option<String> {
    (code != Code::Valid).then(|| crate::i18n::message(lang, code.as_str(), None))
}

/// What the verify answer tells of a known key (beside `valid` and `code`; absent for an unknown
/// key, hence not required).
#[derive(serde::Serialize, utoipa::ToSchema)]
struct KeyFacts<'a> {
    #[schema(required = false)]
    key_id: &'a str,
    #[schema(required = false)]
    name: &'a str,
    #[schema(required = false)]
    r#type: &'a str,
    #[schema(required = false)]
    env: &'a str,
    #[schema(required = false)]
    scopes: Vec<&'a str>,
    owner: Option<super::model::Owner>,
    expires_at: Option<i64>,
}

/// The key's own rate limit after this request.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct RateLimitFacts {
    limit: u32,
    remaining: u32,
    reset: i64,
}

/// Verifies a presented key: the per-node cache of recent lookups by HMAC first, then, for a key the
/// cache does not know, format and checksum (no database work, nothing counted for a malformed key)
/// and one indexed query. Writes nothing.
///
/// A cached key presented with its stored prefix and length needs no format check: the HMAC covers
/// the key's last 49 characters, so it is the very key that was issued, well formed when it was (the
/// cache only learns keys that passed the check). The HMAC input is those 49 bytes whatever was
/// presented, so a malformed key costs one short HMAC more than before, not more.
async fn lookup(
    state: &web::Data<ApiKeys>,
    key: &str,
    scopes: Vec<String>,
    env: Option<String>,
) -> Result<(Code, Option<Arc<CachedKey>>), AppError> {
    let hash = super::cache::KeyHash(
        state
            .hasher
            .hash_raw(super::KEY_PURPOSE, super::hash_input(key)),
    );
    let found = state.key_cache.find(&hash);
    // A cached key presented with its issued prefix and length is the issued key itself (the HMAC
    // covers the rest). Anything else is checked as on a miss: a malformed key is refused before
    // it counts as a lookup, here and in the cache's hits and misses.
    let issued = match &found {
        Lookup::Hit(Some(k)) | Lookup::Refresh(Some(k)) => super::issued_as(key, k),
        _ => false,
    };
    if !issued && !super::well_formed(&state.settings, key) {
        return Ok((Code::InvalidApiKey, None)); // no database work for a malformed key
    }
    state.key_cache.count(&found);
    state.metrics.api_key_lookup();
    let found = match found {
        Lookup::Hit(found) => {
            state.metrics.api_key_cache_hit();
            found
        }
        Lookup::Refresh(found) => {
            // Re-read in the background: no request waits on the database for a busy key. On a
            // database error the old answer stays until its limit, then requests look it up. (A
            // malformed key refused above leaves the re-read to the next request past the limit.)
            state.metrics.api_key_cache_hit();
            let st = state.clone();
            actix_web::rt::spawn(async move {
                let _ = read_key(&st, hash).await;
            });
            found
        }
        // Boxed: a cache hit, the common case, keeps a small future.
        Lookup::Miss => Box::pin(read_key(state, hash)).await?,
    };
    let code = super::judge(
        &state.settings,
        key,
        found.as_deref().map(|k| &k.value),
        &scopes,
        env.as_deref(),
        db::now(),
    );
    Ok((code, found.filter(|_| code != Code::InvalidApiKey)))
}

/// Reads the key with this hash from the database and caches the answer (unless an invalidation
/// happened meanwhile).
async fn read_key(
    state: &web::Data<ApiKeys>,
    hash: super::cache::KeyHash,
) -> Result<Option<Arc<CachedKey>>, AppError> {
    let generation = state.key_cache.generation();
    let hex = crate::crypto::hex(&hash.0);
    let found = db::run(&state.pool, move |conn| super::find_by_hash(conn, &hex))
        .await?
        .map(|key| Arc::new(super::cache::cached(key)));
    state.key_cache.put(hash, found.clone(), generation);
    Ok(found)
}

/// Where the credential of a forward-auth request was found.
/// A header's credential is borrowed from the request; one from a query or a body is decoded.
pub struct Presented<'r> {
    pub value: std::borrow::Cow<'r, str>,
    pub place: Presentation,
    /// A JWT (three dot-separated parts) rather than an API key: looked at once, when found.
    pub is_jwt: bool,
}

impl<'r> Presented<'r> {
    /// A credential header that is not visible ASCII: no key or token can be in it, so it is
    /// answered as a wrong credential (`invalid_api_key`), not as a missing one.
    const fn unreadable(place: Presentation) -> Self {
        Self {
            value: std::borrow::Cow::Borrowed(""),
            place,
            is_jwt: false,
        }
    }

    fn new(value: impl Into<std::borrow::Cow<'r, str>>, place: Presentation) -> Self {
        let value = value.into();
        let is_jwt = looks_like_jwt(&value);
        Self {
            value,
            place,
            is_jwt,
        }
    }
}

/// Three dot-separated parts (an API key has no dot): exactly two dots, found with memchr's vector
/// scans (a JWT is hundreds of bytes; a byte-by-byte count was a twelfth of a JWT check).
fn looks_like_jwt(value: &str) -> bool {
    let mut dots = memchr::memchr_iter(b'.', value.as_bytes());
    dots.next().is_some() && dots.next().is_some() && dots.next().is_none()
}

/// The scheme of a `Bearer` or `Token` authorization that is not visible ASCII (a key or token
/// with a byte no key or token has); `None` for a readable header or another scheme.
fn unreadable_scheme(auth: &HeaderValue) -> Option<Presentation> {
    if header_text(auth).is_some() {
        return None;
    }
    let bytes = auth.as_bytes();
    let scheme = |name: &[u8]| {
        bytes.len() > name.len()
            && bytes[..name.len()].eq_ignore_ascii_case(name)
            && bytes[name.len()] == b' '
    };
    if scheme(b"bearer") {
        Some(Presentation::Bearer)
    } else if scheme(b"token") {
        Some(Presentation::Token)
    } else {
        None
    }
}

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// `Debug` never prints the presented credential.
impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("required_scopes", &self.required_scopes)
            .field("required_env", &self.required_env)
            .finish_non_exhaustive()
    }
}

fn allowed(state: &ApiKeys, place: Presentation) -> bool {
    place.allowed(&state.settings)
}

fn query_key(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "api_key")
        .map(|(_, v)| v.into_owned())
}

/// Finds the credential in the places API clients use: `Authorization: Bearer|Token`, `X-API-Key`,
/// the `api_key` query parameter (of this request, or of the original request a gateway names in
/// `X-Original-URI` / `X-Forwarded-Uri`), or an `api_key` field of a JSON body. Places switched off in
/// the configuration are not looked at; a Bearer JWT (an OAuth access token) is always accepted.
pub fn presented<'r>(
    req: &'r HttpRequest,
    state: &ApiKeys,
    body: &'r [u8],
) -> Option<Presented<'r>> {
    let headers = req.headers();
    let auth = headers.get(header::AUTHORIZATION);
    if let Some(place) = auth.and_then(unreadable_scheme)
        && (place == Presentation::Bearer || allowed(state, place))
    {
        return Some(Presented::unreadable(place));
    }
    // ASCII trims and a byte search: the header is ASCII (`header_text`), and `str::trim` and
    // `split_once` walk it as chars (a few hundred instructions on every request).
    if let Some(auth) = auth.and_then(header_text)
        && let auth = auth.trim_ascii()
        && let Some(space) = memchr::memchr(b' ', auth.as_bytes())
    {
        let (scheme, value) = (&auth[..space], auth[space + 1..].trim_ascii());
        if scheme.eq_ignore_ascii_case("bearer") {
            let is_jwt = looks_like_jwt(value);
            if is_jwt || allowed(state, Presentation::Bearer) {
                return Some(Presented {
                    value: value.into(),
                    place: Presentation::Bearer,
                    is_jwt,
                });
            }
        }
        if scheme.eq_ignore_ascii_case("token") && allowed(state, Presentation::Token) {
            return Some(Presented::new(value, Presentation::Token));
        }
    }
    if allowed(state, Presentation::XApiKey)
        && let Some(v) = headers.get(X_API_KEY)
    {
        return Some(
            header_text(v).map_or(Presented::unreadable(Presentation::XApiKey), |v| {
                Presented::new(v.trim(), Presentation::XApiKey)
            }),
        );
    }
    if allowed(state, Presentation::Query) {
        let original = ["x-original-uri", "x-forwarded-uri"]
            .iter()
            .filter_map(|h| headers.get(*h).and_then(header_text))
            .filter_map(|uri| uri.split_once('?').map(|(_, q)| q.to_owned()))
            .find_map(|q| query_key(&q));
        if let Some(value) = query_key(req.query_string()).or(original) {
            tracing::warn!(
                "an API key was sent in a URL query; URLs end up in logs: send it in a header"
            );
            return Some(Presented::new(value, Presentation::Query));
        }
    }
    if allowed(state, Presentation::Body)
        && !body.is_empty()
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(k) = v.get("api_key").and_then(|k| k.as_str())
    {
        return Some(Presented::new(k.to_owned(), Presentation::Body));
    }
    None
}

/// The API-key half of forward-auth (`/v1/auth/check`, in the gateway module): the key, its
/// scopes, environment and API, its rate limit, and the headers that say who the caller is.
pub async fn check_key(
    state: &web::Data<ApiKeys>,
    credential: Presented<'_>,
    required: Vec<String>,
    env: Option<String>,
    audience: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (code, key) = lookup(state, &credential.value, required, env).await?;
    if let (false, Some(key)) = (code == Code::Valid, &key) {
        state.usage.record(&key.id, Outcome::Denied, db::now());
    }
    let key = match (code, key) {
        (Code::Valid, Some(key)) => key,
        (Code::InsufficientPermissions, _) => {
            return Err(AppError::Forbidden("insufficient_permissions"));
        }
        (Code::ExpiredApiKey, _) => return Err(AppError::Unauthorized("expired_api_key")),
        (Code::RevokedApiKey, _) => return Err(AppError::Unauthorized("revoked_api_key")),
        (Code::DisabledApiKey, _) => return Err(AppError::Unauthorized("disabled_api_key")),
        _ => return Err(AppError::Unauthorized("invalid_api_key")),
    };
    if let Some(audience) = audience
        && !key.serves(&audience)
    {
        state.usage.record(&key.id, Outcome::Denied, db::now());
        return Err(wrong_audience(&audience));
    }
    let limit = key_limit(state, &key).await;
    record(state, &key, &limit);
    if !limit.allowed {
        return Err(limit.refused());
    }
    let Some(identity) = key.headers.as_deref() else {
        return Err(AppError::Internal(
            "a stored key field is not a valid header value".into(),
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

/// The operations and types of this module, for `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(verify_key))]
pub(super) struct Docs;

#[cfg(test)]
mod tests {
    use super::looks_like_jwt;

    #[test]
    fn a_jwt_has_exactly_two_dots() {
        for (value, jwt) in [
            ("a.b.c", true),
            ("..", true),
            ("eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl", true),
            ("sk_live_abc", false),
            ("a.b", false),
            ("a.b.c.d", false),
            ("", false),
            (".", false),
            ("...", false),
        ] {
            assert_eq!(looks_like_jwt(value), jwt, "{value:?}");
        }
        let long = format!("{}.{}.{}", "h".repeat(300), "p".repeat(400), "s".repeat(90));
        assert!(looks_like_jwt(&long));
        assert!(!looks_like_jwt(&format!("{long}.")));
    }
}
