//! The JWT bearer grant (RFC 7523 §2.1): the client signs a JWT (`iss` = `sub` = its id, `aud` = the
//! issuer or the token endpoint) with its registered key or secret and exchanges it for an access
//! token. The assertion authenticates the client; other client authentication, when sent, must name
//! the same client.

use super::super::assertion;
use super::super::credentials::{AuthMethod, AuthenticatedClient, Credentials, authenticate};
use super::super::model::GrantType;
use crate::error::AppError;
use crate::i18n::Detail;
use crate::oauth::OAuth;

/// The client of a jwt-bearer request, proven by its assertion; and the assertion's subject.
pub async fn authenticate_by_assertion(
    state: &actix_web::web::Data<OAuth>,
    assertion: &str,
    credentials: Option<Credentials>,
    body_client_id: Option<&str>,
) -> Result<(AuthenticatedClient, String), AppError> {
    // Other client authentication is checked first, as at every grant; a bare client_id is only
    // compared with the assertion's issuer.
    let other = match credentials {
        None | Some(Credentials::None { .. }) => None,
        Some(credentials) => Some(authenticate(state, Some(&credentials), "/oauth/token").await?),
    };
    let issuer = state.settings.issuer_str();
    let audiences = [issuer.to_owned(), format!("{issuer}/oauth/token")];
    let (client, claims) =
        assertion::verify(state, assertion, assertion::Use::Grant, &audiences).await?;
    if body_client_id.is_some_and(|id| id != client.id) {
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
    if other.is_some_and(|other| other.id() != client.id) {
        return Err(AppError::oauth(
            "invalid_grant",
            Detail::AssertionOfOtherClient,
        ));
    }
    // A public client has no secret and no keys, so it cannot sign an assertion: every jwt-bearer
    // client is confidential.
    let client = AuthenticatedClient {
        client,
        method: AuthMethod::Jwt,
    };
    Ok((client, claims.sub))
}
