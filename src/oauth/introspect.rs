//! `POST /oauth/introspect` (RFC 7662): a resource server (a confidential client marked as one, or
//! an API key granting `introspect`) asks whether a token is active. Token kinds are told apart by
//! shape, as at revocation.

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde_json::json;

use super::credentials::{AuthenticatedClient, Credentials, authenticate, throttle_failed_auth};
use super::params::{RevokeForm, TokenKind, no_store, request_parts};
use super::store;
use super::token::REFRESH_PURPOSE;

use super::access::{access_token_hash, cached_access, verify_access};
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::i18n::Detail;
use crate::jwt::AccessClaims;
use crate::oauth::OAuth;
use crate::request::header_text;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(introspect);
}

/// RFC 7662: a confidential client (a resource server) asks whether a token is active. Expired,
/// revoked, malformed and foreign tokens are all just `{"active": false}`. Rate limited per caller.
/// What a caller may learn is bounded by its [`Reach`]: a client not marked as a resource server
/// learns nothing, a marked one only about tokens of its APIs.
#[utoipa::path(
    operation_id = "introspect",
    tag = "oauth",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    security(("client_basic" = []), ("bearer" = []), ("x_api_key" = []), ()),
    responses(
        (status = 200, description = "The token's state (RFC 7662 §2.2)", body = Introspection, headers(
            ("X-RateLimit-Limit" = u32, description = "Introspections allowed to the caller per window"),
            ("X-RateLimit-Remaining" = u32, description = "Requests left in the window"),
            ("X-RateLimit-Reset" = i64, description = "When the window is full again (Unix seconds)"),
        )),
        (status = 400, description = "invalid_request: a malformed request"),
        (status = 401, description = "invalid_client: not a confidential client, or an unusable API key"),
        (status = 403, description = "insufficient_scope: the API key does not grant `introspect`"),
        (status = 413, description = "The body is too large"),
        (status = 429, description = "The caller's introspection limit is used up, or too many failed authentications"),
        (status = 503, description = "The database cannot serve now"),
    )
)]
#[post("/oauth/introspect")]
async fn introspect(
    req: HttpRequest,
    state: web::Data<OAuth>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    throttle_failed_auth(&state, &req, || {
        introspect_request(req.clone(), state.clone(), body)
    })
    .await
}

async fn introspect_request(
    req: HttpRequest,
    state: web::Data<OAuth>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (form, token) = request_parts(&req, &body)?;
    let caller = match caller_api_key(&req, form.authorization, &state.settings) {
        Some(key) => Caller::ApiKey(key),
        None => {
            let credentials = Credentials::parse(&form)?;
            let client = authenticate(&state, credentials.as_ref(), "/oauth/introspect").await?;
            if !client.is_confidential() {
                return Err(AppError::oauth(
                    "invalid_client",
                    Detail::IntrospectionNeedsConfidential,
                ));
            }
            Caller::Client(client)
        }
    };
    let order = TokenKind::order(form.get("token_type_hint"));
    // Fast path: an access token this node checked within the cache TTL.
    if let Caller::Client(AuthenticatedClient { client, .. }) = &caller
        && TokenKind::AccessToken.fits(&token, &state.settings)
        && let Some(claims) = cached_access(&state, &access_token_hash(&state, &token), &token)
    {
        let limit = introspection_limit(&state, &client.id).await?;
        // `Reach::of_client(client).allows(aud)`, without building the reach.
        let answer = if client.introspects_for(&claims.aud) {
            FastAnswer::Active(active_access(&claims))
        } else {
            FastAnswer::Inactive { active: false }
        };
        return Ok(introspection_answer(&answer, &limit));
    }
    // Boxed: a cached token, the common case, keeps a small future (actix boxes each request's).
    Box::pin(introspect_uncached(
        state,
        caller,
        order,
        token.into_owned(),
    ))
    .await
}

/// A token not in the cache: the caller is authenticated and the token looked up in one pass on the
/// connection; the limit is counted after (an over-limit caller gets 429 and never sees the answer).
async fn introspect_uncached(
    state: web::Data<OAuth>,
    caller: Caller,
    order: [TokenKind; 3],
    token: String,
) -> Result<HttpResponse, AppError> {
    let st = state.clone();
    let (caller, answer) = db::run(&state.pool, move |conn| {
        let (caller, reach) = match caller {
            Caller::Client(AuthenticatedClient { client, .. }) => {
                (client.id.to_string(), Reach::of_client(&client))
            }
            Caller::ApiKey(key) => {
                let (id, reach) = introspecting_key(conn, &st, &key)?;
                (id, Some(reach))
            }
        };
        let Some(reach) = reach else {
            return Ok((caller, json!({ "active": false })));
        };
        for kind in order.into_iter().filter(|k| k.fits(&token, &st.settings)) {
            if let Some(answer) = introspect_one(conn, &st, kind, &token)? {
                if !reach.sees(&answer) {
                    return Ok((caller, json!({ "active": false })));
                }
                return Ok((caller, answer));
            }
        }
        Ok((caller, json!({ "active": false })))
    })
    .await?;
    let limit = introspection_limit(&state, &caller).await?;
    Ok(introspection_answer(&answer, &limit))
}

