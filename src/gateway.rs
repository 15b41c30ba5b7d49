//! Forward-auth for gateways, `GET|POST /v1/auth/check`: one endpoint for both kinds of credential,
//! an API key (checked by [`crate::apikeys`]) or a Tessera access token (checked by
//! [`crate::oauth`]), so it sits above both.

use actix_web::dev::Payload;
use actix_web::http::header::HeaderName;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::{Either, Ready, ready};
use serde::Deserialize;

use crate::apikeys::{ApiKeys, Code, check_key, presented, split_scopes};
use crate::error::AppError;
use crate::oauth::{OAuth, check_bearer};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/auth/check")
            .route(web::get().to(check))
            .route(web::post().to(check)),
    );
}

/// A forward-auth body: a JSON object whose `api_key` field is read when
/// `TESSERA_API_KEY_PRESENTATIONS` allows `body` (anything else in it is ignored).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "only the OpenAPI description names it")]
struct CheckBody {
    api_key: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CheckQuery {
    /// Scopes the credential must grant, space- or comma-separated (else `X-Required-Scopes`).
    scopes: Option<String>,
    /// The environment an API key must belong to (else `X-Required-Env`).
    env: Option<String>,
    /// The API the credential must be for (else `X-Required-Audience`).
    audience: Option<String>,
}

/// Forward-auth for gateways (nginx `auth_request`, Traefik `forwardAuth`, Envoy `ext_authz`): 200 with
/// `X-Auth-Subject`, `X-Auth-Scopes` and `X-Auth-Key-Id` or `X-Auth-Client-Id`; 401 / 403 / 429 with
/// the JSON error otherwise. Required scopes come from `?scopes=` or `X-Required-Scopes`, the required
/// API from `?audience=` or `X-Required-Audience` (a token must carry it as `aud`; a key made for named
/// APIs must name it, a key made for no API in particular passes for any).
#[utoipa::path(
    method(get, post),
    path = "/v1/auth/check",
    operation_id = "forward_auth",
    tag = "forward-auth",
    params(CheckQuery),
    request_body(content = Option<CheckBody>, description = "Optional: a JSON body with `api_key` (when that place is allowed)"),
    security(("x_api_key" = []), ("bearer" = []), ()),
    responses(
        (status = 200, description = "Allowed; who the caller is travels in the headers", headers(
            ("X-Auth-Subject" = String, description = "The user, client or key the credential stands for"),
            ("X-Auth-Scopes" = String, description = "Granted scopes, space-separated (`*`: all)"),
            ("X-Auth-Key-Id" = String, description = "The API key's id (API keys)"),
            ("X-Auth-Env" = String, description = "The API key's environment (API keys)"),
            ("X-Auth-Client-Id" = String, description = "The client the token was issued to (JWTs)"),
            ("X-Auth-Audience" = String, description = "The token's audience (JWTs)"),
            ("X-RateLimit-Limit" = u32, description = "Requests allowed per window"),
            ("X-RateLimit-Remaining" = u32, description = "Requests left in the window"),
            ("X-RateLimit-Reset" = i64, description = "When the window is full again (Unix seconds)"),
        )),
        (status = 401, description = "No credential, or not a valid one"),
        (status = 403, description = "Missing scopes, another API or environment"),
        (status = 413, description = "The body is too large"),
        (status = 429, description = "The credential's rate limit is used up"),
        (status = 503, description = "The database cannot serve now"),
    )
)]
async fn check(req: HttpRequest, body: MaybeBody) -> Result<HttpResponse, AppError> {
    // Borrowed from the app rather than extracted: an extractor clones each `Arc`, and two worker
    // threads counting up and down the same reference counts on every request share a cache line.
    let (Some(keys), Some(oauth)) = (
        req.app_data::<web::Data<ApiKeys>>(),
        req.app_data::<web::Data<OAuth>>(),
    ) else {
        return Err(AppError::Internal(
            "the app has no key or OAuth state".into(),
        ));
    };
    let out = check_request(&req, keys, oauth, &body.0).await;
    let code = match &out {
        Ok(_) => Code::Valid.as_str(),
        Err(e) => e.code(),
    };
    keys.metrics.key_verified("forward_auth", code);
    out
}

async fn check_request(
    req: &HttpRequest,
    keys: &web::Data<ApiKeys>,
    oauth: &web::Data<OAuth>,
    body: &[u8],
) -> Result<HttpResponse, AppError> {
    let none = CheckQuery {
        scopes: None,
        env: None,
        audience: None,
    };
    let query = match req.query_string() {
        "" => none,
        q => web::Query::<CheckQuery>::from_query(q).map_or(none, web::Query::into_inner),
    };
    let header = |name: &HeaderName| {
        req.headers()
            .get(name)
            .and_then(crate::request::header_text)
            .map(str::to_owned)
    };
    let required = query
        .scopes
        .or_else(|| header(&REQUIRED_SCOPES))
        .map(|s| split_scopes(&s))
        .unwrap_or_default();
    let env = query.env.or_else(|| header(&REQUIRED_ENV));
    let audience = query
        .audience
        .or_else(|| header(&REQUIRED_AUDIENCE))
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty());
    let Some(credential) = presented(req, keys, body) else {
        return Err(AppError::Unauthorized("missing_api_key"));
    };
    tracing::debug!(place = credential.place.as_str(), "credential presented");
    if credential.is_jwt {
        return check_bearer(oauth, &credential.value, required, audience).await;
    }
    check_key(keys, credential, required, env, audience).await
}

const REQUIRED_SCOPES: HeaderName = HeaderName::from_static("x-required-scopes");
const REQUIRED_ENV: HeaderName = HeaderName::from_static("x-required-env");
const REQUIRED_AUDIENCE: HeaderName = HeaderName::from_static("x-required-audience");

/// The request body as `web::Bytes` reads it (the same limit and errors), or nothing at once when the
/// request has none: a gateway's `GET` carries its credential in a header, and setting up the body
/// reader for an empty body was a few percent of forward-auth's work.
struct MaybeBody(web::Bytes);

impl FromRequest for MaybeBody {
    type Error = actix_web::Error;
    type Future = Either<
        Ready<Result<Self, actix_web::Error>>,
        futures_util::future::MapOk<
            <web::Bytes as FromRequest>::Future,
            fn(web::Bytes) -> MaybeBody,
        >,
    >;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        use futures_util::TryFutureExt as _;
        if matches!(payload, Payload::None) {
            return Either::Left(ready(Ok(MaybeBody(web::Bytes::new()))));
        }
        Either::Right(web::Bytes::from_request(req, payload).map_ok(MaybeBody as fn(_) -> _))
    }
}

/// The operations and types of this module, for `/openapi.json`.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(check))]
pub struct Docs;
