//! The oxide-auth side: our actix-free adapter (`OAuthRequest`/`OAuthResponse`) and `Flow`, one
//! per request, implementing `Registrar`, `Authorizer`, `Issuer` and `OwnerSolicitor` over Diesel.
//! oxide-auth runs the authorization endpoint and the code exchange with PKCE; the rest is ours.

use std::borrow::Cow;
use std::cell::RefCell;

use chrono::{TimeZone as _, Utc};
use diesel::Connection as _;
use oxide_auth::endpoint::{
    Endpoint, NormalizedParameter, OAuthError, OwnerConsent, OwnerSolicitor, QueryParameter,
    Scopes, Solicitation, Template, WebRequest, WebResponse,
};
use oxide_auth::frontends::simple::extensions::{AddonList, Pkce};
use oxide_auth::primitives::grant::{Extensions, Grant, Value};
use oxide_auth::primitives::issuer::{IssuedToken, RefreshedToken, TokenType};
use oxide_auth::primitives::prelude::{Authorizer, Issuer, PreGrant, Registrar, Scope};
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, ExactUrl, RegisteredUrl, RegistrarError,
};
use url::Url;

use super::client_auth::check_client;
use super::model::{Client, GrantType};
use super::store;
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::i18n::Detail;
use crate::jwt::AccessClaims;
use crate::state::AppState;

/// An OAuth request as oxide-auth sees it: parameters (query or form) and the Authorization header.
/// Its `Debug` shows neither (they hold secrets and codes).
pub struct OAuthRequest {
    params: NormalizedParameter,
    body: NormalizedParameter,
    auth: Option<String>,
}

impl std::fmt::Debug for OAuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuthRequest([redacted])")
    }
}

impl OAuthRequest {
    /// An authorization request: its parameters come from the query (GET) or the consent form (POST).
    pub fn authorization(params: &[(String, String)]) -> Self {
        Self {
            params: params.iter().cloned().collect(),
            body: NormalizedParameter::new(),
            auth: None,
        }
    }

    /// A token request. `auth` is a Basic header already url-decoded and re-encoded by the caller.
    pub fn token(params: &[(String, String)], auth: Option<String>) -> Self {
        Self {
            params: NormalizedParameter::new(),
            body: params.iter().cloned().collect(),
            auth,
        }
    }
}

impl WebRequest for OAuthRequest {
    type Error = AppError;
    type Response = OAuthResponse;

    fn query(&mut self) -> Result<Cow<'_, dyn QueryParameter + 'static>, AppError> {
        Ok(Cow::Borrowed(&self.params as &dyn QueryParameter))
    }

    fn urlbody(&mut self) -> Result<Cow<'_, dyn QueryParameter + 'static>, AppError> {
        Ok(Cow::Borrowed(&self.body as &dyn QueryParameter))
    }

    fn authheader(&mut self) -> Result<Option<Cow<'_, str>>, AppError> {
        Ok(self.auth.as_deref().map(Cow::Borrowed))
    }
}

/// What oxide-auth answered, before we turn it into an HTTP response. `Debug` omits the body (tokens).
#[derive(Default)]
pub struct OAuthResponse {
    pub status: u16,
    pub location: Option<Url>,
    pub body: Option<String>,
    /// An HTML page (login redirect target or consent page) produced by the owner solicitor.
    pub html: Option<String>,
}

impl std::fmt::Debug for OAuthResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthResponse")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl WebResponse for OAuthResponse {
    type Error = AppError;

    fn ok(&mut self) -> Result<(), AppError> {
        self.status = 200;
        Ok(())
    }

    fn redirect(&mut self, url: Url) -> Result<(), AppError> {
        self.status = 303;
        self.location = Some(url);
        Ok(())
    }

    fn client_error(&mut self) -> Result<(), AppError> {
        self.status = 400;
        Ok(())
    }

    fn unauthorized(&mut self, _header: &str) -> Result<(), AppError> {
        self.status = 401;
        Ok(())
    }

    fn body_text(&mut self, text: &str) -> Result<(), AppError> {
        self.body = Some(text.to_owned());
        Ok(())
    }

    fn body_json(&mut self, data: &str) -> Result<(), AppError> {
        self.body = Some(data.to_owned());
        Ok(())
    }
}

