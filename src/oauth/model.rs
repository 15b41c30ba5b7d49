//! OAuth clients, APIs and scopes as stored, and the validated values they are built from.

use diesel::prelude::*;

use crate::db::schema::{oauth_clients, users};
use crate::error::AppError;
use crate::i18n::Detail;

crate::db::string_id! {
    /// An OAuth client's id (`cli_…`).
    ClientId
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = oauth_clients)]
pub struct Client {
    #[diesel(deserialize_as = String)]
    pub id: ClientId,
    pub name: String,
    pub owner_user_id: Option<String>,
    pub is_public: bool,
    pub secret_hash: Option<String>,
    pub token_endpoint_auth_method: String,
    pub grant_types: String,
    pub allowed_scopes: String,
    pub disabled_at: Option<i64>,
    /// `client_secret_jwt` only: the secret under the master key (AES-256-GCM), never plaintext.
    pub secret_encrypted: Option<Vec<u8>>,
    /// `private_key_jwt`: where the client publishes its keys, or its keys inline (a JWKS document).
    pub jwks_uri: Option<String>,
    pub jwks: Option<String>,
    /// Token requests per minute this client may make (`None`: `TESSERA_TOKEN_RATE_LIMIT`).
    pub token_rate_limit: Option<i32>,
    /// A resource server: the audiences (space-separated) of the APIs whose tokens it may introspect.
    /// `None`: not a resource server, introspection answers it `{"active": false}`.
    pub introspect_audiences: Option<String>,
    /// OpenID Connect: `public` (the user id is `sub`) or `pairwise` (a `sub` per sector).
    pub subject_type: String,
    /// `pairwise`: the sector its subjects are computed for (the host of its redirect URIs when
    /// it registered none).
    pub sector_identifier: Option<String>,
    /// The algorithm its ID tokens are signed with (`None`: RS256).
    pub id_token_signed_response_alg: Option<String>,
    /// Where RP-initiated logout may return (space-separated, matched exactly).
    pub post_logout_redirect_uris: String,
    /// Back-channel logout: where logout tokens are POSTed.
    pub backchannel_logout_uri: Option<String>,
    /// The user who owns the app is disabled: the app is refused until they are re-enabled.
    #[diesel(select_expression = owner_disabled())]
    pub owner_disabled: bool,
}

/// Whether the client's owner is a disabled user (a subquery of the client's own read).
#[diesel::dsl::auto_type]
fn owner_disabled() -> _ {
    diesel::dsl::exists(
        users::table
            .select(users::id)
            .filter(users::id.nullable().eq(oauth_clients::owner_user_id))
            .filter(users::disabled_at.is_not_null()),
    )
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("is_public", &self.is_public)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Neither the client nor the user who owns it is disabled.
    pub fn enabled(&self) -> bool {
        self.disabled_at.is_none() && !self.owner_disabled
    }

    pub fn has_grant(&self, grant: GrantType) -> bool {
        self.grant_types.split(' ').any(|g| g == grant.as_str())
    }

    pub fn auth_method(&self) -> TokenAuthMethod {
        TokenAuthMethod::parse(&self.token_endpoint_auth_method).unwrap_or(TokenAuthMethod::None)
    }

    /// Where RP-initiated logout may return, as registered.
    pub fn post_logout_redirect_uris(&self) -> Vec<&str> {
        self.post_logout_redirect_uris
            .split(' ')
            .filter(|s| !s.is_empty())
            .collect()
    }

    pub fn allowed_scopes(&self) -> impl Iterator<Item = &str> {
        self.allowed_scopes.split(' ').filter(|s| !s.is_empty())
    }

    /// The audiences of the APIs whose tokens this client may introspect (none: it may not).
    pub fn introspect_audiences(&self) -> Vec<&str> {
        self.introspect_audiences
            .as_deref()
            .map(|a| a.split(' ').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    /// Whether this client, as a resource server, may introspect tokens for `audience` (one of its
    /// [`Client::introspect_audiences`]).
    pub fn introspects_for(&self, audience: &str) -> bool {
        !audience.is_empty()
            && self
                .introspect_audiences
                .as_deref()
                .is_some_and(|a| a.split(' ').any(|s| s == audience))
    }
}

/// How a client authenticates at the token, revocation and introspection endpoints (RFC 7591 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuthMethod {
    /// A secret, sent by HTTP Basic or in the body (`client_secret_post` is accepted as well).
    ClientSecretBasic,
    /// An HS256 JWT signed with the client secret (RFC 7523 §2.2).
    ClientSecretJwt,
    /// A JWT signed with the client's private key (RS256, ES256 or EdDSA).
    PrivateKeyJwt,
    /// A public client: no authentication.
    None,
}

impl TokenAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_secret_basic" | "client_secret_post" => Some(Self::ClientSecretBasic),
            "client_secret_jwt" => Some(Self::ClientSecretJwt),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    pub fn uses_jwt(self) -> bool {
        matches!(self, Self::ClientSecretJwt | Self::PrivateKeyJwt)
    }
}

