//! An authorization request (RFC 6749 §4.1.1 with PKCE, RFC 7636 §4.3), validated once into an
//! [`AuthorizeRequest`] or refused with an [`AuthorizeError`] that says how the refusal travels: as
//! the error page when the client or its redirect URI cannot be trusted (§4.1.2.1), else back to
//! the client's redirect URI.
//!
//! The checks are oxide-auth's (its `Authorization` state machine: the request's shape, response
//! type and scope syntax; its `Pkce` for the challenge, S256 only; its `ExactUrl` and
//! `IgnoreLocalPortUrl` for redirect URIs), driven step by step from here with our data: the client
//! read once through the node's cache, the API and its scopes likewise.

use std::borrow::Cow;
use std::sync::Arc;

use oxide_auth::code_grant::authorization::{self, Authorization, Input, Output};
use oxide_auth::code_grant::error::AuthorizationErrorType;
use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::primitives::grant::{Extensions, Value};
use oxide_auth::primitives::prelude::Scope;
use oxide_auth::primitives::registrar::{
    BoundClient, ExactUrl, IgnoreLocalPortUrl, PreGrant, RegisteredUrl,
};
use url::Url;

use super::super::credentials;
use super::super::model::{Client, GrantType};
use super::super::params::{printable, repeated};
use super::super::store;
use super::PKCE_EXTENSION;
use crate::apis::load_cached_api;
use crate::db::DbConn;
use crate::error::AppError;
use crate::i18n::Detail;
use crate::oauth::OAuth;

/// A valid authorization request, ready for the user's consent.
#[derive(Debug)]
pub struct AuthorizeRequest {
    pub client: Arc<Client>,
    /// Where the answer goes: the registered redirect URI (for a loopback one, with the port the
    /// request named, RFC 8252 §7.3).
    pub redirect_uri: Url,
    pub state: Option<String>,
    /// The negotiated scope, sorted and space-separated.
    pub scope: String,
    /// The API the token will be for (`resource`, else the default API).
    pub audience: String,
    /// The PKCE challenge as oxide-auth's `Pkce` encodes it (S256 only).
    pub challenge: String,
    /// `prompt=consent`: ask again even when the user consented before.
    pub force_consent: bool,
    /// The OpenID Connect parameters (Core §3.1.2.1).
    pub oidc: OpenIdParams,
    /// `response_mode=form_post`: the answer is a page that POSTs it to the redirect URI.
    pub form_post: bool,
    /// The request's parameters as received (empty ones dropped), for the consent form and for the
    /// return from the sign-in page.
    pub params: Vec<(String, String)>,
}

/// How a refused authorization request is answered.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or its redirect URI cannot be trusted: the error page, never a redirect.
    Page,
    /// An error for the client, at its (trusted) redirect URI.
    Redirect(Box<ClientError>),
    /// Something failed on our side.
    Failed(AppError),
}

/// An error the client learns at its redirect URI (RFC 6749 §4.1.2.1), with `state` when sent.
#[derive(Debug)]
pub struct ClientError {
    pub redirect_uri: Url,
    pub error: &'static str,
    pub detail: Option<Detail>,
    pub state: Option<String>,
    /// `response_mode=form_post` was asked: the error is POSTed too.
    pub form_post: bool,
}

/// The OpenID Connect parameters of an authorization request (Core §3.1.2.1), checked.
#[derive(Debug, Clone, Default)]
pub struct OpenIdParams {
    pub nonce: Option<String>,
    /// `prompt=none`: no page may be shown; an answer that needs one is an error.
    pub prompt_none: bool,
    /// `prompt=login`: the user signs in again.
    pub prompt_login: bool,
    /// Seconds since the sign-in after which the user signs in again.
    pub max_age: Option<i64>,
    /// Prefills the email on the sign-in page.
    pub login_hint: Option<String>,
    /// An ID token this server issued, naming the user the client expects.
    pub id_token_hint: Option<String>,
    /// The checked `claims` request.
    pub claims: Option<String>,
    /// The first of `ui_locales` the pages speak.
    pub ui_locales: Option<crate::i18n::Lang>,
    /// Set by Tessera on the return from a sign-in it required: sessions that signed in at or
    /// after this time satisfy `prompt=login` and `max_age` (the value is MACed).
    pub signed_in_after: Option<i64>,
}