/// The owner's side of an authorization request, decided by the HTTP handler before the flow runs.
#[derive(Debug, Clone)]
pub enum Owner {
    /// Nobody is signed in: send the browser to the login page, then back to `return_to`.
    SignedOut { return_to: String },
    /// A signed-in user, with what they answered on the consent page (if this is its POST).
    SignedIn {
        user_id: String,
        decision: Option<bool>,
        force_consent: bool,
        consent_page: ConsentPage,
    },
}

/// Everything the consent page needs besides the pre-grant; rendered inside the flow.
#[derive(Debug, Clone)]
pub struct ConsentPage {
    pub lang: crate::i18n::Lang,
    pub csrf_token: String,
    pub params: Vec<(String, String)>,
    pub user_email: String,
}

/// A consumed code: what the token it buys will say.
#[derive(Debug, Clone)]
struct Redeemed {
    user_id: String,
    audience: String,
    scope: String,
    family_id: Option<String>,
    jti: String,
}

/// What the issuer produced, for the handler to answer with. `Debug` shows no token.
#[derive(Clone)]
pub struct Issued {
    /// The client the tokens were issued to (counted in its usage).
    pub client_id: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: i64,
    pub scope: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// One OAuth request's endpoint over the database. Created per request inside the blocking pool.
pub struct Flow<'a> {
    conn: RefCell<&'a mut DbConn>,
    state: &'a AppState,
    audience: String,
    owner: Option<Owner>,
    addons: AddonList,
    redeemed: Option<Redeemed>,
    pub issued: Option<Issued>,
    /// Set once the code was looked up: any later failure is about the grant (invalid_grant).
    extract_called: bool,
    /// A client already authenticated by a JWT assertion: oxide-auth's check passes it without a secret.
    pub preauthenticated: Option<String>,
    /// A concurrent redemption of the same code (a replay) revoked the family while this one was
    /// issuing: the answer is `invalid_grant`, not a storage failure.
    replayed: bool,
}

impl<'a> Flow<'a> {
    pub fn new(
        conn: &'a mut DbConn,
        state: &'a AppState,
        audience: String,
        owner: Option<Owner>,
    ) -> Self {
        let mut addons = AddonList::new();
        // S256 only: Pkce::required() without allow_plain().
        addons.push_code(Pkce::required());
        Self {
            conn: RefCell::new(conn),
            state,
            audience,
            owner,
            addons,
            redeemed: None,
            issued: None,
            extract_called: false,
            preauthenticated: None,
            replayed: false,
        }
    }

    fn find_client(&self, id: &str) -> Result<Option<Client>, RegistrarError> {
        let mut conn = self.conn.borrow_mut();
        store::find_client(&mut conn, id).map_err(|_| RegistrarError::PrimitiveError)
    }
}

