//! `client_credentials` (RFC 6749 §4.4): a confidential client gets a token for itself, for an API
//! (`resource`, else the default API) and the scopes it is allowed there. A client and API this
//! node read recently need no database round trip at all.

use super::super::credentials::AuthenticatedClient;
use super::super::model::GrantType;
use super::super::scopes::{grant_scopes, requested_api};
use super::issuer::{AccessGrant, Issued, Issuer};
use super::request::ServiceRequest;
use crate::error::AppError;
use crate::i18n::Detail;
use crate::oauth::OAuth;

pub async fn exchange(
    state: &actix_web::web::Data<OAuth>,
    client: &AuthenticatedClient,
    request: &ServiceRequest,
) -> Result<Issued, AppError> {
    if !client.is_confidential() || !client.client.has_grant(GrantType::ClientCredentials) {
        return Err(AppError::oauth(
            "unauthorized_client",
            Detail::ClientCredentialsNeedsConfidential,
        ));
    }
    service_token(state, client, client.id(), request).await
}

/// A token for a service (no refresh token), about `subject`: the client itself here, the
/// assertion's subject for jwt-bearer. Requested scopes must be allowed to the client and defined on
/// the API; none requested means all allowed but `offline_access`. The request is borrowed: an
/// async fn's arguments are stored in its future, and this one sits in every token request's.
pub async fn service_token(
    state: &actix_web::web::Data<OAuth>,
    client: &AuthenticatedClient,
    subject: &str,
    request: &ServiceRequest,
) -> Result<Issued, AppError> {
    let api = requested_api(state, request.resource.as_deref()).await?;
    let allowed: Vec<&str> = client.client.allowed_scopes().collect();
    let scopes = grant_scopes(request.scope.as_deref(), &allowed, &api.1)?;
    Issuer::new(state).service_token(AccessGrant {
        client_id: client.id(),
        subject,
        audience: &api.0,
        scope: &scopes,
    })
}
