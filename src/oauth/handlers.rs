//! `POST /oauth/token` (dispatch by `grant_type`) and the RFC 8414 metadata document.

use std::collections::{BTreeSet, HashMap};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde_json::json;

use super::client_auth::{
    AuthMethod, ClientAuth, basic_credentials, client_auth, no_store, printable, read_request,
    repeated, throttle_failed_auth,
};
use super::flow::{ConsentPage, Flow, OAuthRequest, Owner, REFRESH_PURPOSE};
use super::model::GrantType;
use super::store;
use crate::db;
use crate::error::AppError;
use crate::i18n::Detail;
use crate::jwt::AccessClaims;
use crate::request::RequestContext;
use crate::state::AppState;
use crate::web::{csrf_token, html, verify_csrf};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(token)
        .service(authorize_get)
        .service(authorize_post)
        .service(metadata)
        .service(openid_metadata);
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
#[tracing::instrument(skip_all, fields(grant_type))]
async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    // The grant as a metric label, once the body is read (`none` until then or when absent).
    let mut grant = "none";
    let out =
        throttle_failed_auth(&state, &req, token_request(&req, &state, &body, &mut grant)).await;
    match &out {
        Ok(res) => {
            if let Some(issued) = res.extensions().get::<IssuedTo>() {
                state.metrics.token_issued(grant, issued.public);
            }
        }
        Err(e) => state.metrics.token_failed(grant, e.code()),
    }
    out
}

/// The `grant` label of a `grant_type`: a supported grant, or `other` (never the value sent).
fn grant_label(grant: Option<GrantType>) -> &'static str {
    match grant {
        Some(GrantType::AuthorizationCode) => "authorization_code",
        Some(GrantType::ClientCredentials) => "client_credentials",
        Some(GrantType::RefreshToken) => "refresh_token",
        Some(GrantType::JwtBearer) => "jwt_bearer",
        None => "other",
    }
}