impl Registrar for Flow<'_> {
    /// Exact string match against the registered redirect URIs (RFC 9700 §4.1.3). Without a
    /// `redirect_uri` the client must have exactly one registered.
    fn bound_redirect<'b>(&self, bound: ClientUrl<'b>) -> Result<BoundClient<'b>, RegistrarError> {
        let client = self
            .find_client(&bound.client_id)?
            .filter(|c| c.enabled() && c.has_grant(GrantType::AuthorizationCode))
            .ok_or(RegistrarError::Unspecified)?;
        let registered = {
            let mut conn = self.conn.borrow_mut();
            store::find_redirect_uris(&mut conn, &client.id)
                .map_err(|_| RegistrarError::PrimitiveError)?
        };
        let chosen = match &bound.redirect_uri {
            Some(given) => registered
                .iter()
                .find(|r| r.as_str() == given.as_str())
                .ok_or(RegistrarError::Unspecified)?,
            None if registered.len() == 1 => &registered[0],
            None => return Err(RegistrarError::Unspecified),
        };
        let exact = ExactUrl::new(chosen.clone()).map_err(|_| RegistrarError::Unspecified)?;
        Ok(BoundClient {
            client_id: bound.client_id,
            redirect_uri: Cow::Owned(RegisteredUrl::Exact(exact)),
        })
    }

    /// Scopes must be allowed to the client and defined on the requested API. No scope asked: the
    /// client's allowed scopes that the API defines.
    fn negotiate(
        &self,
        bound: BoundClient,
        scope: Option<Scope>,
    ) -> Result<PreGrant, RegistrarError> {
        let client = self
            .find_client(&bound.client_id)?
            .ok_or(RegistrarError::Unspecified)?;
        let defined: Vec<String> = {
            let mut conn = self.conn.borrow_mut();
            let api = store::find_api_by_audience(&mut conn, &self.audience)
                .map_err(|_| RegistrarError::PrimitiveError)?
                .ok_or(RegistrarError::Unspecified)?;
            store::find_scopes(&mut conn, &api.id)
                .map_err(|_| RegistrarError::PrimitiveError)?
                .into_iter()
                .map(|s| s.name)
                .collect()
        };
        let allowed: Vec<&str> = client.allowed_scopes().collect();
        let names: Vec<String> = match &scope {
            Some(requested) => {
                let names: Vec<String> = requested.iter().map(str::to_owned).collect();
                if names
                    .iter()
                    .any(|n| !allowed.contains(&n.as_str()) || !defined.contains(n))
                {
                    return Err(RegistrarError::Unspecified);
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
            return Err(RegistrarError::Unspecified);
        }
        let scope: Scope = names
            .join(" ")
            .parse()
            .map_err(|_| RegistrarError::Unspecified)?;
        Ok(PreGrant {
            client_id: bound.client_id.into_owned(),
            redirect_uri: bound.redirect_uri.into_owned(),
            scope,
        })
    }

    /// Client authentication at the token endpoint: the same check as every other endpoint.
    fn check(&self, client_id: &str, passphrase: Option<&[u8]>) -> Result<(), RegistrarError> {
        if passphrase.is_none() && self.preauthenticated.as_deref() == Some(client_id) {
            return Ok(());
        }
        let secret = passphrase
            .map(|p| std::str::from_utf8(p).map_err(|_| RegistrarError::Unspecified))
            .transpose()?;
        let mut conn = self.conn.borrow_mut();
        check_client(&mut conn, &self.state.hasher, client_id, secret)
            .map(|_| ())
            .map_err(|_| RegistrarError::Unspecified)
    }
}

const PKCE: &str = "pkce";

impl Authorizer for Flow<'_> {
    /// Stores a new code: 256 random bits, kept only as its HMAC, bound to client, redirect URI,
    /// user, scope, API and PKCE challenge, valid for `code_ttl`.
    fn authorize(&mut self, grant: Grant) -> Result<String, ()> {
        let challenge = grant
            .extensions
            .private()
            .find(|(id, _)| *id == PKCE)
            .and_then(|(_, v)| v.map(str::to_owned))
            .ok_or(())?;
        let code = crate::crypto::random_token();
        let hash = self.state.hasher.hash(CODE_PURPOSE, code.as_bytes());
        let now = db::now();
        let row = store::NewCode {
            code_hash: &hash,
            client_id: &grant.client_id,
            user_id: &grant.owner_id,
            redirect_uri: grant.redirect_uri.as_str(),
            scope: &scope_string(&grant.scope),
            audience: &self.audience,
            code_challenge: &challenge,
            created_at: now,
            expires_at: now + self.state.settings.code_ttl.as_secs() as i64,
        };
        let mut conn = self.conn.borrow_mut();
        store::insert_code(&mut conn, &row)
            .map_err(|e| tracing::error!(error = %e, "storing a code failed"))?;
        Ok(code)
    }

    /// Consumes a code exactly once. A second presentation finds it consumed: the tokens bought with
    /// it are revoked (RFC 6749 §4.1.2) and the answer is `invalid_grant`.
    fn extract(&mut self, code: &str) -> Result<Option<Grant>, ()> {
        self.extract_called = true;
        let hash = self.state.hasher.hash(CODE_PURPOSE, code.as_bytes());
        let now = db::now();
        let family_id = crate::crypto::random_id("fam", 22);
        let jti = crate::crypto::random_id("at", 22);
        let access_exp = now + self.state.settings.access_token_ttl.as_secs() as i64;
        let refresh_exp = now + self.state.settings.refresh_token_ttl.as_secs() as i64;
        let mut conn = self.conn.borrow_mut();
        // Write first, read after: the transaction takes the write lock at its first statement, so
        // concurrent redemptions queue instead of racing on a stale snapshot (SQLite) and exactly one wins.
        let outcome = conn.transaction(
            |conn| -> diesel::QueryResult<Option<(store::CodeRow, Option<String>, bool)>> {
                let won = store::consume_code(conn, &hash, now, &jti, access_exp)?;
                let Some(row) = store::find_code(conn, &hash)? else {
                    return Ok(None);
                };
                if won {
                    let client = store::find_client(conn, &row.client_id)?;
                    let wants_refresh = client
                        .is_some_and(|c| c.has_grant(GrantType::RefreshToken))
                        && row.scope.split(' ').any(|s| s == "offline_access");
                    let fam = wants_refresh.then(|| family_id.clone());
                    if let Some(fam) = &fam {
                        let family = store::NewFamily {
                            id: fam,
                            client_id: &row.client_id,
                            user_id: Some(&row.user_id),
                            scope: &row.scope,
                            audience: &row.audience,
                        };
                        store::insert_family(conn, &family, now, refresh_exp)?;
                        store::set_code_family(conn, &hash, fam)?;
                    }
                    return Ok(Some((row, fam, true)));
                }
                // Consumed already (or expired). A consumed code presented again is a replay.
                if row.consumed_at.is_some() {
                    if let Some(jti) = &row.access_token_jti {
                        let exp = row.access_token_exp.unwrap_or(now);
                        store::insert_revoked_jti(
                            conn,
                            jti,
                            row.refresh_family_id.as_deref(),
                            now,
                            exp,
                        )?;
                    }
                    if let Some(fam) = &row.refresh_family_id {
                        store::revoke_family(conn, fam, now, "authorization code replayed")?;
                    }
                    // The code's tokens are revoked: drop the client's cached ones on this node.
                    self.state
                        .token_cache
                        .forget_where(|c| c.client_id == row.client_id);
                    return Ok(Some((row, None, false)));
                }
                Ok(None)
            },
        );
        drop(conn);
        let outcome =
            outcome.map_err(|e| tracing::error!(error = %e, "redeeming a code failed"))?;
        let Some((row, family_id, won)) = outcome else {
            return Ok(None);
        };
        if !won {
            tracing::warn!(client_id = %row.client_id, "authorization code replayed: its tokens are revoked");
            return Ok(None);
        }
        let mut extensions = Extensions::new();
        extensions.set_raw(
            PKCE.to_owned(),
            Value::private(Some(row.code_challenge.clone())),
        );
        let redirect_uri = Url::parse(&row.redirect_uri).map_err(|_| ())?;
        let scope: Scope = row.scope.parse().map_err(|_| ())?;
        let until = Utc.timestamp_opt(row.expires_at, 0).single().ok_or(())?;
        self.redeemed = Some(Redeemed {
            user_id: row.user_id.clone(),
            audience: row.audience.clone(),
            scope: row.scope.clone(),
            family_id,
            jti,
        });
        Ok(Some(Grant {
            owner_id: row.user_id,
            client_id: row.client_id,
            scope,
            redirect_uri,
            until,
            extensions,
        }))
    }
}

