//! A token request (RFC 6749 §3.2), read once: the form (no parameter repeated), the client's
//! [`Credentials`] and the grant with its own parameters.

use actix_web::HttpRequest;

use super::super::credentials::Credentials;
use super::super::model::GrantType;
use super::super::params::FormRequest;
use crate::error::AppError;
use crate::i18n::Detail;

/// What a service token (client_credentials, jwt-bearer) is asked for.
#[derive(Debug, Default)]
pub struct ServiceRequest {
    /// Requested scopes, space-separated.
    pub scope: Option<String>,
    /// The API (audience) the token is for; the default API when absent.
    pub resource: Option<String>,
}

/// A grant and what it brings. `Debug` shows no code, token or assertion.
pub enum Grant {
    /// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5).
    AuthorizationCode {
        code: Option<String>,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    /// RFC 6749 §4.4.
    ClientCredentials(ServiceRequest),
    /// RFC 6749 §6.
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
    },
    /// RFC 7523 §2.1: an assertion exchanged for a token.
    JwtBearer {
        assertion: String,
        service: ServiceRequest,
    },
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind().as_str())
    }
}

impl Grant {
    pub fn kind(&self) -> GrantType {
        match self {
            Self::AuthorizationCode { .. } => GrantType::AuthorizationCode,
            Self::ClientCredentials(_) => GrantType::ClientCredentials,
            Self::RefreshToken { .. } => GrantType::RefreshToken,
            Self::JwtBearer { .. } => GrantType::JwtBearer,
        }
    }
}

/// The `grant` label of a metric: a supported grant, `other` (never the value sent), or `none`.
pub fn grant_label(grant: Option<GrantType>) -> &'static str {
    match grant {
        Some(GrantType::AuthorizationCode) => "authorization_code",
        Some(GrantType::ClientCredentials) => "client_credentials",
        Some(GrantType::RefreshToken) => "refresh_token",
        Some(GrantType::JwtBearer) => "jwt_bearer",
        None => "other",
    }
}

/// A token request: who asks (the credentials, not yet checked) and for what.
#[derive(Debug)]
pub struct TokenRequest {
    pub credentials: Option<Credentials>,
    /// The `client_id` of the body, as sent (the jwt-bearer grant compares it with the assertion's).
    pub client_id: Option<String>,
    pub grant: Grant,
}

impl TokenRequest {
    /// Reads the request. `label` is set to the grant's metric label as soon as `grant_type` is
    /// known, so a refusal after that is counted under its grant.
    pub fn read(
        req: &HttpRequest,
        body: &[u8],
        label: &mut &'static str,
    ) -> Result<Self, AppError> {
        let mut form = FormRequest::read(req, body)?;
        let grant_type = form.require("grant_type")?;
        tracing::Span::current().record("grant_type", grant_type);
        let kind = GrantType::parse(grant_type);
        *label = grant_label(kind);
        let take = |form: &mut FormRequest, name: &str| form.take(name);
        let grant = match kind {
            Some(GrantType::JwtBearer) => {
                let assertion = form.require("assertion")?.to_owned();
                Grant::JwtBearer {
                    assertion,
                    service: ServiceRequest {
                        scope: take(&mut form, "scope"),
                        resource: take(&mut form, "resource"),
                    },
                }
            }
            None => {
                return Err(AppError::oauth(
                    "unsupported_grant_type",
                    Detail::GrantTypeNotSupported {
                        grant_type: grant_type.chars().take(64).collect(),
                    },
                ));
            }
            Some(GrantType::ClientCredentials) => Grant::ClientCredentials(ServiceRequest {
                scope: take(&mut form, "scope"),
                resource: take(&mut form, "resource"),
            }),
            Some(GrantType::AuthorizationCode) => Grant::AuthorizationCode {
                code: take(&mut form, "code"),
                redirect_uri: take(&mut form, "redirect_uri"),
                code_verifier: take(&mut form, "code_verifier"),
            },
            Some(GrantType::RefreshToken) => {
                let refresh_token = form.require("refresh_token")?.to_owned();
                Grant::RefreshToken {
                    refresh_token,
                    scope: take(&mut form, "scope"),
                }
            }
        };
        let credentials = Credentials::parse(&form)?;
        Ok(Self {
            credentials,
            client_id: form.take("client_id"),
            grant,
        })
    }
}
