//! Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3):
//! the [`Credentials`] a request presents, parsed once, and the one cached path from them to an
//! [`AuthenticatedClient`]: `client_secret_basic`, `client_secret_post`, `client_secret_jwt` and
//! `private_key_jwt` (RFC 7523 §2.2), and `none` for public clients.

use std::sync::Arc;

use base64::Engine as _;

use super::assertion::{self, CLIENT_ASSERTION_TYPE};
use super::model::Client;
use super::params::FormRequest;
use super::{CLIENT_SECRET_PURPOSE, store};
use crate::crypto::Hasher;
use crate::error::AppError;
use crate::i18n::Detail;
use crate::oauth::OAuth;

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

/// The client authentication a request presents. `Debug` never prints a secret or an assertion.
pub enum Credentials {
    /// `Authorization: Basic` (RFC 6749 §2.3.1), id and secret form-url-decoded.
    Basic(BasicCredentials),
    /// `client_id` and `client_secret` in the body.
    Post { client_id: String, secret: String },
    /// `client_assertion` (RFC 7523 §2.2), with the body's `client_id` when one was sent.
    Assertion {
        jwt: String,
        client_id: Option<String>,
    },
    /// A bare `client_id`: a public client (or, at the jwt-bearer grant, the client naming itself).
    None { client_id: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, id) = match self {
            Self::Basic(basic) => ("Basic", Some(basic.client_id())),
            Self::Post { client_id, .. } => ("Post", Some(client_id.as_str())),
            Self::Assertion { client_id, .. } => ("Assertion", client_id.as_deref()),
            Self::None { client_id } => ("None", Some(client_id.as_str())),
        };
        f.debug_struct(kind)
            .field("client_id", &id)
            .finish_non_exhaustive()
    }
}

fn invalid_client(why: Detail) -> AppError {
    AppError::oauth("invalid_client", why)
}

impl Credentials {
    /// The credentials of a request, or `None` when it presents none. Two kinds at once (Basic and a
    /// `client_secret`, an assertion and a secret) and a body `client_id` naming another client are
    /// `invalid_request`; a malformed Basic header or an unknown assertion type is `invalid_client`.
    pub fn parse(form: &FormRequest) -> Result<Option<Self>, AppError> {
        let body_id = form.get("client_id");
        let body_secret = form.get("client_secret");
        match (
            form.get("client_assertion_type"),
            form.get("client_assertion"),
        ) {
            (Some(kind), Some(jwt)) => {
                if kind != CLIENT_ASSERTION_TYPE {
                    return Err(invalid_client(Detail::AssertionTypeUnsupported));
                }
                if form.authorization.is_some() || body_secret.is_some() {
                    return Err(AppError::oauth(
                        "invalid_request",
                        Detail::AssertionAndSecret,
                    ));
                }
                return Ok(Some(Self::Assertion {
                    jwt: jwt.to_owned(),
                    client_id: body_id.map(str::to_owned),
                }));
            }
            (None, None) => {}
            _ => {
                return Err(AppError::oauth(
                    "invalid_request",
                    Detail::AssertionTypeWithoutAssertion,
                ));
            }
        }
        Ok(match &form.authorization {
            Some(header) => {
                let basic = basic_credentials(header)?;
                if body_secret.is_some() {
                    return Err(AppError::oauth(
                        "invalid_request",
                        Detail::BasicAndClientSecret,
                    ));
                }
                if body_id.is_some_and(|b| b != basic.client_id()) {
                    return Err(AppError::oauth(
                        "invalid_request",
                        Detail::BodyClientIdDiffers,
                    ));
                }
                Some(Self::Basic(basic))
            }
            None => match (body_id, body_secret) {
                (Some(id), Some(secret)) => Some(Self::Post {
                    client_id: id.to_owned(),
                    secret: secret.to_owned(),
                }),
                (Some(id), None) => Some(Self::None {
                    client_id: id.to_owned(),
                }),
                (None, _) => None,
            },
        })
    }
}

/// The `client_id` and `client_secret` of an `Authorization: Basic` header, form-url-decoded, in
/// one string (the header's decoding, reused when there is nothing to form-decode, as for a
/// generated id and secret). `Debug` shows the id only.
pub struct BasicCredentials {
    text: String,
    /// Where the id ends and the secret begins.
    split: usize,
}

impl BasicCredentials {
    pub fn client_id(&self) -> &str {
        &self.text[..self.split]
    }

    pub fn secret(&self) -> &str {
        &self.text[self.split..]
    }
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("client_id", &self.client_id())
            .finish_non_exhaustive()
    }
}