/// A scope as stored and shown: its tokens sorted and space-separated (oxide-auth's order is unspecified).
fn scope_string(scope: &Scope) -> String {
    let mut names: Vec<&str> = scope.iter().collect();
    names.sort_unstable();
    names.join(" ")
}

pub const CODE_PURPOSE: &str = "authorization_code";
pub const REFRESH_PURPOSE: &str = "refresh_token";

impl Issuer for Flow<'_> {
    /// Signs the access token (nothing written for it) and, when the grant has a refresh family,
    /// stores the first refresh token of that family.
    fn issue(&mut self, grant: Grant) -> Result<IssuedToken, ()> {
        let redeemed = self.redeemed.clone().ok_or(())?;
        let now = db::now();
        let ttl = self.state.settings.access_token_ttl.as_secs() as i64;
        let claims = AccessClaims {
            iss: self.state.settings.issuer_str().to_owned(),
            sub: redeemed.user_id.clone(),
            aud: redeemed.audience.clone(),
            client_id: grant.client_id.clone(),
            scope: redeemed.scope.clone(),
            jti: redeemed.jti.clone(),
            iat: now,
            exp: now + ttl,
        };
        let access_token = self
            .state
            .keyring
            .sign(&claims)
            .map_err(|e| tracing::error!(error = %e, "signing failed"))?;
        let refresh_token = match &redeemed.family_id {
            Some(family) => {
                let token = crate::crypto::random_token();
                let hash = self.state.hasher.hash(REFRESH_PURPOSE, token.as_bytes());
                let exp = now + self.state.settings.refresh_token_ttl.as_secs() as i64;
                let mut conn = self.conn.borrow_mut();
                let new = store::NewRefresh {
                    token_hash: &hash,
                    family_id: family,
                    now,
                    expires_at: exp,
                    jti: &claims.jti,
                    jti_exp: claims.exp,
                };
                let stored = store::insert_refresh_token(&mut conn, &new)
                    .map_err(|e| tracing::error!(error = %e, "storing a refresh token failed"))?;
                if !stored {
                    self.replayed = true; // the family was revoked meanwhile (a replay raced us)
                    return Err(());
                }
                Some(token)
            }
            None => None,
        };
        self.issued = Some(Issued {
            client_id: claims.client_id.clone(),
            access_token: access_token.clone(),
            refresh_token: refresh_token.clone(),
            expires_in: ttl,
            scope: redeemed.scope,
        });
        Ok(IssuedToken {
            token: access_token,
            refresh: refresh_token,
            until: Utc.timestamp_opt(claims.exp, 0).single().ok_or(())?,
            token_type: TokenType::Bearer,
        })
    }

    fn refresh(&mut self, _refresh: &str, _grant: Grant) -> Result<RefreshedToken, ()> {
        Err(()) // refresh_token is our own grant (rotation and reuse detection); see handlers.
    }

    fn recover_token(&self, _: &str) -> Result<Option<Grant>, ()> {
        Ok(None)
    }

    fn recover_refresh(&self, _: &str) -> Result<Option<Grant>, ()> {
        Ok(None)
    }
}