/// The parameter Tessera adds to an authorization request it sends through a required sign-in.
pub const SIGNED_IN_AFTER: &str = "tessera_signed_in_after";
const SIGNED_IN_AFTER_PURPOSE: &str = "signed_in_after";

/// The value of [`SIGNED_IN_AFTER`] for `time`: `<time>.<MAC>`.
pub fn signed_in_after(state: &OAuth, time: i64) -> String {
    let t = time.to_string();
    let tag = state.hasher.tag(SIGNED_IN_AFTER_PURPOSE, t.as_bytes());
    format!("{t}.{tag}")
}

impl OpenIdParams {
    /// Reads and checks the parameters; the refusal's detail for `invalid_request`.
    fn read(state: &OAuth, request: &Params<'_>) -> Result<Self, Detail> {
        let mut out = Self::default();
        if let Some(nonce) = request.get("nonce") {
            if nonce.chars().count() > 512 {
                return Err(Detail::NonceTooLong);
            }
            out.nonce = Some(nonce.into_owned());
        }
        if let Some(prompt) = request.get("prompt") {
            let values: Vec<&str> = prompt.split(' ').filter(|p| !p.is_empty()).collect();
            if values
                .iter()
                .any(|p| !matches!(*p, "none" | "login" | "consent" | "select_account"))
                || (values.contains(&"none") && values.len() > 1)
            {
                return Err(Detail::PromptInvalid);
            }
            out.prompt_none = values.contains(&"none");
            out.prompt_login = values.contains(&"login");
        }
        if let Some(max_age) = request.get("max_age") {
            out.max_age = Some(
                max_age
                    .parse::<u32>()
                    .map(i64::from)
                    .map_err(|_| Detail::MaxAgeInvalid)?,
            );
        }
        out.login_hint = request
            .get("login_hint")
            .map(|h| h.chars().take(254).collect());
        out.id_token_hint = request.get("id_token_hint").map(Cow::into_owned);
        if let Some(claims) = request.get("claims") {
            out.claims = Some(
                super::super::oidc::parse_claims_request(&claims)
                    .ok_or(Detail::ClaimsRequestMalformed)?,
            );
        }
        out.ui_locales = request
            .get("ui_locales")
            .and_then(|l| crate::i18n::Lang::first_supported(&l));
        out.signed_in_after = request.get(SIGNED_IN_AFTER).and_then(|v| {
            let (t, tag) = v.split_once('.')?;
            state
                .hasher
                .verify_tag(SIGNED_IN_AFTER_PURPOSE, t.as_bytes(), tag)
                .then(|| t.parse().ok())
                .flatten()
        });
        Ok(out)
    }
}

impl From<AppError> for AuthorizeError {
    fn from(e: AppError) -> Self {
        Self::Failed(e)
    }
}

impl From<diesel::result::Error> for AuthorizeError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Failed(e.into())
    }
}

/// The parameters as oxide-auth's checks read them.
struct Params<'a>(&'a [(String, String)]);

impl Params<'_> {
    fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| Cow::Borrowed(v.as_str()))
    }
}

impl authorization::Request for Params<'_> {
    fn valid(&self) -> bool {
        true // repeated parameters are refused before (`validate`)
    }

    fn client_id(&self) -> Option<Cow<'_, str>> {
        self.get("client_id")
    }

    fn scope(&self) -> Option<Cow<'_, str>> {
        self.get("scope")
    }

    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        self.get("redirect_uri")
    }

    fn state(&self) -> Option<Cow<'_, str>> {
        self.get("state")
    }

    fn response_type(&self) -> Option<Cow<'_, str>> {
        self.get("response_type")
    }

    fn extension(&self, key: &str) -> Option<Cow<'_, str>> {
        self.get(key)
    }
}

