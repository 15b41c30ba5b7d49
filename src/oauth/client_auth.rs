//! Client authentication for the token, revocation and introspection endpoints (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post`, `client_secret_jwt` and `private_key_jwt`
//! (RFC 7523 §2.2), and `none` for public clients.

use std::collections::HashMap;

use base64::Engine as _;

use super::assertion::{self, CLIENT_ASSERTION_TYPE};
use super::model::Client;
use super::{CLIENT_SECRET_PURPOSE, store};
use crate::crypto::Hasher;
use crate::db::DbConn;
use crate::error::AppError;
use crate::i18n::Detail;
use crate::state::AppState;

/// How the client proved itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    SecretBasic,
    SecretPost,
    /// A client assertion (RFC 7523), HS256 with the client secret or signed with the client's key.
    Jwt,
    /// A public client: identified by `client_id`, proven by nothing (PKCE protects its grants).
    None,
}

/// Parses an `application/x-www-form-urlencoded` OAuth request body; a repeated parameter is an error
/// (RFC 6749 §3.1), even one sent once without a value, as is a body of another type.
pub fn parse_form(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<HashMap<String, String>, AppError> {
    let is_form = content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| {
            ct.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(AppError::oauth("invalid_request", Detail::FormBodyRequired));
    }
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    if let Some(name) = repeated(&pairs) {
        return Err(AppError::oauth(
            "invalid_request",
            Detail::RepeatedParameter {
                name: printable(name),
            },
        ));
    }
    // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
    Ok(pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect())
}

/// The first parameter name that occurs more than once, with or without a value. RFC 6749 §3.1:
/// "Request and response parameters MUST NOT be included more than once."
pub fn repeated(params: &[(String, String)]) -> Option<&str> {
    let mut seen = std::collections::HashSet::with_capacity(params.len());
    params
        .iter()
        .map(|(k, _)| k.as_str())
        .find(|k| !seen.insert(*k))
}

/// A caller's parameter name fit for an `error_description` (RFC 6749 §5.2: printable ASCII
/// without `"` and `\`), at most 64 characters.
pub fn printable(name: &str) -> String {
    name.chars()
        .take(64)
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '?',
        })
        .collect()
}

/// The form parameters and the `Authorization` header of a token, revocation or introspection request.
pub fn read_request(
    req: &actix_web::HttpRequest,
    body: &[u8],
) -> Result<(HashMap<String, String>, Option<String>), AppError> {
    use actix_web::http::header;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let params = parse_form(content_type, body)?;
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()
        .map_err(|_| invalid_client(Detail::AuthorizationHeaderMalformed))?;
    Ok((params, authorization))
}

/// `Cache-Control: no-store` and `Pragma: no-cache` on a response that carries tokens (RFC 6749 §5.1).
pub fn no_store(mut res: actix_web::HttpResponse) -> actix_web::HttpResponse {
    use actix_web::http::header;
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res.headers_mut()
        .insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    res
}

fn invalid_client(why: Detail) -> AppError {
    AppError::oauth("invalid_client", why)
}

/// The `client_id` and `client_secret` of an `Authorization: Basic` header, form-url-decoded.
pub fn basic_credentials(header: &str) -> Result<(String, String), AppError> {
    let (scheme, rest) = header
        .trim()
        .split_once(' ')
        .ok_or_else(|| invalid_client(Detail::AuthorizationHeaderMalformed))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid_client(Detail::AuthorizationSchemeUnsupported));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| invalid_client(Detail::BasicCredentialsMalformed))?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| invalid_client(Detail::BasicCredentialsMalformed))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| invalid_client(Detail::BasicCredentialsMalformed))?;
    match (form_decode(id), form_decode(secret)) {
        (Some(id), Some(secret)) => Ok((id, secret)),
        _ => Err(invalid_client(Detail::BasicCredentialsMalformed)),
    }
}

/// One part of Basic credentials, form-url-decoded (RFC 6749 §2.3.1): `+` is a space, `%XX` a byte,
/// everything else (`&` and `=` included) stays as sent. A `%` without two hex digits, or bytes that
/// are not UTF-8, make it malformed: no U+FFFD stand-ins, so two secrets never decode alike.
fn form_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                u8::try_from(hi * 16 + lo).ok()?
            }
            b => b,
        });
    }
    String::from_utf8(out).ok()
}

/// Authenticates the client of a token-endpoint-style request. Every failure is 401 `invalid_client`
/// (with `WWW-Authenticate`), whatever the reason, so nothing is learnt about which ids exist.
pub fn authenticate_client(
    conn: &mut DbConn,
    hasher: &Hasher,
    authorization: Option<&str>,
    params: &HashMap<String, String>,
) -> Result<(Client, AuthMethod), AppError> {
    let (client_id, secret, method) = credentials(authorization, params)?;
    let client = check_client(conn, hasher, &client_id, secret.as_deref())?;
    Ok(with_method(client, method))
}