/// The `client_id` and `client_secret` of an `Authorization: Basic` header, form-url-decoded. The
/// header is ASCII (`header_text`): it is trimmed and cut by byte, which is exact for ASCII and
/// shorter code than the searches by `char`.
pub fn basic_credentials(header: &str) -> Result<BasicCredentials, AppError> {
    let header = header.trim_ascii();
    let space = memchr::memchr(b' ', header.as_bytes())
        .ok_or_else(|| invalid_client(Detail::AuthorizationHeaderMalformed))?;
    let (scheme, rest) = (&header[..space], &header[space + 1..]);
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid_client(Detail::AuthorizationSchemeUnsupported));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim_ascii())
        .map_err(|_| invalid_client(Detail::BasicCredentialsMalformed))?;
    let mut text = String::from_utf8(decoded)
        .map_err(|_| invalid_client(Detail::BasicCredentialsMalformed))?;
    let colon = memchr::memchr(b':', text.as_bytes())
        .ok_or_else(|| invalid_client(Detail::BasicCredentialsMalformed))?;
    if memchr::memchr2(b'%', b'+', text.as_bytes()).is_none() {
        text.remove(colon);
        return Ok(BasicCredentials { text, split: colon });
    }
    match (form_decode(&text[..colon]), form_decode(&text[colon + 1..])) {
        (Some(id), Some(secret)) => Ok(BasicCredentials {
            split: id.len(),
            text: id + secret.as_str(),
        }),
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

/// A client that proved itself (or, public, named itself), and how.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client: Arc<Client>,
    pub method: AuthMethod,
}

impl AuthenticatedClient {
    pub fn id(&self) -> &str {
        &self.client.id
    }

    /// Proved itself with a secret or an assertion (not a public client).
    pub fn is_confidential(&self) -> bool {
        self.method != AuthMethod::None
    }
}

/// Authenticates the client of a request at `endpoint` (its path, an audience a client assertion
/// may name). Every failure to prove the client is 401 `invalid_client`, whatever the reason, so
/// nothing is learnt about which ids exist. The credentials are borrowed and an assertion is
/// checked in a future of its own: this one sits in every token, introspection and revocation
/// request's future, which actix boxes.
pub async fn authenticate(
    state: &actix_web::web::Data<OAuth>,
    credentials: Option<&Credentials>,
    endpoint: &str,
) -> Result<AuthenticatedClient, AppError> {
    let (client_id, secret, method) = match credentials {
        None => return Err(invalid_client(Detail::NoClientAuthentication)),
        Some(Credentials::Assertion { jwt, client_id }) => {
            return Box::pin(authenticate_assertion(
                state,
                jwt,
                client_id.as_deref(),
                endpoint,
            ))
            .await;
        }
        Some(Credentials::Basic(basic)) => (
            basic.client_id(),
            Some(basic.secret()),
            AuthMethod::SecretBasic,
        ),
        Some(Credentials::Post { client_id, secret }) => (
            client_id.as_str(),
            Some(secret.as_str()),
            AuthMethod::SecretPost,
        ),
        Some(Credentials::None { client_id }) => (client_id.as_str(), None, AuthMethod::None),
    };
    let client = find(state, client_id)
        .await?
        .ok_or_else(|| invalid_client(Detail::ClientUnknown))?;
    accepts(&client, &state.hasher, secret)?;
    // A public client proves nothing, whatever it sent.
    let method = if client.is_public {
        AuthMethod::None
    } else {
        method
    };
    Ok(AuthenticatedClient { client, method })
}

/// `private_key_jwt` and `client_secret_jwt` (RFC 7523 §2.2): the client is the assertion's issuer,
/// and a `client_id` sent beside it must name the same client.
async fn authenticate_assertion(
    state: &actix_web::web::Data<OAuth>,
    jwt: &str,
    client_id: Option<&str>,
    endpoint: &str,
) -> Result<AuthenticatedClient, AppError> {
    let issuer = state.settings.issuer_str();
    // RFC 7523 §3: the issuer or the token endpoint; at revocation and introspection also their own
    // URL.
    let audiences = [
        issuer.to_owned(),
        format!("{issuer}/oauth/token"),
        format!("{issuer}{endpoint}"),
    ];
    let (client, _) =
        assertion::verify(state, jwt, assertion::Use::ClientAuthentication, &audiences).await?;
    if client_id.is_some_and(|id| id != client.id) {
        return Err(AppError::oauth(
            "invalid_request",
            Detail::ClientIdNotAssertionIssuer,
        ));
    }
    Ok(AuthenticatedClient {
        client,
        method: AuthMethod::Jwt,
    })
}