impl AuthorizeRequest {
    /// Validates an authorization request (query of the GET, or the fields of the consent form), in
    /// oxide-auth's order: repeated parameters, client and redirect URI (the page), then response
    /// type, scope syntax, PKCE and the scopes themselves (redirects).
    pub fn validate(
        conn: &mut DbConn,
        state: &OAuth,
        mut params: Vec<(String, String)>,
    ) -> Result<Self, AuthorizeError> {
        // RFC 6749 §3.1: no parameter may be included more than once. Refused before anything else
        // (no sign-in, no consent, no code).
        if let Some(name) = repeated(&params) {
            return Err(refuse_repeated(conn, state, &params, name));
        }
        // RFC 6749 §3.1: a parameter without a value is omitted. A code_challenge that is not the 43
        // base64url characters of a SHA-256 (RFC 7636 §4.2) counts as missing, so PKCE refuses it.
        params.retain(|(k, v)| !v.is_empty() && (k != "code_challenge" || s256_shaped(v)));
        let response_mode = params
            .iter()
            .find(|(k, _)| k == "response_mode")
            .map(|(_, v)| v.as_str());
        let form_post = response_mode == Some("form_post");
        let mode_ok = matches!(response_mode, None | Some("query" | "form_post"));
        let request = Params(&params);
        let mut machine = Authorization::new(&request);
        let mut input = Input::None;
        let mut client: Option<Arc<Client>> = None;
        let mut bound_to: Option<Url> = None;
        let mut audience = String::new();
        loop {
            input = match machine.advance(input) {
                Output::Bind {
                    client_id,
                    redirect_uri,
                } => {
                    let (found, bound) = bind(conn, state, &client_id, redirect_uri.as_ref())?
                        .ok_or(AuthorizeError::Page)?;
                    client = Some(found);
                    bound_to = Some(bound.redirect_uri.to_url());
                    Input::Bound {
                        request: &request,
                        bound_client: bound,
                    }
                }
                Output::Extend => {
                    // S256 only: `Pkce::required()` without `allow_plain()`.
                    let challenge = Pkce::required()
                        .challenge(
                            request.get("code_challenge_method"),
                            request.get("code_challenge"),
                        )
                        .map_err(|()| {
                            to_client(&bound_to, "invalid_request", None, &request, form_post)
                        })?;
                    let mut extensions = Extensions::new();
                    extensions.set_raw(
                        PKCE_EXTENSION.to_owned(),
                        challenge.unwrap_or_else(|| Value::private(None)),
                    );
                    Input::Extended(extensions)
                }
                Output::Negotiate {
                    bound_client,
                    scope,
                } => {
                    let bound = BoundClient {
                        client_id: Cow::Owned(bound_client.client_id.to_string()),
                        redirect_uri: Cow::Owned(bound_client.redirect_uri.as_ref().clone()),
                    };
                    let client = client.clone().ok_or(AuthorizeError::Page)?;
                    audience = request
                        .get("resource")
                        .map(Cow::into_owned)
                        .unwrap_or_else(|| state.settings.issuer_str().to_owned());
                    let pre_grant = negotiate(conn, state, &client, bound, scope, &audience)?
                        .ok_or_else(|| {
                            to_client(&bound_to, "invalid_scope", None, &request, form_post)
                        })?;
                    Input::Negotiated {
                        pre_grant,
                        state: request.get("state").map(Cow::into_owned),
                    }
                }
                Output::Ok {
                    pre_grant,
                    state: client_state,
                    extensions,
                } => {
                    let challenge = extensions
                        .private()
                        .find(|(id, _)| *id == PKCE_EXTENSION)
                        .and_then(|(_, v)| v.map(str::to_owned))
                        .ok_or_else(|| AppError::internal("PKCE left no challenge"))?;
                    let client = client.ok_or(AuthorizeError::Page)?;
                    let refuse = |detail: Detail| {
                        to_client(
                            &bound_to,
                            "invalid_request",
                            Some(detail),
                            &request,
                            form_post,
                        )
                    };
                    if !mode_ok {
                        return Err(refuse(Detail::ResponseModeUnsupported));
                    }
                    let oidc = OpenIdParams::read(state, &request).map_err(refuse)?;
                    let force_consent = request
                        .get("prompt")
                        .is_some_and(|p| p.split(' ').any(|x| x == "consent"));
                    return Ok(Self {
                        client,
                        redirect_uri: pre_grant.redirect_uri.to_url(),
                        state: client_state,
                        scope: scope_string(&pre_grant.scope),
                        audience,
                        challenge,
                        force_consent,
                        oidc,
                        form_post,
                        params,
                    });
                }
                Output::Err(error) => {
                    return Err(refusal(error, bound_to, request.get("state"), form_post));
                }
            };
        }
    }
}

