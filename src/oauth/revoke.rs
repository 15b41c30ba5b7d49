//! `POST /oauth/revoke` (RFC 7009): a client revokes one of its own tokens.
//!
//! Token kinds are told apart by shape, whatever `token_type_hint` says (the hint only orders the
//! lookups): a JWT has two dots, a refresh token is 43 base64url characters, an API key has a
//! configured prefix and a valid checksum.

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde_json::json;

use super::credentials::{Credentials, authenticate, throttle_failed_auth};
use super::params::{RevokeForm, TokenKind, no_store, request_parts};
use super::store;
use super::token::REFRESH_PURPOSE;
use crate::audit::{self, Actor, Origin};
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::oauth::OAuth;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(revoke);
}

/// RFC 7009: the client revokes one of its own tokens. Revoking a refresh token revokes its family
/// and the access tokens issued from it; revoking an access token records its `jti` until it
/// expires. The answer is 200 whether the token existed, was already revoked, or is another
/// client's (which is left alone): the endpoint is no oracle.
#[utoipa::path(
    operation_id = "revoke",
    tag = "oauth",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    security(("client_basic" = []), ()),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (no oracle); empty body"),
        (status = 400, description = "invalid_request: a malformed request"),
        (status = 401, description = "invalid_client"),
        (status = 413, description = "The body is too large"),
        (status = 429, description = "Too many failed authentications from this IP"),
        (status = 503, description = "The database cannot serve now"),
    )
)]
#[post("/oauth/revoke")]
#[tracing::instrument(skip_all)]
async fn revoke(
    req: HttpRequest,
    state: web::Data<OAuth>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    throttle_failed_auth(&state, &req, || {
        revoke_request(req.clone(), state.clone(), body)
    })
    .await
}

async fn revoke_request(
    req: HttpRequest,
    state: web::Data<OAuth>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (form, token) = request_parts(&req, &body)?;
    let credentials = Credentials::parse(&form)?;
    let client = authenticate(&state, credentials.as_ref(), "/oauth/revoke").await?;
    let order = TokenKind::order(form.get("token_type_hint"));
    let origin = Origin::of(&req);
    let st = state.clone();
    let token = token.into_owned();
    db::run(&state.pool, move |conn| {
        for kind in order.into_iter().filter(|k| k.fits(&token, &st.settings)) {
            if revoke_one(conn, &st, client.id(), kind, &token, origin.clone())? {
                break;
            }
        }
        Ok(())
    })
    .await?;
    Ok(no_store(HttpResponse::Ok().finish()))
}

/// Revokes `token` as `kind` when it is one and belongs to `client_id`; true when it was found.
fn revoke_one(
    conn: &mut DbConn,
    state: &OAuth,
    client_id: &str,
    kind: TokenKind,
    token: &str,
    origin: Origin,
) -> Result<bool, AppError> {
    let now = db::now();
    let event = |kind: &str| {
        audit::Event::new(Actor::Client(client_id.to_owned()), "token.revoke")
            .origin(origin.clone())
            .details(json!({ "token_type": kind }))
    };
    match kind {
        TokenKind::ApiKey => {
            let (_, key) =
                crate::apikeys::verify(conn, &state.settings, &state.hasher, token, &[], None)?;
            let Some(key) = key else {
                return Ok(false);
            };
            if key.owner_client_id.as_deref() == Some(client_id) {
                crate::apikeys::revoke_key(
                    conn,
                    &key.id,
                    Actor::Client(client_id.to_owned()),
                    origin,
                )?;
                state.keys.key_cache.forget_key(&key.id);
            }
            Ok(true)
        }
        TokenKind::RefreshToken => {
            let hash = state.hasher.hash(REFRESH_PURPOSE, token.as_bytes());
            let Some(row) = store::find_refresh(conn, &hash)? else {
                return Ok(false);
            };
            if row.client_id == client_id && !row.family_revoked {
                crate::db::transaction(conn, |conn| -> Result<(), AppError> {
                    store::revoke_family(conn, &row.family_id, now, "revoked by the client")?;
                    audit::record(
                        conn,
                        event("refresh_token").target("refresh_token_family", &row.family_id),
                    )?;
                    Ok(())
                })?;
                // The family's access tokens are revoked too: drop this client's cached ones.
                state
                    .token_cache
                    .forget_where(|c| c.client_id == row.client_id);
            }
            Ok(true)
        }
        TokenKind::AccessToken => {
            let Some(claims) = state
                .keyring
                .verify_fresh(conn, token, state.settings.issuer_str())
            else {
                return Ok(false);
            };
            if claims.client_id == client_id && !store::is_jti_revoked(conn, &claims.jti)? {
                crate::db::transaction(conn, |conn| -> Result<(), AppError> {
                    store::insert_revoked_jti(conn, &claims.jti, None, now, claims.exp)?;
                    audit::record(
                        conn,
                        event("access_token").target("access_token", &claims.jti),
                    )?;
                    Ok(())
                })?;
                state.token_cache.forget_where(|c| c.jti == claims.jti);
            }
            Ok(true)
        }
    }
}

/// The operations of this module, for `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(revoke))]
pub(super) struct Docs;