/// The client's token rate limit (its own, else `TESSERA_TOKEN_RATE_LIMIT`), as 429 when used up.
async fn client_limit(
    state: &AppState,
    client: &super::model::Client,
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

async fn token_request(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    body: &[u8],
    label: &mut &'static str,
) -> Result<HttpResponse, AppError> {
    let (params, authorization) = read_request(req, body)?;
    let grant = params.get("grant_type").ok_or_else(|| {
        AppError::oauth(
            "invalid_request",
            Detail::MissingParameter { name: "grant_type" },
        )
    })?;
    tracing::Span::current().record("grant_type", grant.as_str());
    let grant = GrantType::parse(grant);
    *label = grant_label(grant);
    if grant == Some(GrantType::JwtBearer) {
        // A public client has no secret and no keys, so it cannot sign an assertion: every
        // jwt-bearer client is confidential.
        return jwt_bearer(state, authorization, params)
            .await
            .map(|r| count_issued(state, r, false))
            .map(no_store);
    }
    let Some(grant) = grant else {
        return Err(AppError::oauth(
            "unsupported_grant_type",
            Detail::GrantTypeNotSupported {
                grant_type: params
                    .get("grant_type")
                    .map(|g| g.chars().take(64).collect::<String>())
                    .unwrap_or_default(),
            },
        ));
    };
    let auth = client_auth(state, "/oauth/token", authorization, &params).await?;
    let auth = auth.authenticated(state).await?;
    let (limit, public) = match auth.checked() {
        Some((client, _)) => (client_limit(state, client).await?, client.is_public),
        None => return Err(AppError::internal("client authentication left unresolved")),
    };
    match grant {
        GrantType::ClientCredentials => client_credentials(state, auth, params).await,
        GrantType::AuthorizationCode => authorization_code(state, auth, params).await,
        GrantType::RefreshToken => refresh(state, auth, params).await,
        GrantType::JwtBearer => Err(AppError::internal("jwt-bearer is dispatched above")),
    }
    .map(|r| count_issued(state, r, public))
    .map(no_store)
    .map(|r| crate::ratelimit::with_headers(r, &limit))
}

/// Counts a token response in its client's usage (in memory; written with the API-key usage) and
/// notes whether the client is public, for the metrics.
fn count_issued(state: &AppState, mut res: HttpResponse, public: bool) -> HttpResponse {
    if let Some(issued) = res.extensions_mut().get_mut::<IssuedTo>() {
        state.usage.record(
            &issued.client_id,
            crate::apikeys::usage::Outcome::Allowed,
            db::now(),
        );
        issued.public = public;
    }
    res
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

async fn client_credentials(
    state: &web::Data<AppState>,
    auth: ClientAuth,
    params: HashMap<String, String>,
) -> Result<HttpResponse, AppError> {
    // A client and API this node read recently need no database round trip at all.
    let resolved;
    let (client, method) = match auth.checked() {
        Some(checked) => checked,
        None => {
            let st = state.clone();
            resolved = db::run(&state.pool, move |conn| auth.resolve(conn, &st)).await?;
            (&resolved.0, resolved.1)
        }
    };
    if method == AuthMethod::None || !client.has_grant(GrantType::ClientCredentials) {
        return Err(AppError::oauth(
            "unauthorized_client",
            Detail::ClientCredentialsNeedsConfidential,
        ));
    }
    let audience = requested_audience(state, &params);
    let key = crate::cache::KeyHash(state.hasher.hash_raw("api", audience.as_bytes()));
    let api = match state.api_cache.get(&key).flatten() {
        Some(api) => api,
        None => {
            let generation = state.api_cache.generation();
            let wanted = audience.clone();
            let api = db::run(&state.pool, move |conn| load_api(conn, &wanted))
                .await?
                .map(std::sync::Arc::new)
                .ok_or_else(|| invalid_target(&audience))?;
            state.api_cache.put(key, Some(api.clone()), generation);
            api
        }
    };
    let allowed: Vec<&str> = client.allowed_scopes().collect();
    let scopes = grant_scopes(params.get("scope").map(String::as_str), &allowed, &api.1)?;
    service_token(state, client, client.id.clone(), api.0.clone(), scopes)
}

/// The API a service token is asked for: `resource`, else the default API (the issuer).
fn requested_audience(state: &AppState, params: &HashMap<String, String>) -> String {
    params
        .get("resource")
        .cloned()
        .unwrap_or_else(|| state.settings.issuer_str().to_owned())
}

fn invalid_target(audience: &str) -> AppError {
    AppError::oauth(
        "invalid_target",
        Detail::Value {
            value: audience.chars().take(128).collect(),
        },
    )
}

/// The API with this audience and the names of its scopes.
fn load_api(
    conn: &mut db::DbConn,
    audience: &str,
) -> Result<Option<(String, Vec<String>)>, AppError> {
    let Some(api) = store::find_api_by_audience(conn, audience)? else {
        return Ok(None);
    };
    let defined = store::find_scopes(conn, &api.id)?
        .into_iter()
        .map(|s| s.name)
        .collect();
    Ok(Some((api.audience, defined)))
}

/// The API (`resource`, else the default) and scopes a service token is for: requested scopes must be
/// allowed to the client and defined on the API; none requested means all allowed but `offline_access`.
fn service_grant(
    conn: &mut db::DbConn,
    state: &AppState,
    client: &super::Client,
    params: &HashMap<String, String>,
) -> Result<(String, Vec<String>), AppError> {
    let audience = requested_audience(state, params);
    let (audience, defined) =
        load_api(conn, &audience)?.ok_or_else(|| invalid_target(&audience))?;
    let allowed: Vec<&str> = client.allowed_scopes().collect();
    let scopes = grant_scopes(params.get("scope").map(String::as_str), &allowed, &defined)?;
    Ok((audience, scopes))
}

/// Signs an access token for a service (no refresh token): client_credentials and jwt-bearer.
fn service_token(
    state: &AppState,
    client: &super::Client,
    sub: String,
    audience: String,
    scopes: Vec<String>,
) -> Result<HttpResponse, AppError> {
    let now = db::now();
    let ttl = state.settings.access_token_ttl.as_secs() as i64;
    let claims = AccessClaims {
        iss: state.settings.issuer_str().to_owned(),
        sub,
        aud: audience,
        client_id: client.id.clone(),
        scope: scopes.join(" "),
        jti: crate::crypto::random_id("at", 22),
        iat: now,
        exp: now + ttl,
    };
    let access_token = state.keyring.sign(&claims)?;
    let mut res = HttpResponse::Ok().json(TokenBody {
        access_token: &access_token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: &claims.scope,
        refresh_token: None,
    });
    res.extensions_mut().insert(IssuedTo::new(claims.client_id));
    Ok(res)
}

/// RFC 7523 §2.1: the client signs a JWT (`iss` = `sub` = its id, `aud` = the issuer or the token
/// endpoint) with its registered key or secret and exchanges it for an access token. The assertion
/// authenticates the client; other client authentication, when sent, must name the same client.
async fn jwt_bearer(
    state: &web::Data<AppState>,
    authorization: Option<String>,
    params: HashMap<String, String>,
) -> Result<HttpResponse, AppError> {
    let jwt = params.get("assertion").ok_or_else(|| {
        AppError::oauth(
            "invalid_request",
            Detail::MissingParameter { name: "assertion" },
        )
    })?;
    let extra_auth = authorization.is_some()
        || params.contains_key("client_assertion")
        || params.contains_key("client_secret");
    let extra = if extra_auth {
        Some(client_auth(state, "/oauth/token", authorization, &params).await?)
    } else {
        None
    };
    let issuer = state.settings.issuer_str();
    let audiences = [issuer.to_owned(), format!("{issuer}/oauth/token")];
    let (client, claims) =
        super::assertion::verify(state, jwt, super::assertion::Use::Grant, &audiences).await?;
    if params.get("client_id").is_some_and(|id| *id != client.id) {
        return Err(AppError::oauth(
            "invalid_grant",
            Detail::ClientIdNotAssertionIssuer,
        ));
    }
    if !client.has_grant(GrantType::JwtBearer) {
        return Err(AppError::oauth(
            "unauthorized_client",
            Detail::GrantNotRegistered {
                grant_type: "jwt-bearer",
            },
        ));
    }
    let limit = client_limit(state, &client).await?;
    let st = state.clone();
    let (client, audience, scopes) = db::run(&state.pool, move |conn| {
        if let Some(auth) = extra {
            let (other, _) = auth.resolve(conn, &st)?;
            if other.id != client.id {
                return Err(AppError::oauth(
                    "invalid_grant",
                    Detail::AssertionOfOtherClient,
                ));
            }
        }
        let (audience, scopes) = service_grant(conn, &st, &client, &params)?;
        Ok((client, audience, scopes))
    })
    .await?;
    service_token(state, &client, claims.sub, audience, scopes)
        .map(|r| crate::ratelimit::with_headers(r, &limit))
}

/// Client authentication methods, in the RFC 8414 names (introspection takes the first four: a
/// public client cannot introspect).
const AUTH_METHODS: [&str; 5] = [
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "none",
];
/// Algorithms of client assertions: HS256 for client_secret_jwt, the others for private_key_jwt.
const AUTH_SIGNING_ALGS: [&str; 4] = ["RS256", "ES256", "EdDSA", "HS256"];

/// The RFC 8414 authorization server metadata document.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Metadata {
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
    authorization_endpoint: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    grant_types_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    revocation_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    introspection_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    response_modes_supported: Vec<&'static str>,
    scopes_supported: Vec<String>,
    response_types_supported: Vec<&'static str>,
    code_challenge_methods_supported: Vec<&'static str>,
    authorization_response_iss_parameter_supported: bool,
    access_token_signing_alg_values_supported: Vec<&'static str>,
}

fn metadata_document(state: &AppState, scopes: Vec<String>) -> Metadata {
    let issuer = state.settings.issuer_str();
    Metadata {
        issuer: issuer.to_owned(),
        token_endpoint: format!("{issuer}/oauth/token"),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        authorization_endpoint: format!("{issuer}/oauth/authorize"),
        revocation_endpoint: format!("{issuer}/oauth/revoke"),
        introspection_endpoint: format!("{issuer}/oauth/introspect"),
        grant_types_supported: vec![
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
        ],
        token_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
        token_endpoint_auth_signing_alg_values_supported: AUTH_SIGNING_ALGS.to_vec(),
        revocation_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
        revocation_endpoint_auth_signing_alg_values_supported: AUTH_SIGNING_ALGS.to_vec(),
        introspection_endpoint_auth_methods_supported: AUTH_METHODS[..4].to_vec(),
        introspection_endpoint_auth_signing_alg_values_supported: AUTH_SIGNING_ALGS.to_vec(),
        response_modes_supported: vec!["query"],
        scopes_supported: scopes,
        response_types_supported: vec!["code"],
        code_challenge_methods_supported: vec!["S256"],
        authorization_response_iss_parameter_supported: true,
        access_token_signing_alg_values_supported: vec![state.settings.signing_alg.as_str()],
    }
}

async fn metadata_response(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let scopes = db::run(&state.pool, |conn| Ok(store::find_all_scope_names(conn)?)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(metadata_document(&state, scopes)))
}

/// RFC 8414 authorization server metadata.
#[utoipa::path(
    operation_id = "authorization_server_metadata",
    tag = "oauth",
    responses(
        (status = 200, description = "The authorization server metadata", body = Metadata),
        (status = 503, description = "The database cannot serve now"),
    )
)]
#[get("/.well-known/oauth-authorization-server")]
async fn metadata(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    metadata_response(state).await
}

