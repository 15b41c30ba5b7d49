//! `/v1/keys`: the JSON API that manages keys, for an admin session or a key granting `admin`.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};

use super::{
    ApiKeyId, KeyInput, create_key, find_key_in, list_env_keys, list_keys, revoke_key, rotate_key,
    verify,
};
use crate::apikeys::ApiKeys;
use crate::audit::{Actor, Origin};
use crate::db;
use crate::error::AppError;
use crate::i18n::Detail;
use crate::request::header_text;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create)
        .service(list)
        .service(show)
        .service(revoke)
        .service(rotate);
}

/// Who manages keys, and the environment they are bound to.
struct Manager {
    actor: Actor,
    /// A key manages only keys of its own environment (`live` or `test`); a session manages all.
    env: Option<String>,
}

impl Manager {
    /// 403 `wrong_environment` unless a key of `env` is this manager's to make.
    fn may_make(&self, env: &str) -> Result<(), AppError> {
        match &self.env {
            Some(own) if own != env.trim() => Err(AppError::forbidden(
                "wrong_environment",
                Detail::Value { value: own.clone() },
            )),
            _ => Ok(()),
        }
    }
}

/// Who may manage keys: an administrator's session (from our own origin), or a caller presenting an
/// API key that grants `admin` (an `sk` key, a custom full-access type, or a restricted key with the
/// `admin` scope), bound to its own environment.
async fn admin(req: &HttpRequest, state: &web::Data<ApiKeys>) -> Result<Manager, AppError> {
    let bearer = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(header_text)
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim().to_owned())
        .or_else(|| {
            req.headers()
                .get("x-api-key")
                .and_then(header_text)
                .map(|v| v.trim().to_owned())
        });
    if let Some(presented) = bearer {
        if !super::well_formed(&state.settings, &presented) {
            return Err(AppError::Unauthorized("invalid_api_key"));
        }
        state.metrics.api_key_lookup();
        let st = state.clone();
        let (code, key) = db::run(&state.pool, move |conn| {
            verify(
                conn,
                &st.settings,
                &st.hasher,
                &presented,
                &["admin".to_owned()],
                None,
            )
        })
        .await?;
        return match (code, key) {
            (super::Code::Valid, Some(key)) => Ok(Manager {
                actor: Actor::ApiKey(key.id.into_string()),
                env: Some(key.environment),
            }),
            (super::Code::InsufficientPermissions, _) => {
                Err(AppError::Forbidden("insufficient_permissions"))
            }
            (super::Code::ExpiredApiKey, _) => Err(AppError::Unauthorized("expired_api_key")),
            (super::Code::RevokedApiKey, _) => Err(AppError::Unauthorized("revoked_api_key")),
            (super::Code::DisabledApiKey, _) => Err(AppError::Unauthorized("disabled_api_key")),
            _ => Err(AppError::Unauthorized("invalid_api_key")),
        };
    }
    let user = crate::accounts::current_user(req)
        .await?
        .ok_or(AppError::Unauthorized("unauthenticated"))?;
    user.require_admin()?;
    crate::accounts::same_origin(state, req)?;
    Ok(Manager {
        actor: Actor::User(user.user.id.into_string()),
        env: None,
    })
}

/// A lifetime as seconds or as a duration text (`90d`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum Lifetime {
    #[schema(title = "seconds")]
    Seconds(u64),
    /// A number and a unit: `30s`, `15m`, `12h`, `90d`.
    #[schema(title = "duration", example = "90d")]
    Text(String),
}

impl Lifetime {
    fn duration(self, field: &str) -> Result<Duration, AppError> {
        match self {
            Self::Seconds(s) => Ok(Duration::from_secs(s)),
            Self::Text(t) => crate::config::parse_duration(field, &t).map_err(|_| {
                AppError::bad_request(
                    "invalid_request",
                    Detail::NotADuration {
                        field: field.to_owned(),
                        value: t.chars().take(64).collect(),
                    },
                )
            }),
        }
    }
}

/// The body of `POST /v1/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKey {
    /// 1 to 100 characters (surrounding spaces are trimmed).
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// A configured key type (`sk`, `rk`, or a custom one).
    #[serde(rename = "type", default = "default_type")]
    #[schema(default = "sk")]
    key_type: String,
    /// `live` or `test`; when absent, the calling key's own environment (`live` for a session).
    env: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    expires_in: Option<Lifetime>,
    rate_limit: Option<u32>,
    /// Any JSON object, kept with the key.
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Value>,
    /// The audiences of the APIs the key is for (registered APIs); none: any API.
    #[serde(default)]
    apis: Vec<String>,
    owner_user_id: Option<String>,
    owner_client_id: Option<String>,
}