/// The caller's introspection limit, counted once it is authenticated and before it sees an answer
/// (an over-limit caller gets 429 and never sees the answer).
async fn introspection_limit(
    state: &OAuth,
    caller: &str,
) -> Result<crate::ratelimit::Decision, AppError> {
    let limit = state
        .limits
        .check(crate::ratelimit::Bucket::Introspection, caller, None)
        .await;
    if limit.allowed {
        Ok(limit)
    } else {
        Err(limit.refused())
    }
}

/// The answer with the limit's headers; never stored by a cache (it may carry a token's claims).
fn introspection_answer(
    answer: &impl serde::Serialize,
    limit: &crate::ratelimit::Decision,
) -> HttpResponse {
    no_store(crate::ratelimit::with_headers(
        HttpResponse::Ok().json(answer),
        limit,
    ))
}

/// What an introspecting caller may learn about. A client marked as a resource server reaches the
/// tokens whose audience is one of its APIs, and the API keys made for one of them or for no API in
/// particular. An API key granting `introspect` reaches the tokens of its APIs (every API when it was
/// made for none) and the API keys of its own environment.
struct Reach {
    /// The caller's APIs; `None`: every API.
    audiences: Option<Vec<String>>,
    /// An API-key caller's environment: it sees only keys of that environment.
    env: Option<String>,
}

impl Reach {
    /// A client's reach: `None` for a client not marked as a resource server.
    fn of_client(client: &super::Client) -> Option<Self> {
        let audiences = client.introspect_audiences();
        (!audiences.is_empty()).then(|| Self {
            audiences: Some(audiences.into_iter().map(str::to_owned).collect()),
            env: None,
        })
    }

    fn of_key(key: &crate::apikeys::ApiKey) -> Self {
        let audiences = key.audience_list();
        Self {
            audiences: (!audiences.is_empty())
                .then(|| audiences.into_iter().map(str::to_owned).collect()),
            env: Some(key.environment.clone()),
        }
    }

    /// Whether a credential for `theirs` (`None`: an API key made for any API) is within reach.
    fn allows(&self, theirs: Option<&[&str]>) -> bool {
        match (&self.audiences, theirs) {
            (None, _) | (_, None) => true,
            (Some(mine), Some(theirs)) => theirs.iter().any(|t| mine.iter().any(|m| m == t)),
        }
    }

    /// Whether the caller may see this answer: an inactive one always; an active one when its
    /// audience (`aud`, a string or a list) is within reach and, for an API key, of the caller's
    /// environment.
    fn sees(&self, answer: &serde_json::Value) -> bool {
        if answer["active"] != true {
            return true;
        }
        if answer["token_type"] == "api_key"
            && let Some(env) = &self.env
            && answer["env"] != env.as_str()
        {
            return false;
        }
        let theirs: Option<Vec<&str>> = match &answer["aud"] {
            serde_json::Value::String(a) => Some(vec![a.as_str()]),
            serde_json::Value::Array(list) => {
                Some(list.iter().filter_map(serde_json::Value::as_str).collect())
            }
            _ => None,
        };
        self.allows(theirs.as_deref())
    }
}

/// The fast path's answer: the cached token's claims, or inactive when out of the caller's reach.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum FastAnswer<'a> {
    Active(ActiveAccess<'a>),
    Inactive { active: bool },
}

/// The scope an API key needs to call the introspection endpoint (full-access `sk` keys have it).
pub const INTROSPECT_SCOPE: &str = "introspect";

/// Who calls the introspection endpoint: a confidential client, or an API key granting `introspect`.
enum Caller {
    Client(AuthenticatedClient),
    ApiKey(String),
}

/// An API key presented by the caller (`Authorization: Bearer` or `X-API-Key`) instead of client
/// credentials: a well-formed key of a configured type. Anything else is left to client authentication.
fn caller_api_key(
    req: &HttpRequest,
    authorization: Option<&str>,
    settings: &crate::config::Settings,
) -> Option<String> {
    let bearer = authorization
        .and_then(|a| a.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, v)| v.trim());
    let header = req
        .headers()
        .get("x-api-key")
        .and_then(header_text)
        .map(str::trim);
    bearer
        .or(header)
        .filter(|k| crate::apikeys::well_formed(settings, k))
        .map(str::to_owned)
}