impl OwnerSolicitor<OAuthRequest> for Flow<'_> {
    fn check_consent(
        &mut self,
        _: &mut OAuthRequest,
        solicitation: Solicitation,
    ) -> OwnerConsent<OAuthResponse> {
        match self.owner.clone() {
            None => OwnerConsent::Denied,
            Some(Owner::SignedOut { return_to }) => {
                let mut login =
                    match Url::parse(&format!("{}/login", self.state.settings.issuer_str())) {
                        Ok(u) => u,
                        Err(_) => return OwnerConsent::Error(AppError::internal("bad issuer URL")),
                    };
                login.query_pairs_mut().append_pair("return_to", &return_to);
                OwnerConsent::InProgress(OAuthResponse {
                    status: 303,
                    location: Some(login),
                    ..OAuthResponse::default()
                })
            }
            Some(Owner::SignedIn {
                user_id,
                decision,
                force_consent,
                consent_page,
            }) => {
                let grant = solicitation.pre_grant();
                match decision {
                    Some(true) => {
                        let mut conn = self.conn.borrow_mut();
                        let saved = store::upsert_consent(
                            &mut conn,
                            &user_id,
                            &grant.client_id,
                            &self.audience,
                            &scope_string(&grant.scope),
                            db::now(),
                        );
                        match saved {
                            Ok(()) => OwnerConsent::Authorized(user_id),
                            Err(e) => OwnerConsent::Error(AppError::from(e)),
                        }
                    }
                    Some(false) => OwnerConsent::Denied,
                    None => {
                        if !force_consent {
                            let mut conn = self.conn.borrow_mut();
                            let remembered = store::find_consent(
                                &mut conn,
                                &user_id,
                                &grant.client_id,
                                &self.audience,
                            );
                            match remembered {
                                Ok(Some(scope)) => {
                                    let given: Vec<&str> = scope.split(' ').collect();
                                    if grant.scope.iter().all(|s| given.contains(&s)) {
                                        return OwnerConsent::Authorized(user_id);
                                    }
                                }
                                Ok(None) => {}
                                Err(e) => return OwnerConsent::Error(AppError::from(e)),
                            }
                        }
                        match super::pages::consent_page(
                            &mut self.conn.borrow_mut(),
                            grant,
                            &self.audience,
                            &consent_page,
                        ) {
                            Ok(html) => OwnerConsent::InProgress(OAuthResponse {
                                status: 200,
                                html: Some(html),
                                ..OAuthResponse::default()
                            }),
                            Err(e) => OwnerConsent::Error(e),
                        }
                    }
                }
            }
        }
    }
}