fn default_type() -> String {
    "sk".into()
}

/// A key just made: its view and, this once, the key itself.
#[derive(Serialize, utoipa::ToSchema)]
struct CreatedKey {
    #[serde(flatten)]
    view: super::model::KeyView,
    /// The key: shown only in this answer.
    key: String,
}

fn with_key(key: &super::ApiKey, secret: &super::KeySecret) -> CreatedKey {
    CreatedKey {
        view: key.view(db::now()),
        key: secret.0.clone(),
    }
}

/// One page of keys, newest first.
#[derive(Serialize, utoipa::ToSchema)]
struct KeyPage {
    data: Vec<super::model::KeyView>,
    limit: i64,
    offset: i64,
}

/// `POST /v1/keys` → 201 with the key, shown this once. A key caller makes keys of its own environment
/// only (403 `wrong_environment` otherwise).
#[utoipa::path(
    operation_id = "create_key",
    tag = "keys",
    request_body = NewKey,
    security(("bearer" = []), ("x_api_key" = []), ("session" = [])),
    responses(
        (status = 201, description = "The key, shown this once", body = CreatedKey),
        (status = 400, description = "Malformed body, an invalid field, or an owner or API that does not exist"),
        (status = 401, description = "No usable credential"),
        (status = 403, description = "Not an administrator, or another environment"),
        (status = 409, description = "A conflicting key exists"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not JSON"),
        (status = 503, description = "The database cannot serve now"),
    )
)]
#[post("/v1/keys")]
#[tracing::instrument(skip_all)]
async fn create(
    req: HttpRequest,
    state: web::Data<ApiKeys>,
    body: web::Json<NewKey>,
) -> Result<HttpResponse, AppError> {
    let manager = admin(&req, &state).await?;
    let b = body.into_inner();
    let env = b
        .env
        .or_else(|| manager.env.clone())
        .unwrap_or_else(|| "live".to_owned());
    manager.may_make(&env)?;
    let actor = manager.actor;
    let input = KeyInput {
        name: b.name,
        key_type: b.key_type,
        env,
        scopes: b.scopes,
        apis: b.apis,
        expires_in: b.expires_in.map(|l| l.duration("expires_in")).transpose()?,
        rate_limit: b.rate_limit,
        metadata: b.metadata,
        owner_user_id: b.owner_user_id,
        owner_client_id: b.owner_client_id,
    };
    let origin = Origin::of(&req);
    let st = state.clone();
    let (key, secret) = db::run(&state.pool, move |conn| {
        create_key(conn, &st.settings, &st.hasher, &input, actor, origin)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(with_key(&key, &secret)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Paging {
    /// At most this many (1 to 200, default 50).
    limit: Option<i64>,
    /// Skip this many (default 0).
    offset: Option<i64>,
}

/// `GET /v1/keys?limit&offset`: newest first, never the keys themselves; a key caller sees only its
/// own environment's keys.
#[utoipa::path(
    operation_id = "list_keys",
    tag = "keys",
    params(Paging),
    security(("bearer" = []), ("x_api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "A page of keys, newest first", body = KeyPage),
        (status = 400, description = "A malformed query"),
        (status = 401, description = "No usable credential"),
        (status = 403, description = "Not an administrator"),
        (status = 503, description = "The database cannot serve now"),
    )
)]
#[get("/v1/keys")]
async fn list(
    req: HttpRequest,
    state: web::Data<ApiKeys>,
    paging: web::Query<Paging>,
) -> Result<HttpResponse, AppError> {
    let env = admin(&req, &state).await?.env;
    let limit = paging.limit.unwrap_or(50).clamp(1, 200);
    let offset = paging.offset.unwrap_or(0).max(0);
    let keys = db::run(&state.pool, move |conn| match env {
        Some(env) => list_env_keys(conn, &env, limit, offset),
        None => list_keys(conn, None, limit, offset),
    })
    .await?;
    let now = db::now();
    let data: Vec<_> = keys.iter().map(|k| k.view(now)).collect();
    Ok(HttpResponse::Ok().json(KeyPage {
        data,
        limit,
        offset,
    }))
}

#[utoipa::path(
    operation_id = "show_key",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    security(("bearer" = []), ("x_api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The key (never the key itself)", body = super::model::KeyView),
        (status = 401, description = "No usable credential"),
        (status = 403, description = "Not an administrator"),
        (status = 404, description = "No such key (in the caller's environment)"),
        (status = 503, description = "The database cannot serve now"),
    )
)]
#[get("/v1/keys/{id}")]
async fn show(
    req: HttpRequest,
    state: web::Data<ApiKeys>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let env = admin(&req, &state).await?.env;
    let id = ApiKeyId::from(id.into_inner());
    let key = db::run(&state.pool, move |conn| {
        find_key_in(conn, &id, env.as_deref())
    })
    .await?;
    Ok(HttpResponse::Ok().json(key.view(db::now())))
}

#[utoipa::path(
    operation_id = "revoke_key",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    security(("bearer" = []), ("x_api_key" = []), ("session" = [])),
    responses(
        (status = 200, description = "The revoked key", body = super::model::KeyView),
        (status = 401, description = "No usable credential"),
        (status = 403, description = "Not an administrator"),
        (status = 404, description = "No such key (in the caller's environment)"),
        (status = 503, description = "The database cannot serve now"),
    )
)]
#[post("/v1/keys/{id}/revoke")]
#[tracing::instrument(skip_all)]
async fn revoke(
    req: HttpRequest,
    state: web::Data<ApiKeys>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let Manager { actor, env } = admin(&req, &state).await?;
    let (id, origin) = (ApiKeyId::from(id.into_inner()), Origin::of(&req));
    let key = db::run(&state.pool, move |conn| {
        find_key_in(conn, &id, env.as_deref())?; // 404 for another environment's key
        revoke_key(conn, &id, actor, origin)
    })
    .await?;
    state.key_cache.forget_key(&key.id);
    Ok(HttpResponse::Ok().json(key.view(db::now())))
}