/// A refusal for the client at its bound redirect URI (the state machine binds before any step
/// that can refuse this way).
fn to_client(
    bound_to: &Option<Url>,
    error: &'static str,
    detail: Option<Detail>,
    request: &Params<'_>,
    form_post: bool,
) -> AuthorizeError {
    match bound_to {
        Some(redirect_uri) => AuthorizeError::Redirect(Box::new(ClientError {
            redirect_uri: redirect_uri.clone(),
            error,
            detail,
            state: request.get("state").map(Cow::into_owned),
            form_post,
        })),
        None => AuthorizeError::Failed(AppError::internal("a refusal before the client was bound")),
    }
}

/// RFC 7636 §4.2: the 43 base64url characters of a SHA-256.
fn s256_shaped(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// oxide-auth's refusal as ours: ignored requests get the page, the others go back to the client.
fn refusal(
    mut error: authorization::Error,
    bound_to: Option<Url>,
    state: Option<Cow<'_, str>>,
    form_post: bool,
) -> AuthorizeError {
    let kind = error.description().map(|d| d.kind());
    match (error, bound_to, kind) {
        (authorization::Error::Redirect(_), Some(redirect_uri), Some(kind)) => {
            AuthorizeError::Redirect(Box::new(ClientError {
                redirect_uri,
                error: error_code(kind),
                detail: None,
                state: state.map(Cow::into_owned),
                form_post,
            }))
        }
        (authorization::Error::PrimitiveError, _, _) => {
            AuthorizeError::Failed(AppError::internal("the authorization request failed"))
        }
        _ => AuthorizeError::Page,
    }
}

fn error_code(kind: AuthorizationErrorType) -> &'static str {
    match kind {
        AuthorizationErrorType::InvalidRequest => "invalid_request",
        AuthorizationErrorType::UnauthorizedClient => "unauthorized_client",
        AuthorizationErrorType::AccessDenied => "access_denied",
        AuthorizationErrorType::UnsupportedResponseType => "unsupported_response_type",
        AuthorizationErrorType::InvalidScope => "invalid_scope",
        AuthorizationErrorType::ServerError => "server_error",
        AuthorizationErrorType::TemporarilyUnavailable => "temporarily_unavailable",
    }
}

/// A scope as stored and shown: its tokens sorted and space-separated (oxide-auth's order is
/// unspecified).
pub fn scope_string(scope: &Scope) -> String {
    let mut names: Vec<&str> = scope.iter().collect();
    names.sort_unstable();
    names.join(" ")
}

/// The client and where its answers go, when they can be trusted: an enabled client registered for
/// the code grant, and a `redirect_uri` matching one it registered (RFC 9700 §4.1.3: exact string
/// match; for a loopback redirect URI any port, RFC 8252 §7.3), or none when it registered exactly
/// one. `None`: show the page.
fn bind(
    conn: &mut DbConn,
    state: &OAuth,
    client_id: &str,
    given: Option<&ExactUrl>,
) -> Result<Option<(Arc<Client>, BoundClient<'static>)>, AuthorizeError> {
    let client = match credentials::cached(state, client_id) {
        Some(client) => Some(client),
        None => credentials::load(conn, state, client_id)?,
    };
    let Some(client) = client.filter(|c| c.enabled() && c.has_grant(GrantType::AuthorizationCode))
    else {
        return Ok(None);
    };
    let registered = store::find_redirect_uris(conn, &client.id)?;
    let chosen = match given {
        Some(given) => registered
            .iter()
            .find(|r| redirect_matches(r, given))
            .map(|_| given.as_str().to_owned()),
        None if registered.len() == 1 => Some(registered[0].clone()),
        None => None,
    };
    let Some(exact) = chosen.and_then(|c| ExactUrl::new(c).ok()) else {
        return Ok(None);
    };
    let bound = BoundClient {
        client_id: Cow::Owned(client.id.to_string()),
        redirect_uri: Cow::Owned(RegisteredUrl::Exact(exact)),
    };
    Ok(Some((client, bound)))
}