/// The same document at the OpenID Connect discovery path, which many client libraries look for.
#[utoipa::path(
    operation_id = "openid_configuration",
    tag = "oauth",
    responses(
        (status = 200, description = "The authorization server metadata", body = Metadata),
        (status = 503, description = "The database cannot serve now"),
    )
)]
#[get("/.well-known/openid-configuration")]
async fn openid_metadata(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    metadata_response(state).await
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Maps the JSON error oxide-auth wrote onto our RFC 6749 error (with request id and message).
fn flow_error(body: Option<&str>, status: u16) -> AppError {
    let code = body
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let code: &'static str = match code.as_str() {
        "invalid_client" => "invalid_client",
        "invalid_grant" => "invalid_grant",
        "unauthorized_client" => "unauthorized_client",
        "unsupported_grant_type" => "unsupported_grant_type",
        "invalid_scope" => "invalid_scope",
        _ if status == 401 => "invalid_client",
        _ => "invalid_request",
    };
    let detail = match code {
        "invalid_grant" => Detail::CodeInvalid,
        "invalid_client" => Detail::ClientUnknown,
        _ => Detail::TokenRequestMalformed,
    };
    AppError::oauth(code, detail)
}

/// `authorization_code`: oxide-auth's `AccessTokenFlow` (client check, single-use code, PKCE) over our store.
async fn authorization_code(
    state: &web::Data<AppState>,
    auth: ClientAuth,
    mut params: HashMap<String, String>,
) -> Result<HttpResponse, AppError> {
    let (authorization, preauthenticated) = match auth {
        ClientAuth::Verified(client) => {
            // Authenticated by its assertion: oxide-auth sees the client_id and no secret.
            params.remove("client_assertion");
            params.remove("client_assertion_type");
            params.insert("client_id".to_owned(), client.id.clone());
            (None, Some(client.id))
        }
        ClientAuth::Checked(client, _) => {
            // Its credentials were checked against the cached client: likewise, no secret again.
            params.remove("client_secret");
            params.insert("client_id".to_owned(), client.id.clone());
            (None, Some(client.id.clone()))
        }
        ClientAuth::Credentials { authorization, .. } => (authorization, None),
    };
    // Basic with a matching body client_id is allowed (oxide-auth would call it a duplicate).
    let auth = match authorization {
        Some(header) => {
            let (id, secret) = basic_credentials(&header)?;
            if params.get("client_id").is_some_and(|c| *c != id)
                || params.contains_key("client_secret")
            {
                return Err(AppError::oauth("invalid_request", Detail::CredentialsTwice));
            }
            params.remove("client_id");
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            Some(format!("Basic {raw}"))
        }
        None => None,
    };
    match params.get("code_verifier") {
        Some(v) if !valid_verifier(v) => {
            return Err(AppError::oauth("invalid_grant", Detail::CodeVerifierFormat));
        }
        _ => {}
    }
    let st = state.clone();
    let list: Vec<(String, String)> = params.into_iter().collect();
    let (status, body, issued) = db::run(&state.pool, move |conn| {
        let mut flow = Flow::new(conn, &st, String::new(), None);
        flow.preauthenticated = preauthenticated;
        let response = {
            let mut exchange = oxide_auth::endpoint::AccessTokenFlow::prepare(&mut flow)?;
            exchange.allow_credentials_in_body(true);
            exchange.execute(OAuthRequest::token(&list, auth))?
        };
        Ok((response.status, response.body, flow.issued.take()))
    })
    .await?;
    match (status, issued) {
        (200, Some(issued)) => Ok(token_response(&issued)),
        _ => Err(flow_error(body.as_deref(), status)),
    }
}