/// The optional body of `POST /v1/keys/{id}/rotate`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Rotation {
    /// How long the old key keeps working (default 24 h).
    grace: Option<Lifetime>,
}

/// An optional JSON body: none (or an empty one) gives the defaults, but one that was sent must be
/// valid (a malformed body, or one with a misspelt field, is a 400, never silently the defaults).
fn optional_body<T: Default>(
    req: &HttpRequest,
    body: Result<web::Json<T>, actix_web::Error>,
    body_limit: usize,
) -> Result<T, AppError> {
    use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    let err = match body {
        Ok(body) => return Ok(body.into_inner()),
        Err(err) => err,
    };
    let headers = req.headers();
    let sent = match headers
        .get(CONTENT_LENGTH)
        .and_then(header_text)
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        Some(length) => length > 0,
        None => headers.contains_key(TRANSFER_ENCODING),
    };
    if sent {
        let status = err.as_response_error().status_code();
        Err(crate::error::from_actix(&err, status, body_limit))
    } else {
        Ok(T::default())
    }
}

/// `POST /v1/keys/{id}/rotate {grace?}` → 201 with the new key (shown once); the old one works
/// until the grace (default 24 h) ends.
#[utoipa::path(
    operation_id = "rotate_key",
    tag = "keys",
    params(("id" = String, Path, description = "The key's id")),
    request_body(content = Option<Rotation>, description = "Optional: the grace period of the old key"),
    security(("bearer" = []), ("x_api_key" = []), ("session" = [])),
    responses(
        (status = 201, description = "The new key, shown this once", body = CreatedKey),
        (status = 400, description = "Malformed body or an invalid field"),
        (status = 401, description = "No usable credential"),
        (status = 403, description = "Not an administrator"),
        (status = 404, description = "No such key (in the caller's environment)"),
        (status = 409, description = "The key is revoked or already replaced"),
        (status = 413, description = "The body is too large"),
        (status = 415, description = "The body is not JSON"),
        (status = 503, description = "The database cannot serve now"),
    )
)]
#[post("/v1/keys/{id}/rotate")]
#[tracing::instrument(skip_all)]
async fn rotate(
    req: HttpRequest,
    state: web::Data<ApiKeys>,
    id: web::Path<String>,
    body: Result<web::Json<Rotation>, actix_web::Error>,
) -> Result<HttpResponse, AppError> {
    let Manager { actor, env } = admin(&req, &state).await?;
    let grace = optional_body(&req, body, state.settings.body_limit)?
        .grace
        .map(|g| g.duration("grace"))
        .transpose()?
        .unwrap_or(Duration::from_secs(86_400));
    let (id, origin) = (ApiKeyId::from(id.into_inner()), Origin::of(&req));
    let (st, old) = (state.clone(), id.clone());
    let (key, secret) = db::run(&state.pool, move |conn| {
        find_key_in(conn, &id, env.as_deref())?; // 404 for another environment's key
        rotate_key(conn, &st.settings, &st.hasher, &id, grace, actor, origin)
    })
    .await?;
    state.key_cache.forget_key(&old);
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(with_key(&key, &secret)))
}

/// The operations and types of this module, for `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, list, show, revoke, rotate))]
pub(super) struct Docs;