/// Whether a requested redirect URI matches a registered one: the same string, except the port of
/// a loopback redirect URI (`localhost` through oxide-auth's `IgnoreLocalPortUrl`; the IP literals
/// `127.0.0.1` and `[::1]` that RFC 8252 §7.3 recommends, compared the same way here).
pub fn redirect_matches(registered: &str, given: &ExactUrl) -> bool {
    if registered == given.as_str() {
        return true;
    }
    if let Ok(local) = IgnoreLocalPortUrl::new(registered)
        && RegisteredUrl::IgnorePortOnLocalhost(local) == *given
    {
        return true;
    }
    match (
        without_loopback_port(registered),
        without_loopback_port(given.as_str()),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// An `http` redirect URI on a loopback IP literal with its port taken out of the authority, as
/// written (no normalisation); `None` for any other URI.
fn without_loopback_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if host.ends_with(']') || !host.contains(':') => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            host
        }
        _ => authority,
    };
    matches!(host, "127.0.0.1" | "[::1]").then(|| format!("http://{host}{tail}"))
}

/// Scopes must be allowed to the client and defined on the requested API. No scope asked: the
/// client's allowed scopes that the API defines. `None`: `invalid_scope` (an unknown API too).
fn negotiate(
    conn: &mut DbConn,
    state: &OAuth,
    client: &Client,
    bound: BoundClient<'static>,
    scope: Option<Scope>,
    audience: &str,
) -> Result<Option<PreGrant>, AuthorizeError> {
    let Some(api) = load_cached_api(conn, &state.apis, audience)? else {
        return Ok(None);
    };
    let defined = &api.1;
    let allowed: Vec<&str> = client.allowed_scopes().collect();
    let names: Vec<String> = match &scope {
        Some(requested) => {
            let names: Vec<String> = requested.iter().map(str::to_owned).collect();
            if names
                .iter()
                .any(|n| !allowed.contains(&n.as_str()) || !defined.contains(n))
            {
                return Ok(None);
            }
            names
        }
        None => allowed
            .iter()
            .filter(|a| defined.iter().any(|d| d == *a))
            .map(|s| (*s).to_owned())
            .collect(),
    };
    if names.is_empty() {
        return Ok(None);
    }
    let Ok(scope) = names.join(" ").parse::<Scope>() else {
        return Ok(None);
    };
    Ok(Some(PreGrant {
        client_id: bound.client_id.into_owned(),
        redirect_uri: bound.redirect_uri.into_owned(),
        scope,
    }))
}

/// An authorization request with the parameter `name` repeated (RFC 6749 §3.1), following §4.1.2.1:
/// while `client_id` and `redirect_uri` cannot be trusted (one of them is repeated, or they are not
/// a registered pair) the error page is shown and the browser is never redirected; otherwise the
/// error goes back to the client's redirect URI as `error=invalid_request` (with `state` when it was
/// sent once).
fn refuse_repeated(
    conn: &mut DbConn,
    state: &OAuth,
    params: &[(String, String)],
    name: &str,
) -> AuthorizeError {
    // The value of a parameter sent exactly once, and not empty.
    let once = |k: &str| -> Option<String> {
        let mut values = params.iter().filter(|(n, _)| n == k).map(|(_, v)| v);
        match (values.next(), values.next()) {
            (Some(v), None) if !v.is_empty() => Some(v.clone()),
            _ => None,
        }
    };
    let client_id = match (name, once("client_id")) {
        ("client_id" | "redirect_uri", _) | (_, None) => return AuthorizeError::Page,
        (_, Some(client_id)) => client_id,
    };
    let given = match once("redirect_uri").map(ExactUrl::new) {
        Some(Ok(u)) => Some(u),
        Some(Err(_)) => return AuthorizeError::Page,
        None => None,
    };
    match bind(conn, state, &client_id, given.as_ref()) {
        Ok(Some((_, bound))) => AuthorizeError::Redirect(Box::new(ClientError {
            redirect_uri: bound.redirect_uri.to_url(),
            error: "invalid_request",
            detail: Some(Detail::RepeatedParameter {
                name: printable(name),
            }),
            state: once("state"),
            form_post: once("response_mode").as_deref() == Some("form_post"),
        })),
        Ok(None) => AuthorizeError::Page,
        Err(e) => e,
    }
}