/// The client id, secret and method a request presents (Basic, or `client_id`/`client_secret` in
/// the body, or a bare `client_id` for a public client).
fn credentials(
    authorization: Option<&str>,
    params: &HashMap<String, String>,
) -> Result<(String, Option<String>, AuthMethod), AppError> {
    let body_id = params.get("client_id").map(String::as_str);
    let body_secret = params.get("client_secret").map(String::as_str);
    Ok(match authorization {
        Some(header) => {
            let (id, secret) = basic_credentials(header)?;
            if body_secret.is_some() {
                return Err(AppError::oauth(
                    "invalid_request",
                    Detail::BasicAndClientSecret,
                ));
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(AppError::oauth(
                    "invalid_request",
                    Detail::BodyClientIdDiffers,
                ));
            }
            (id, Some(secret), AuthMethod::SecretBasic)
        }
        None => match (body_id, body_secret) {
            (Some(id), Some(secret)) => (
                id.to_owned(),
                Some(secret.to_owned()),
                AuthMethod::SecretPost,
            ),
            (Some(id), None) => (id.to_owned(), None, AuthMethod::None),
            (None, _) => return Err(invalid_client(Detail::NoClientAuthentication)),
        },
    })
}

/// A public client proves nothing, whatever it sent.
fn with_method(client: Client, method: AuthMethod) -> (Client, AuthMethod) {
    if client.is_public {
        (client, AuthMethod::None)
    } else {
        (client, method)
    }
}

fn client_cache_key(state: &AppState, client_id: &str) -> crate::cache::KeyHash {
    crate::cache::KeyHash(state.hasher.hash_raw("cl", client_id.as_bytes()))
}

/// The client `client_id` from the node's client cache, when it holds a fresh answer.
fn cached_client(state: &AppState, client_id: &str) -> Option<std::sync::Arc<Client>> {
    state
        .client_cache
        .get(&client_cache_key(state, client_id))
        .flatten()
}

/// The client `client_id` from the cache, else from the database (and then cached). Called after
/// [`client_auth`] found no cached client (that miss is the one counted).
pub fn load_client(
    conn: &mut DbConn,
    state: &AppState,
    client_id: &str,
) -> Result<Option<Client>, AppError> {
    let key = client_cache_key(state, client_id);
    if let Some(client) = state.client_cache.recheck(&key).flatten() {
        return Ok(Some((*client).clone()));
    }
    let generation = state.client_cache.generation();
    let client = store::find_client(conn, client_id)?;
    if let Some(client) = &client {
        let entry = Some(std::sync::Arc::new(client.clone()));
        state.client_cache.put(key, entry, generation);
    }
    Ok(client)
}

/// Drops the cached client `client_id` on this node (its secret changed, or it was deleted).
pub fn forget_client(state: &AppState, client_id: &str) {
    state.client_cache.forget_where(|c| c.id == client_id);
}

/// The one client check: a confidential client must present its secret (compared in constant time
/// through HMAC verification); a public client must present none. Disabled and unknown clients, and
/// clients of a disabled owner, fail.
pub fn check_client(
    conn: &mut DbConn,
    hasher: &Hasher,
    client_id: &str,
    secret: Option<&str>,
) -> Result<Client, AppError> {
    accept(store::find_client(conn, client_id)?, hasher, secret)
}

/// [`check_client`] on a client already read (from the database or the cache).
fn accept(
    client: Option<Client>,
    hasher: &Hasher,
    secret: Option<&str>,
) -> Result<Client, AppError> {
    let client = client.ok_or_else(client_failed)?;
    accepts(&client, hasher, secret)?;
    Ok(client)
}

fn client_failed() -> AppError {
    invalid_client(Detail::ClientUnknown)
}

/// Whether `client` accepts these credentials: enabled, not a JWT-authenticated client, and the
/// secret for a confidential client (none for a public one).
fn accepts(client: &Client, hasher: &Hasher, secret: Option<&str>) -> Result<(), AppError> {
    // A client registered for JWT authentication proves itself with assertions only.
    if !client.enabled() || client.auth_method().uses_jwt() {
        return Err(client_failed());
    }
    match (&client.secret_hash, secret) {
        (Some(stored), Some(given))
            if !client.is_public
                && hasher.verify_hash(CLIENT_SECRET_PURPOSE, given.as_bytes(), stored) =>
        {
            Ok(())
        }
        (_, None) if client.is_public => Ok(()),
        _ => Err(client_failed()),
    }
}

/// A client already authenticated by an assertion, or the credentials to check in the request's
/// transaction (the fast path of secret-based clients takes no extra round trip).
pub enum ClientAuth {
    Verified(Box<Client>),
    /// Credentials already checked against the node's cached client (no database round trip).
    Checked(std::sync::Arc<Client>, AuthMethod),
    Credentials {
        authorization: Option<String>,
        params: HashMap<String, String>,
    },
}

/// `Debug` never prints credentials (the `Authorization` header, `client_secret`, assertions).
impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Verified(client) => f.debug_tuple("Verified").field(client).finish(),
            Self::Checked(client, method) => f
                .debug_tuple("Checked")
                .field(client)
                .field(method)
                .finish(),
            Self::Credentials { .. } => f.write_str("Credentials([redacted])"),
        }
    }
}