/// The id and reach of the API key calling the introspection endpoint: valid and granting
/// `introspect`.
fn introspecting_key(
    conn: &mut DbConn,
    state: &OAuth,
    key: &str,
) -> Result<(String, Reach), AppError> {
    use crate::apikeys::Code;
    let scopes = [INTROSPECT_SCOPE.to_owned()];
    let (code, found) =
        crate::apikeys::verify(conn, &state.settings, &state.hasher, key, &scopes, None)?;
    match (code, found) {
        (Code::Valid, Some(key)) => Ok((key.id.to_string(), Reach::of_key(&key))),
        (Code::InsufficientPermissions, _) => Err(AppError::OAuth {
            status: actix_web::http::StatusCode::FORBIDDEN,
            error: "insufficient_scope",
            detail: Some(Detail::Value {
                value: INTROSPECT_SCOPE.to_owned(),
            }),
        }),
        (code, _) => Err(AppError::oauth(
            "invalid_client",
            Detail::ApiKeyNotUsable {
                code: code.as_str(),
            },
        )),
    }
}

/// The introspection answer for `token` as `kind`, or `None` when it is not a token of that kind.
fn introspect_one(
    conn: &mut DbConn,
    state: &OAuth,
    kind: TokenKind,
    token: &str,
) -> Result<Option<serde_json::Value>, AppError> {
    let now = db::now();
    let inactive = || Ok(Some(json!({ "active": false })));
    match kind {
        TokenKind::ApiKey => {
            let (code, key) =
                crate::apikeys::verify(conn, &state.settings, &state.hasher, token, &[], None)?;
            let Some(key) = key else {
                return Ok(None);
            };
            if code != crate::apikeys::Code::Valid {
                return inactive();
            }
            let view = key.view(now);
            let mut answer = json!({
                "active": true,
                "token_type": "api_key",
                "scope": view.scopes.join(" "),
                "client_id": key.owner_client_id,
                "sub": key.owner_user_id.clone().or(key.owner_client_id.clone()).unwrap_or(key.id.to_string()),
                "iss": state.settings.issuer_str(),
                "exp": key.expires_at,
                "iat": key.created_at,
                "key_id": key.id,
                "key_type": key.key_type,
                "env": key.environment,
                "aud": (!key.audiences.is_empty()).then(|| key.audience_list()),
            });
            if let Some(fields) = answer.as_object_mut() {
                fields.retain(|_, v| !v.is_null());
            }
            Ok(Some(answer))
        }
        TokenKind::AccessToken => {
            // A JWT that fails any check is inactive (no other kind has this shape).
            match verify_access(conn, state, access_token_hash(state, token), token)? {
                Some(c) => serde_json::to_value(active_access(&c))
                    .map(Some)
                    .map_err(|e| AppError::internal(format!("introspection answer: {e}"))),
                None => inactive(),
            }
        }
        TokenKind::RefreshToken => {
            let hash = state.hasher.hash(REFRESH_PURPOSE, token.as_bytes());
            let Some(row) = store::find_refresh(conn, &hash)? else {
                return Ok(None);
            };
            if row.token_used
                || row.user_disabled
                || row.family_revoked
                || row.token_expires_at <= now
                || row.family_expires_at <= now
                || !client_active(conn, &row.client_id)?
            {
                return inactive();
            }
            Ok(Some(json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": row.scope,
                "client_id": row.client_id,
                "sub": row.user_id.clone().unwrap_or_else(|| row.client_id.clone()),
                "aud": row.audience,
                "iss": state.settings.issuer_str(),
                "exp": row.token_expires_at,
                "iat": row.token_created_at,
            })))
        }
    }
}

/// The introspection answer for an active access token (serialized straight from its claims).
#[derive(serde::Serialize)]
struct ActiveAccess<'a> {
    active: bool,
    token_type: &'static str,
    scope: &'a str,
    client_id: &'a str,
    sub: &'a str,
    aud: &'a str,
    iss: &'a str,
    exp: i64,
    iat: i64,
    jti: &'a str,
}

fn active_access(c: &AccessClaims) -> ActiveAccess<'_> {
    ActiveAccess {
        active: true,
        token_type: "Bearer",
        scope: &c.scope,
        client_id: &c.client_id,
        sub: &c.sub,
        aud: &c.aud,
        iss: &c.iss,
        exp: c.exp,
        iat: c.iat,
        jti: &c.jti,
    }
}

/// A token dies with its client: the tokens of a disabled or deleted client, or of a client whose
/// owner is disabled, are inactive.
fn client_active(conn: &mut DbConn, client_id: &str) -> Result<bool, AppError> {
    Ok(store::find_client(conn, client_id)?.is_some_and(|c| c.enabled()))
}

/// An introspection answer (RFC 7662 §2.2): `{"active": false}` for anything not active or out of
/// the caller's reach, else the token's facts (built by `active_access` and `introspect_one`).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "only the OpenAPI description names it")]
struct Introspection {
    active: bool,
    /// `Bearer` (an access token), `refresh_token` or `api_key`.
    token_type: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    iss: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
    /// API keys: the key's id, type and environment.
    key_id: Option<String>,
    key_type: Option<String>,
    env: Option<String>,
}

/// A token's audience; an API key made for several APIs names them all.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "only the OpenAPI description names it")]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The operations and types of this module, for `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(introspect))]
pub(super) struct Docs;