/// The grants Tessera implements. There is no implicit and no password grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
    RefreshToken,
    /// RFC 7523 §2.1: a JWT the client signed is exchanged for an access token.
    JwtBearer,
}

impl GrantType {
    pub const ALL: [GrantType; 4] = [
        GrantType::AuthorizationCode,
        GrantType::ClientCredentials,
        GrantType::RefreshToken,
        GrantType::JwtBearer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
            Self::JwtBearer => "urn:ietf:params:oauth:grant-type:jwt-bearer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// As [`GrantType::parse`], also taking the short name `jwt-bearer` (for the CLI and forms).
    pub fn parse_registration(s: &str) -> Option<Self> {
        match s {
            "jwt-bearer" | "jwt_bearer" => Some(Self::JwtBearer),
            other => Self::parse(other),
        }
    }
}

/// A redirect URI fit to register: absolute, no fragment, no wildcard, https unless loopback.
/// Kept exactly as given: authorization requests must match it character for character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<Self, Detail> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(Detail::UriEmpty);
        }
        if raw.contains('*') {
            return Err(Detail::UriWildcard);
        }
        if raw.contains('#') {
            return Err(Detail::UriFragment);
        }
        // RFC 3986 characters only: the URL parser would drop tabs and newlines, read `\` as `/` and
        // take quotes or spaces, so what is stored (and matched exactly) would not be what it means.
        if let Some(c) = raw
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && !"-._~:/?[]@!$&'()+,;=%".contains(*c))
        {
            return Err(Detail::UriCharacter {
                character: format!("{c:?}"),
            });
        }
        let bytes = raw.as_bytes();
        if bytes.iter().enumerate().any(|(i, b)| {
            *b == b'%'
                && !bytes
                    .get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        }) {
            return Err(Detail::UriPercent);
        }
        let url = url::Url::parse(raw).map_err(|_| Detail::UriNotAbsolute)?;
        if url.cannot_be_a_base() || url.host().is_none() {
            return Err(Detail::UriNotAbsolute);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Detail::UriCredentials);
        }
        match url.scheme() {
            "https" => {}
            "http" if crate::config::is_loopback_host(&url) => {}
            "http" => {
                return Err(Detail::UriNeedsHttps);
            }
            other => {
                return Err(Detail::UriScheme {
                    scheme: other.chars().take(64).collect(),
                });
            }
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub use crate::apis::valid_scope_name;

pub fn bad_request(detail: impl Into<Detail>) -> AppError {
    AppError::bad_request("invalid_request", detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:8000/cb",
            "http://[::1]/cb",
            "http://localhost:3000/callback?x=1",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "https://app.example.com/cb#frag",
            "https://*.example.com/cb",
            "/relative/cb",
            "http://app.example.com/cb",
            "javascript:alert(1)",
            "https://user:pw@app.example.com/cb",
            "",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scope_names() {
        assert!(
            valid_scope_name("read")
                && valid_scope_name("telemetry_apis")
                && valid_scope_name("a:b")
        );
        assert!(!valid_scope_name("a b") && !valid_scope_name("") && !valid_scope_name("q\"x"));
    }
}
