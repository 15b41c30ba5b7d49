//! The RFC 8414 authorization server metadata at its own path, and the OpenID Provider metadata
//! (OpenID Connect Discovery 1.0 §3: the same fields and the OpenID ones) at the discovery path.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};

use crate::db;
use crate::error::AppError;
use crate::oauth::OAuth;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(metadata).service(openid_metadata);
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
/// Algorithms of client assertions: HS256 for client_secret_jwt, the others for private_key_jwt
/// (`Ed25519` is RFC 9864's name for EdDSA over Ed25519; `EdDSA` is accepted too).
const AUTH_SIGNING_ALGS: [&str; 5] = ["RS256", "ES256", "EdDSA", "Ed25519", "HS256"];

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

fn metadata_document(state: &OAuth, scopes: Vec<String>) -> Metadata {
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
        response_modes_supported: vec!["query", "form_post"],
        scopes_supported: scopes,
        response_types_supported: vec!["code"],
        code_challenge_methods_supported: vec!["S256"],
        authorization_response_iss_parameter_supported: true,
        access_token_signing_alg_values_supported: vec![
            crate::jwt::SigningAlg::of(&state.settings).as_str(),
        ],
    }
}

/// The OpenID Provider metadata (OpenID Connect Discovery 1.0 §3): the RFC 8414 fields and the
/// OpenID ones, every REQUIRED one among them.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct OpenIdConfiguration {
    #[serde(flatten)]
    metadata: Metadata,
    userinfo_endpoint: String,
    /// RP-Initiated Logout 1.0.
    end_session_endpoint: String,
    /// Back-Channel Logout 1.0, with `sid` in the logout token.
    backchannel_logout_supported: bool,
    backchannel_logout_session_supported: bool,
    frontchannel_logout_supported: bool,
    /// `public` and `pairwise`.
    subject_types_supported: Vec<&'static str>,
    /// The algorithms a client may register for its ID tokens (RS256 among them).
    id_token_signing_alg_values_supported: Vec<&'static str>,
    claims_supported: Vec<&'static str>,
    claim_types_supported: Vec<&'static str>,
    claims_parameter_supported: bool,
    request_parameter_supported: bool,
    request_uri_parameter_supported: bool,
    prompt_values_supported: Vec<&'static str>,
    ui_locales_supported: Vec<&'static str>,
}

async fn metadata_response(state: web::Data<OAuth>) -> Result<HttpResponse, AppError> {
    let scopes = db::run(&state.pool, crate::apis::registered_scope_names).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(metadata_document(&state, scopes)))
}

async fn openid_response(state: web::Data<OAuth>) -> Result<HttpResponse, AppError> {
    let scopes = db::run(&state.pool, crate::apis::registered_scope_names).await?;
    let issuer = state.settings.issuer_str();
    let document = OpenIdConfiguration {
        metadata: metadata_document(&state, scopes),
        userinfo_endpoint: format!("{issuer}/oauth/userinfo"),
        end_session_endpoint: format!("{issuer}/oauth/logout"),
        backchannel_logout_supported: true,
        backchannel_logout_session_supported: true,
        frontchannel_logout_supported: false,
        subject_types_supported: vec!["public", "pairwise"],
        id_token_signing_alg_values_supported: state
            .keyring
            .signing_algs()
            .into_iter()
            .map(crate::jwt::SigningAlg::as_str)
            .collect(),
        claims_supported: super::oidc::CLAIMS_SUPPORTED.to_vec(),
        claim_types_supported: vec!["normal"],
        claims_parameter_supported: true,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        prompt_values_supported: vec!["none", "login", "consent", "select_account"],
        ui_locales_supported: vec!["en-US", "es-ES"],
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(document))
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
async fn metadata(state: web::Data<OAuth>) -> Result<HttpResponse, AppError> {
    metadata_response(state).await
}

/// The OpenID Provider metadata (OpenID Connect Discovery 1.0).
#[utoipa::path(
    operation_id = "openid_configuration",
    tag = "oauth",
    responses(
        (status = 200, description = "The OpenID Provider metadata", body = OpenIdConfiguration),
        (status = 503, description = "The database cannot serve now"),
    )
)]
#[get("/.well-known/openid-configuration")]
async fn openid_metadata(state: web::Data<OAuth>) -> Result<HttpResponse, AppError> {
    openid_response(state).await
}

/// The operations and types of this module, for `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(metadata, openid_metadata))]
pub(super) struct Docs;
