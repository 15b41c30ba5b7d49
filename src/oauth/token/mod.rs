//! `POST /oauth/token` (RFC 6749 §3.2), one pass: the request read once into a [`TokenRequest`], the
//! client authenticated once through the cached path, its token limit applied, one module per grant,
//! and the [`Issuer`] answering. Adding a grant: a `Grant` variant read in `request.rs`, a module
//! beside the others that returns `Issued` (tokens made only through the `Issuer`), and its arm in
//! [`exchange`].

mod authorization_code;
mod client_credentials;
pub mod issuer;
mod jwt_bearer;
mod refresh;
mod request;

use actix_web::{HttpRequest, HttpResponse, post, web};

use issuer::TokenBody;
pub use issuer::{Issuer, REFRESH_PURPOSE};
use request::{Grant, TokenRequest};

use super::credentials::{AuthenticatedClient, Credentials, authenticate, throttle_failed_auth};
use super::model::Client;
use crate::error::AppError;
use crate::oauth::OAuth;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(token);
}

/// Failed client authentications count per IP (and block it for a while when there are too many);
/// an authenticated client's requests count against its own limit, so services behind one NAT or a
/// backend refreshing for many users are never limited as one.
#[utoipa::path(
    operation_id = "token",
    tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    security(("client_basic" = []), ()),
    responses(
        (status = 200, description = "An access token (RFC 6749 §5.1)", body = TokenBody, headers(
            ("Cache-Control" = String, description = "`no-store`"),
            ("X-RateLimit-Limit" = u32, description = "Token requests allowed to the client per window"),
            ("X-RateLimit-Remaining" = u32, description = "Requests left in the window"),
            ("X-RateLimit-Reset" = i64, description = "When the window is full again (Unix seconds)"),
        )),
        (status = 400, description = "An RFC 6749 §5.2 error: invalid_request, invalid_grant, unsupported_grant_type, …"),
        (status = 401, description = "invalid_client: unknown client, wrong secret or disabled client"),
        (status = 413, description = "The body is too large"),
        (status = 429, description = "The client's token limit is used up, or too many failed authentications from this IP"),
        (status = 503, description = "The database cannot serve now"),
    )
)]
#[post("/oauth/token")]
async fn token(
    req: HttpRequest,
    state: web::Data<OAuth>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    // The grant as a metric label, once the body is read (`none` until then or when absent).
    let mut label = "none";
    let out =
        throttle_failed_auth(&state, &req, || exchange(&req, &state, &body, &mut label)).await;
    if let Err(e) = &out {
        state.metrics.token_failed(label, e.code());
    }
    out
}

async fn exchange(
    req: &HttpRequest,
    state: &web::Data<OAuth>,
    body: &[u8],
    label: &mut &'static str,
) -> Result<HttpResponse, AppError> {
    let TokenRequest {
        credentials,
        client_id,
        grant,
    } = TokenRequest::read(req, body, label)?;
    let (client, assertion_subject) =
        authenticate_client(state, credentials, client_id, &grant).await?;
    let limit = client_limit(state, &client.client).await?;
    let issued = match grant {
        Grant::ClientCredentials(ref service) => {
            client_credentials::exchange(state, &client, service).await?
        }
        Grant::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            let exchange = authorization_code::CodeExchange {
                code,
                redirect_uri,
                code_verifier,
            };
            Box::pin(authorization_code::exchange(state, &client, exchange)).await?
        }
        Grant::RefreshToken {
            refresh_token,
            scope,
        } => Box::pin(refresh::exchange(state, &client, refresh_token, scope)).await?,
        Grant::JwtBearer { ref service, .. } => {
            let subject = assertion_subject
                .ok_or_else(|| AppError::internal("a jwt-bearer grant without its subject"))?;
            Box::pin(client_credentials::service_token(
                state, &client, &subject, service,
            ))
            .await?
        }
    };
    Ok(Issuer::new(state).deliver(&issued, &client, label, &limit))
}

/// The request's client. The assertion of the jwt-bearer grant authenticates its client and names
/// the token's subject (returned beside the client). The credentials are taken here, so that they
/// are not carried through the rest of the request's future.
async fn authenticate_client(
    state: &web::Data<OAuth>,
    credentials: Option<Credentials>,
    client_id: Option<String>,
    grant: &Grant,
) -> Result<(AuthenticatedClient, Option<String>), AppError> {
    match grant {
        Grant::JwtBearer { assertion, .. } => {
            // The grants other than client_credentials are boxed: their state (a database write, a
            // JWKS fetch) would otherwise size every token request's future, which the handler boxes.
            let (client, subject) = Box::pin(jwt_bearer::authenticate_by_assertion(
                state,
                assertion,
                credentials,
                client_id.as_deref(),
            ))
            .await?;
            Ok((client, Some(subject)))
        }
        _ => Ok((
            authenticate(state, credentials.as_ref(), "/oauth/token").await?,
            None,
        )),
    }
}

/// The client's token rate limit (its own, else `TESSERA_TOKEN_RATE_LIMIT`), as 429 when used up.
async fn client_limit(
    state: &OAuth,
    client: &Client,
) -> Result<crate::ratelimit::Decision, AppError> {
    let own = client.token_rate_limit.and_then(|n| u32::try_from(n).ok());
    let decision = state
        .limits
        .check(crate::ratelimit::Bucket::Token, &client.id, own)
        .await;
    if decision.allowed {
        Ok(decision)
    } else {
        Err(decision.refused())
    }
}

pub use super::scopes::grant_scopes;

/// The form of `POST /oauth/token` (the body is read as pairs by `TokenRequest`, not into this
/// type; it describes the parameters each grant reads).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "only the OpenAPI description names it")]
struct TokenForm {
    /// `authorization_code`, `client_credentials`, `refresh_token` or
    /// `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    #[schema(example = "client_credentials")]
    grant_type: String,
    /// The client (a public client, `client_secret_post`, or naming the one of an assertion).
    client_id: Option<String>,
    /// `client_secret_post`.
    client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` with `client_assertion`.
    client_assertion_type: Option<String>,
    /// A JWT signed by the client (`client_secret_jwt`, `private_key_jwt`).
    client_assertion: Option<String>,
    /// Requested scopes, space-separated.
    scope: Option<String>,
    /// `client_credentials`, jwt-bearer: the API (audience) the token is for.
    resource: Option<String>,
    /// `authorization_code`.
    code: Option<String>,
    /// `authorization_code`: the registered redirect URI of the authorization request.
    redirect_uri: Option<String>,
    /// `authorization_code`: the PKCE verifier.
    code_verifier: Option<String>,
    /// `refresh_token`.
    refresh_token: Option<String>,
    /// jwt-bearer: the JWT exchanged for a token.
    assertion: Option<String>,
}

/// The operations and types of this module, for `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(token))]
pub(super) struct Docs;