impl ClientAuth {
    /// The client and how it proved itself.
    pub fn resolve(
        self,
        conn: &mut DbConn,
        state: &AppState,
    ) -> Result<(Client, AuthMethod), AppError> {
        match self {
            Self::Verified(client) => Ok((*client, AuthMethod::Jwt)),
            Self::Checked(client, method) => Ok((std::sync::Arc::unwrap_or_clone(client), method)),
            Self::Credentials {
                authorization,
                params,
            } => {
                let (id, secret, method) = credentials(authorization.as_deref(), &params)?;
                let client = load_client(conn, state, &id)?;
                let client = accept(client, &state.hasher, secret.as_deref())?;
                Ok(with_method(client, method))
            }
        }
    }

    /// The same authentication with the credentials checked (one database read when the client
    /// is not cached; it is cached afterwards), so that the client is known before any grant work.
    pub async fn authenticated(
        self,
        state: &actix_web::web::Data<AppState>,
    ) -> Result<Self, AppError> {
        if self.checked().is_some() {
            return Ok(self);
        }
        let st = state.clone();
        let (client, method) =
            crate::db::run(&state.pool, move |conn| self.resolve(conn, &st)).await?;
        Ok(Self::Checked(std::sync::Arc::new(client), method))
    }

    /// The checked client when no database work is left (assertion, or a cached client).
    pub fn checked(&self) -> Option<(&Client, AuthMethod)> {
        match self {
            Self::Verified(client) => Some((client.as_ref(), AuthMethod::Jwt)),
            Self::Checked(client, method) => Some((client, *method)),
            Self::Credentials { .. } => None,
        }
    }
}

/// Runs `work`, an endpoint that authenticates its client, under the per-IP limit of failed client
/// authentications: an IP with too many recent failures gets 429 before any secret is checked, and
/// an `invalid_client` answer counts one failure. Successes never count.
pub async fn throttle_failed_auth<T>(
    state: &AppState,
    req: &actix_web::HttpRequest,
    work: impl std::future::Future<Output = Result<T, AppError>>,
) -> Result<T, AppError> {
    use crate::ratelimit::failures::{Failure, ip_key};
    let ip = ip_key(&crate::request::client_ip(req));
    state
        .limits
        .failure_gate(Failure::ClientAuthIp, &ip)
        .await?;
    let out = work.await;
    if let Err(AppError::OAuth {
        error: "invalid_client",
        ..
    }) = &out
    {
        state
            .limits
            .record_failure(Failure::ClientAuthIp, &ip)
            .await;
    }
    out
}

/// Reads the client authentication of a request. A `client_assertion` (RFC 7523 §2.2) is verified
/// here, off the database connection (its keys may have to be fetched); anything else is returned as
/// credentials for [`ClientAuth::resolve`].
pub async fn client_auth(
    state: &AppState,
    endpoint: &str,
    authorization: Option<String>,
    params: &HashMap<String, String>,
) -> Result<ClientAuth, AppError> {
    let (Some(kind), Some(jwt)) = (
        params.get("client_assertion_type"),
        params.get("client_assertion"),
    ) else {
        if params.contains_key("client_assertion") || params.contains_key("client_assertion_type") {
            return Err(AppError::oauth(
                "invalid_request",
                Detail::AssertionTypeWithoutAssertion,
            ));
        }
        // A client this node read recently is checked here, without a database round trip.
        let (id, secret, method) = credentials(authorization.as_deref(), params)?;
        if let Some(client) = cached_client(state, &id) {
            accepts(&client, &state.hasher, secret.as_deref())?;
            let method = if client.is_public {
                AuthMethod::None
            } else {
                method
            };
            return Ok(ClientAuth::Checked(client, method));
        }
        return Ok(ClientAuth::Credentials {
            authorization,
            params: params.clone(),
        });
    };
    if kind != CLIENT_ASSERTION_TYPE {
        return Err(invalid_client(Detail::AssertionTypeUnsupported));
    }
    if authorization.is_some() || params.contains_key("client_secret") {
        return Err(AppError::oauth(
            "invalid_request",
            Detail::AssertionAndSecret,
        ));
    }
    let issuer = state.settings.issuer_str();
    // RFC 7523 §3: the issuer or the token endpoint; at revocation and introspection also their own URL.
    let audiences = [
        issuer.to_owned(),
        format!("{issuer}/oauth/token"),
        format!("{issuer}{endpoint}"),
    ];
    let (client, _) =
        assertion::verify(state, jwt, assertion::Use::ClientAuthentication, &audiences).await?;
    if params.get("client_id").is_some_and(|id| *id != client.id) {
        return Err(AppError::oauth(
            "invalid_request",
            Detail::ClientIdNotAssertionIssuer,
        ));
    }
    Ok(ClientAuth::Verified(Box::new(client)))
}