/// Whether `client` accepts these credentials: enabled, not a JWT-authenticated client, and the
/// secret for a confidential client (compared in constant time by HMAC verification), none for a
/// public one.
fn accepts(client: &Client, hasher: &Hasher, secret: Option<&str>) -> Result<(), AppError> {
    let failed = || invalid_client(Detail::ClientUnknown);
    // A client registered for JWT authentication proves itself with assertions only.
    if !client.enabled() || client.auth_method().uses_jwt() {
        return Err(failed());
    }
    match (&client.secret_hash, secret) {
        (Some(stored), Some(given))
            if !client.is_public
                && hasher.verify_hash(CLIENT_SECRET_PURPOSE, given.as_bytes(), stored) =>
        {
            Ok(())
        }
        (_, None) if client.is_public => Ok(()),
        _ => Err(failed()),
    }
}

fn cache_key(state: &OAuth, client_id: &str) -> crate::cache::KeyHash {
    crate::cache::KeyHash(state.hasher.lookup_key("cl", client_id.as_bytes()))
}

/// The client `client_id`: from the node's client cache when it holds a fresh answer, else read
/// (and then cached). The one way the OAuth endpoints find a client.
pub fn find<'a>(
    state: &'a actix_web::web::Data<OAuth>,
    client_id: &str,
) -> crate::cache::NowOrLater<'a, Result<Option<Arc<Client>>, AppError>> {
    if let Some(client) = cached(state, client_id) {
        return crate::cache::now(Ok(Some(client)));
    }
    let st = state.clone();
    let id = client_id.to_owned();
    crate::cache::later(crate::db::run(&state.pool, move |conn| {
        load(conn, &st, &id)
    }))
}

/// The client from the cache, when it holds a fresh answer (counted as a hit or a miss).
pub fn cached(state: &OAuth, client_id: &str) -> Option<Arc<Client>> {
    state
        .client_cache
        .get(&cache_key(state, client_id))
        .flatten()
        .filter(|c| c.id == client_id)
}

/// [`find`] on a connection the caller holds, after [`cached`] missed: the cache is looked at once
/// more (another request may have stored the client meanwhile), then the client read and cached.
/// Unknown ids are not cached.
pub fn load(
    conn: &mut crate::db::DbConn,
    state: &OAuth,
    client_id: &str,
) -> Result<Option<Arc<Client>>, AppError> {
    let key = cache_key(state, client_id);
    if let Some(client) = state
        .client_cache
        .recheck(&key)
        .flatten()
        .filter(|c| c.id == client_id)
    {
        return Ok(Some(client));
    }
    let generation = state.client_cache.generation();
    let client = store::find_client(conn, client_id)?.map(Arc::new);
    if let Some(client) = &client {
        state
            .client_cache
            .put(key, Some(client.clone()), generation);
    }
    Ok(client)
}

/// Drops the cached client `client_id` on this node (its secret changed, or it was deleted).
pub fn forget_client(state: &OAuth, client_id: &str) {
    state.client_cache.forget_where(|c| c.id == client_id);
}

/// Runs `work`, an endpoint that authenticates its client, under the per-IP limit of failed client
/// authentications: an IP with too many recent failures gets 429 before any secret is checked, and
/// an `invalid_client` answer counts one failure. Successes never count.
///
/// `work` makes the endpoint's future once the IP may go on: made here, it is awaited where it is
/// made (a future passed in would be stored twice in this one, beside its awaited copy).
pub async fn throttle_failed_auth<T, F>(
    state: &OAuth,
    req: &actix_web::HttpRequest,
    work: impl FnOnce() -> F,
) -> Result<T, AppError>
where
    F: std::future::Future<Output = Result<T, AppError>>,
{
    use crate::ratelimit::{Network, failures::Failure};
    let network = Network::of(crate::request::client_addr(req));
    if state.limits.may_have_failures(Failure::ClientAuthIp) {
        state
            .limits
            .failure_gate(Failure::ClientAuthIp, &network.to_string())
            .await?;
    }
    let out = work().await;
    if let Err(AppError::OAuth {
        error: "invalid_client",
        ..
    }) = &out
    {
        // Boxed, as the failure is rare: its state would otherwise sit in every request's future
        // beside the answer (which the handler boxes).
        Box::pin(
            state
                .limits
                .record_failure(Failure::ClientAuthIp, &network.to_string()),
        )
        .await;
    }
    out
}