impl Endpoint<OAuthRequest> for Flow<'_> {
    type Error = AppError;

    fn registrar(&self) -> Option<&dyn Registrar> {
        Some(self)
    }

    fn authorizer_mut(&mut self) -> Option<&mut dyn Authorizer> {
        Some(self)
    }

    fn issuer_mut(&mut self) -> Option<&mut dyn Issuer> {
        Some(self)
    }

    fn owner_solicitor(&mut self) -> Option<&mut dyn OwnerSolicitor<OAuthRequest>> {
        Some(self)
    }

    fn scopes(&mut self) -> Option<&mut dyn Scopes<OAuthRequest>> {
        None
    }

    fn response(
        &mut self,
        _: &mut OAuthRequest,
        mut kind: Template,
    ) -> Result<OAuthResponse, AppError> {
        // oxide-auth reports a failed PKCE check or a replayed code as invalid_request; RFC 6749 §5.2
        // and RFC 7636 §4.6 want invalid_grant.
        use oxide_auth::code_grant::error::AccessTokenErrorType;
        if self.extract_called
            && let Some(err) = kind.access_token_error()
            && matches!(err.kind(), AccessTokenErrorType::InvalidRequest)
        {
            err.set_type(AccessTokenErrorType::InvalidGrant);
        }
        Ok(OAuthResponse {
            status: 200,
            ..OAuthResponse::default()
        })
    }

    fn error(&mut self, err: OAuthError) -> AppError {
        match err {
            OAuthError::DenySilently => AppError::BadRequest {
                code: "invalid_authorization_request",
                detail: None,
            },
            OAuthError::BadRequest => AppError::oauth_bare("invalid_request"),
            OAuthError::PrimitiveError if self.replayed => {
                AppError::oauth("invalid_grant", Detail::CodeRedeemedTwice)
            }
            OAuthError::PrimitiveError => AppError::internal("OAuth storage failed"),
            #[expect(unreachable_patterns, reason = "OAuthError may grow variants")]
            _ => AppError::oauth_bare("invalid_request"),
        }
    }

    fn web_error(&mut self, err: AppError) -> AppError {
        err
    }

    fn extension(&mut self) -> Option<&mut dyn oxide_auth::endpoint::Extension> {
        Some(&mut self.addons)
    }
}