/// Which client a successful token response was for, so the token endpoint can count its usage, and
/// whether it is public (for the metrics' `client_type`).
#[derive(Debug, Clone)]
struct IssuedTo {
    client_id: String,
    public: bool,
}

impl IssuedTo {
    fn new(client_id: String) -> Self {
        Self {
            client_id,
            public: false,
        }
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct TokenBody<'a> {
    access_token: &'a str,
    #[schema(value_type = String, example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

fn token_response(issued: &super::flow::Issued) -> HttpResponse {
    let mut res = HttpResponse::Ok().json(TokenBody {
        access_token: &issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        scope: &issued.scope,
        refresh_token: issued.refresh_token.as_deref(),
    });
    res.extensions_mut()
        .insert(IssuedTo::new(issued.client_id.clone()));
    res
}

/// `refresh_token` (ours): every use rotates; a used token presented again by its client revokes the
/// whole family (RFC 9700 §4.14.2); scope may narrow, never widen; of two concurrent uses exactly one
/// wins. A refused request (unknown, expired or revoked token, wrong client, wider scope, disabled
/// user) changes nothing: the token stays usable by its client. Another client presenting it is
/// audited (`refresh_token.wrong_client`).
async fn refresh(
    state: &web::Data<AppState>,
    auth: ClientAuth,
    params: HashMap<String, String>,
) -> Result<HttpResponse, AppError> {
    let presented = params.get("refresh_token").cloned().ok_or_else(|| {
        AppError::oauth(
            "invalid_request",
            Detail::MissingParameter {
                name: "refresh_token",
            },
        )
    })?;
    let st = state.clone();
    let issued = db::run(&state.pool, move |conn| {
        let (client, _) = auth.resolve(conn, &st)?;
        if !client.has_grant(GrantType::RefreshToken) {
            return Err(AppError::oauth(
                "unauthorized_client",
                Detail::GrantNotRegistered {
                    grant_type: "refresh_token",
                },
            ));
        }
        let hash = st.hasher.hash(REFRESH_PURPOSE, presented.as_bytes());
        let now = db::now();
        let invalid = |why: Detail| AppError::oauth("invalid_grant", why);
        let settings = &st.settings;
        // The family and owning client of a token another client presented, for the audit log.
        let mut foreign: Option<(String, String)> = None;
        use diesel::Connection as _;
        // Err(_) rolls back (the token stays as it was); Ok(Err(_)) commits (a reuse must stay
        // revoked) and still answers with the error.
        let outcome = conn.transaction(
            |conn| -> Result<Result<super::flow::Issued, AppError>, AppError> {
                // Write first (see the code exchange): the rotation race has exactly one winner.
                let won = store::use_refresh_token(conn, &hash, now)?;
                // Locks the family until commit: a concurrent revocation waits, then revokes what
                // this rotation issued too.
                let Some(row) = store::find_refresh_for_rotation(conn, &hash)? else {
                    return Err(invalid(Detail::RefreshTokenUnknown));
                };
                if row.client_id != client.id {
                    foreign = Some((row.family_id, row.client_id));
                    return Err(invalid(Detail::RefreshTokenOfOtherClient));
                }
                if !won {
                    // Reuse of a rotated token: someone holds a copy. End the whole family.
                    store::revoke_family(conn, &row.family_id, now, "refresh token reused")?;
                    st.token_cache
                        .forget_where(|c| c.client_id == row.client_id);
                    tracing::warn!(client_id = %client.id, "refresh token reuse: family revoked");
                    return Ok(Err(invalid(Detail::RefreshTokenReused)));
                }
                if row.family_revoked || row.family_expires_at <= now || row.token_expires_at <= now
                {
                    return Err(invalid(Detail::RefreshTokenExpired));
                }
                if row.user_disabled {
                    return Err(invalid(Detail::RefreshTokenUserDisabled));
                }
                let granted: Vec<&str> = row.scope.split(' ').filter(|s| !s.is_empty()).collect();
                let scope = match params.get("scope") {
                    Some(requested) => {
                        let mut asked: Vec<&str> =
                            requested.split(' ').filter(|s| !s.is_empty()).collect();
                        if let Some(extra) = asked.iter().find(|s| !granted.contains(s)) {
                            return Err(AppError::oauth(
                                "invalid_scope",
                                Detail::ScopeNotGranted {
                                    scope: extra.chars().take(64).collect(),
                                },
                            ));
                        }
                        asked.sort_unstable();
                        asked.dedup();
                        asked.join(" ")
                    }
                    None => row.scope.clone(),
                };
                let ttl = settings.access_token_ttl.as_secs() as i64;
                let claims = AccessClaims {
                    iss: settings.issuer_str().to_owned(),
                    sub: row.user_id.clone().unwrap_or_else(|| client.id.clone()),
                    aud: row.audience.clone(),
                    client_id: client.id.clone(),
                    scope: scope.clone(),
                    jti: crate::crypto::random_id("at", 22),
                    iat: now,
                    exp: now + ttl,
                };
                let access_token = st.keyring.sign(&claims)?;
                let new_refresh = crate::crypto::random_token();
                let new_hash = st.hasher.hash(REFRESH_PURPOSE, new_refresh.as_bytes());
                let exp =
                    (now + settings.refresh_token_ttl.as_secs() as i64).min(row.family_expires_at);
                let new = store::NewRefresh {
                    token_hash: &new_hash,
                    family_id: &row.family_id,
                    now,
                    expires_at: exp,
                    jti: &claims.jti,
                    jti_exp: claims.exp,
                };
                store::insert_rotated_refresh_token(conn, &new)?;
                Ok(Ok(super::flow::Issued {
                    client_id: claims.client_id.clone(),
                    access_token,
                    refresh_token: Some(new_refresh),
                    expires_in: ttl,
                    scope,
                }))
            },
        );
        if let Some((family_id, owner)) = foreign {
            // Refused and rolled back; the attempt itself is kept (never the token).
            crate::audit::record(
                conn,
                crate::audit::Event::new(
                    crate::audit::Actor::Client(client.id.clone()),
                    "refresh_token.wrong_client",
                )
                .target("refresh_token_family", &family_id)
                .details(json!({ "client_id": client.id, "owner_client_id": owner })),
            )?;
            tracing::warn!(client_id = %client.id, owner_client_id = %owner,
                "a refresh token was presented by another client");
        }
        outcome?
    })
    .await?;
    Ok(token_response(&issued))
}

#[derive(Debug)]
struct AuthorizeInput {
    params: Vec<(String, String)>,
    decision: Option<bool>,
}

/// `GET /oauth/authorize`: the authorization request from the client, via the browser.
#[get("/oauth/authorize")]
async fn authorize_get(
    req: HttpRequest,
    ctx: RequestContext,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let params = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    authorize(
        req,
        ctx,
        state,
        AuthorizeInput {
            params,
            decision: None,
        },
    )
    .await
}

/// `POST /oauth/authorize`: the consent form (Allow or Deny), CSRF-checked, with the request's parameters.
#[post("/oauth/authorize")]
async fn authorize_post(
    req: HttpRequest,
    ctx: RequestContext,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    // The consent form's own fields may not repeat either (the OAuth ones are checked in `authorize`).
    let ours: Vec<(String, String)> = form
        .iter()
        .filter(|(k, _)| k == "csrf_token" || k == "decision")
        .cloned()
        .collect();
    if let Some(name) = repeated(&ours) {
        return Err(AppError::bad_request(
            "invalid_request",
            Detail::RepeatedParameter {
                name: printable(name),
            },
        ));
    }
    let mut csrf = None;
    let mut decision = None;
    let mut params = Vec::new();
    for (k, v) in form {
        match k.as_str() {
            "csrf_token" => csrf = Some(v),
            "decision" => decision = Some(v),
            _ => params.push((k, v)),
        }
    }
    verify_csrf(&state, &req, csrf.as_deref().unwrap_or(""))?;
    let decision = match decision.as_deref() {
        Some("allow") => true,
        Some("deny") => false,
        _ => {
            return Err(AppError::bad_request(
                "invalid_request",
                Detail::DecisionAllowOrDeny,
            ));
        }
    };
    authorize(
        req,
        ctx,
        state,
        AuthorizeInput {
            params,
            decision: Some(decision),
        },
    )
    .await
}

async fn authorize(
    req: HttpRequest,
    ctx: RequestContext,
    state: web::Data<AppState>,
    input: AuthorizeInput,
) -> Result<HttpResponse, AppError> {
    let issuer = state.settings.issuer_str().to_owned();
    let mut input = input;
    // RFC 6749 §3.1: no parameter may be included more than once. Refused before anything else
    // (no sign-in, no consent, no code).
    if let Some(name) = repeated(&input.params) {
        return refuse_repeated(&state, &ctx, &input.params, name).await;
    }
    // RFC 6749 §3.1: a parameter without a value is omitted. A code_challenge that is not the 43
    // base64url characters of a SHA-256 (RFC 7636 §4.2) counts as missing, so PKCE refuses it.
    input.params.retain(|(k, v)| {
        !v.is_empty()
            && (k != "code_challenge"
                || (v.len() == 43
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')))
    });
    let get = |k: &str| {
        input
            .params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let audience = get("resource").unwrap_or_else(|| issuer.clone());
    let force_consent = get("prompt").is_some_and(|p| p.split(' ').any(|x| x == "consent"));
    let (csrf, csrf_cookie) = csrf_token(&state, &req);
    let owner = match crate::accounts::current_user(&req).await? {
        None => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(input.params.iter())
                .finish();
            Owner::SignedOut {
                return_to: format!("/oauth/authorize?{query}"),
            }
        }
        Some(current) => Owner::SignedIn {
            user_id: current.user.id.to_string(),
            decision: input.decision,
            force_consent,
            consent_page: ConsentPage {
                lang: ctx.lang,
                csrf_token: csrf,
                params: input.params.clone(),
                user_email: current.user.email.clone(),
            },
        },
    };
    let st = state.clone();
    let params = input.params;
    let result = db::run(&state.pool, move |conn| {
        let mut flow = Flow::new(conn, &st, audience, Some(owner));
        let mut endpoint = oxide_auth::endpoint::AuthorizationFlow::prepare(&mut flow)?;
        endpoint.execute(OAuthRequest::authorization(&params))
    })
    .await;
    let response = match result {
        Ok(r) => r,
        Err(AppError::BadRequest {
            code: "invalid_authorization_request",
            ..
        }) => {
            let page = super::pages::error_page(ctx.lang, &ctx.id)?;
            return Ok(html(actix_web::http::StatusCode::BAD_REQUEST, page));
        }
        Err(e) => return Err(e),
    };
    let mut res = if let Some(page) = response.html {
        html(actix_web::http::StatusCode::OK, page)
    } else if let Some(mut location) = response.location {
        let ours = location.as_str().starts_with(&format!("{issuer}/login"));
        if !ours {
            // RFC 6749 names it error_description (oxide-auth writes description), and its text is
            // the catalogue's (en-US, ASCII) for the error code; RFC 9207 adds iss.
            let error = location
                .query_pairs()
                .find(|(k, _)| k == "error")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let mut pairs: Vec<(String, String)> = location
                .query_pairs()
                .filter(|(k, _)| k != "description")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            if !error.is_empty() {
                let text = crate::i18n::message(crate::i18n::Lang::En, &error, None);
                pairs.push(("error_description".into(), text));
            }
            location
                .query_pairs_mut()
                .clear()
                .extend_pairs(pairs)
                .append_pair("iss", &issuer);
        }
        see_other(&location)
    } else {
        return Err(AppError::internal(format!(
            "authorization flow answered {} without a target",
            response.status
        )));
    };
    if let Some(c) = csrf_cookie {
        res.add_cookie(&c).map_err(AppError::internal)?;
    }
    Ok(res)
}

/// A 303 to `location` that no cache keeps and no referrer follows.
fn see_other(location: &url::Url) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .finish()
}

/// An authorization request with the parameter `name` repeated (RFC 6749 §3.1), following §4.1.2.1:
/// while `client_id` and `redirect_uri` cannot be trusted (one of them is repeated, or they are not
/// a registered pair) the error page is shown and the browser is never redirected; otherwise the
/// error goes back to the client's redirect URI as `error=invalid_request` (with `state` when it was
/// sent once, and `iss`), as every other invalid request with a trusted redirect URI does.
async fn refuse_repeated(
    state: &web::Data<AppState>,
    ctx: &RequestContext,
    params: &[(String, String)],
    name: &str,
) -> Result<HttpResponse, AppError> {
    // The value of a parameter sent exactly once, and not empty.
    let once = |k: &str| -> Option<String> {
        let mut values = params.iter().filter(|(n, _)| n == k).map(|(_, v)| v);
        match (values.next(), values.next()) {
            (Some(v), None) if !v.is_empty() => Some(v.clone()),
            _ => None,
        }
    };
    let trusted = match (name, once("client_id")) {
        ("client_id" | "redirect_uri", _) | (_, None) => None,
        (_, Some(client_id)) => {
            let redirect_uri = once("redirect_uri");
            let st = state.clone();
            db::run(&state.pool, move |conn| {
                use oxide_auth::primitives::registrar::{ClientUrl, ExactUrl, Registrar as _};
                let redirect_uri = match redirect_uri.map(ExactUrl::new) {
                    Some(Ok(u)) => Some(std::borrow::Cow::Owned(u)),
                    Some(Err(_)) => return Ok(None),
                    None => None,
                };
                let flow = Flow::new(conn, &st, String::new(), None);
                let bound = flow.bound_redirect(ClientUrl {
                    client_id: std::borrow::Cow::Owned(client_id),
                    redirect_uri,
                });
                Ok(bound.ok().map(|b| b.redirect_uri.to_url()))
            })
            .await?
        }
    };
    let Some(mut location) = trusted else {
        let page = super::pages::error_page(ctx.lang, &ctx.id)?;
        return Ok(html(actix_web::http::StatusCode::BAD_REQUEST, page));
    };
    {
        let mut query = location.query_pairs_mut();
        let why = Detail::RepeatedParameter {
            name: printable(name),
        };
        query
            .append_pair("error", "invalid_request")
            .append_pair("error_description", &why.render(crate::i18n::Lang::En));
        if let Some(s) = once("state") {
            query.append_pair("state", &s);
        }
        query.append_pair("iss", state.settings.issuer_str());
    }
    Ok(see_other(&location))
}

/// The form of `POST /oauth/token` (the body is read as pairs by `read_request`, not into this type;
/// it describes the parameters each grant reads).
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

/// The operations and types of this module, for `/openapi.json` (the authorization pages are HTML).
#[derive(utoipa::OpenApi)]
#[openapi(paths(token, metadata, openid_metadata))]
pub(super) struct Docs;
