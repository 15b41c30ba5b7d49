//! `authorization_code` (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.6): oxide-auth's code-grant request
//! checks (its `AccessToken` state machine: the request's shape, the code bound to this client and
//! redirect URI and not expired) and its PKCE verification, driven step by step from here with our
//! own data: the client authenticated before, the code redeemed exactly once in our store, the
//! tokens made by the [`Issuer`].

use std::borrow::Cow;

use chrono::{TimeZone as _, Utc};
use diesel::Connection as _;
use oxide_auth::code_grant::accesstoken::{self, AccessToken, Authorization, Input, Output};
use oxide_auth::code_grant::error::AccessTokenErrorType;
use oxide_auth::frontends::simple::extensions::Pkce;
use oxide_auth::primitives::grant::{Extensions, Grant, Value};
use oxide_auth::primitives::issuer::{IssuedToken, TokenType};
use oxide_auth::primitives::prelude::Scope;

use super::super::authorize::{CODE_PURPOSE, PKCE_EXTENSION};
use super::super::credentials::AuthenticatedClient;
use super::super::model::GrantType;
use super::super::store;
use super::issuer::{AccessGrant, AccessId, Issued, Issuer};
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::i18n::Detail;
use crate::state::AppState;

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// What the exchange is asked: the code, the redirect URI of the authorization request, the PKCE
/// verifier. `Debug` shows none of them.
pub struct CodeExchange {
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
}

impl std::fmt::Debug for CodeExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeExchange([redacted])")
    }
}

pub async fn exchange(
    state: &actix_web::web::Data<AppState>,
    client: &AuthenticatedClient,
    request: CodeExchange,
) -> Result<Issued, AppError> {
    if request
        .code_verifier
        .as_deref()
        .is_some_and(|v| !valid_verifier(v))
    {
        return Err(AppError::oauth("invalid_grant", Detail::CodeVerifierFormat));
    }
    let st = state.clone();
    let client_id = client.id().to_owned();
    db::run(&state.pool, move |conn| {
        run(conn, &st, &client_id, &request)
    })
    .await
}

/// The request as oxide-auth's code-grant checks read it. The client is already authenticated by
/// our pipeline, so it is presented by id alone.
struct CheckedRequest<'a> {
    client_id: &'a str,
    exchange: &'a CodeExchange,
}

impl accesstoken::Request for CheckedRequest<'_> {
    fn valid(&self) -> bool {
        true // parsed by `TokenRequest`: a form without repeated parameters
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        self.exchange.code.as_deref().map(Cow::Borrowed)
    }

    fn authorization(&self) -> Authorization<'_> {
        Authorization::Username(Cow::Borrowed(self.client_id))
    }

    fn client_id(&self) -> Option<Cow<'_, str>> {
        None
    }

    fn redirect_uri(&self) -> Option<Cow<'_, str>> {
        self.exchange.redirect_uri.as_deref().map(Cow::Borrowed)
    }

    fn grant_type(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(GrantType::AuthorizationCode.as_str()))
    }

    fn extension(&self, _: &str) -> Option<Cow<'_, str>> {
        None
    }
}

/// A code redeemed by this request: what its tokens will say.
struct Redeemed {
    row: store::CodeRow,
    family: Option<String>,
    access: AccessId,
}

impl Redeemed {
    /// The code as an oxide-auth grant, for its checks (client, redirect URI, expiry) and PKCE.
    fn grant(&self) -> Result<Grant, AppError> {
        let bad = |what: &str| AppError::internal(format!("a stored code has a bad {what}"));
        let mut extensions = Extensions::new();
        extensions.set_raw(
            PKCE_EXTENSION.to_owned(),
            Value::private(Some(self.row.code_challenge.clone())),
        );
        Ok(Grant {
            owner_id: self.row.user_id.clone(),
            client_id: self.row.client_id.clone(),
            scope: self.row.scope.parse::<Scope>().map_err(|_| bad("scope"))?,
            redirect_uri: url::Url::parse(&self.row.redirect_uri)
                .map_err(|_| bad("redirect URI"))?,
            until: Utc
                .timestamp_opt(self.row.expires_at, 0)
                .single()
                .ok_or_else(|| bad("expiry"))?,
            extensions,
        })
    }
}

fn code_invalid() -> AppError {
    AppError::oauth("invalid_grant", Detail::CodeInvalid)
}

/// The exchange, step by step through oxide-auth's state machine.
fn run(
    conn: &mut DbConn,
    state: &AppState,
    client_id: &str,
    exchange: &CodeExchange,
) -> Result<Issued, AppError> {
    let issuer = Issuer::new(state);
    let request = CheckedRequest {
        client_id,
        exchange,
    };
    let mut machine = AccessToken::new(&request);
    let mut input = Input::None;
    let mut redeemed: Option<Redeemed> = None;
    // Set once the code was looked up: any later refusal is about the grant (RFC 6749 §5.2).
    let mut looked_up = false;
    let mut issued: Option<Issued> = None;
    loop {
        input = match machine.advance(input) {
            Output::Authenticate { .. } => Input::Authenticated,
            Output::Recover { code } => {
                let code = code.to_owned();
                looked_up = true;
                redeemed = redeem(conn, state, &issuer, &code)?;
                let grant = redeemed.as_ref().map(Redeemed::grant).transpose()?;
                Input::Recovered(grant.map(Box::new))
            }
            Output::Extend { extensions } => {
                // S256 only: the challenge was accepted by `Pkce::required()` without `allow_plain()`.
                let challenge = extensions
                    .private()
                    .find(|(id, _)| *id == PKCE_EXTENSION)
                    .and_then(|(_, v)| v.map(str::to_owned));
                Pkce::required()
                    .verify(
                        challenge.map(|c| Value::private(Some(c))),
                        exchange.code_verifier.as_deref().map(Cow::Borrowed),
                    )
                    .map_err(|()| code_invalid())?;
                Input::Extended {
                    access_extensions: Extensions::new(),
                }
            }
            Output::Issue { .. } => {
                let redeemed = redeemed.take().ok_or_else(|| {
                    AppError::internal("the code exchange issued without a redeemed code")
                })?;
                let tokens = issue(conn, &issuer, redeemed)?;
                let until = Utc
                    .timestamp_opt(crate::db::now() + tokens.expires_in, 0)
                    .single()
                    .ok_or_else(|| AppError::internal("an access token expiry out of range"))?;
                let token = IssuedToken {
                    token: tokens.access_token.clone(),
                    refresh: tokens.refresh_token.clone(),
                    until,
                    token_type: TokenType::Bearer,
                };
                issued = Some(tokens);
                Input::Issued(token)
            }
            Output::Ok(_) => {
                return issued
                    .ok_or_else(|| AppError::internal("the code exchange ended without tokens"));
            }
            Output::Err(error) => return Err(refusal(*error, looked_up)),
        };
    }
}

/// oxide-auth's refusal as our RFC 6749 §5.2 error. Once the code was looked up, an invalid request
/// is about the grant: `invalid_grant` (RFC 6749 §5.2, RFC 7636 §4.6).
fn refusal(error: accesstoken::Error, looked_up: bool) -> AppError {
    match error {
        accesstoken::Error::Invalid(mut description) => {
            match (description.description().kind(), looked_up) {
                (AccessTokenErrorType::InvalidGrant, _) | (_, true) => code_invalid(),
                (AccessTokenErrorType::InvalidClient, _) => {
                    AppError::oauth("invalid_client", Detail::ClientUnknown)
                }
                (AccessTokenErrorType::UnauthorizedClient, _) => {
                    AppError::oauth("unauthorized_client", Detail::TokenRequestMalformed)
                }
                (AccessTokenErrorType::UnsupportedGrantType, _) => {
                    AppError::oauth("unsupported_grant_type", Detail::TokenRequestMalformed)
                }
                (AccessTokenErrorType::InvalidScope, _) => {
                    AppError::oauth("invalid_scope", Detail::TokenRequestMalformed)
                }
                (AccessTokenErrorType::InvalidRequest, false) => {
                    AppError::oauth("invalid_request", Detail::TokenRequestMalformed)
                }
            }
        }
        accesstoken::Error::Unauthorized(..) => {
            AppError::oauth("invalid_client", Detail::ClientUnknown)
        }
        accesstoken::Error::Primitive(_) => AppError::internal("the code exchange failed"),
    }
}

/// Redeems a code exactly once. The winner gets the code's row, a refresh family when the client
/// may refresh and `offline_access` was granted, and the identity of its access token (recorded on
/// the code, so that a replay can revoke it). A second presentation finds it consumed: the tokens it
/// bought are revoked (RFC 6749 §4.1.2) and the answer is `None`, as for an unknown or expired code.
fn redeem(
    conn: &mut DbConn,
    state: &AppState,
    issuer: &Issuer<'_>,
    code: &str,
) -> Result<Option<Redeemed>, AppError> {
    let hash = state.hasher.hash(CODE_PURPOSE, code.as_bytes());
    let access = issuer.next_access();
    let now = access.iat;
    let family_id = crate::crypto::random_id("fam", 22);
    let family_expires = issuer.refresh_expiry(now, None);
    // Write first, read after: the transaction takes the write lock at its first statement, so
    // concurrent redemptions queue instead of racing on a stale snapshot (SQLite) and exactly one wins.
    let outcome = conn.transaction(
        |conn| -> diesel::QueryResult<Option<(store::CodeRow, Option<String>, bool)>> {
            let won = store::consume_code(conn, &hash, now, &access.jti, access.exp)?;
            let Some(row) = store::find_code(conn, &hash)? else {
                return Ok(None);
            };
            if won {
                let client = store::find_client(conn, &row.client_id)?;
                let wants_refresh = client.is_some_and(|c| c.has_grant(GrantType::RefreshToken))
                    && row.scope.split(' ').any(|s| s == "offline_access");
                let family = wants_refresh.then(|| family_id.clone());
                if let Some(family) = &family {
                    let new = store::NewFamily {
                        id: family,
                        client_id: &row.client_id,
                        user_id: Some(&row.user_id),
                        scope: &row.scope,
                        audience: &row.audience,
                    };
                    store::insert_family(conn, &new, now, family_expires)?;
                    store::set_code_family(conn, &hash, family)?;
                }
                return Ok(Some((row, family, true)));
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
                if let Some(family) = &row.refresh_family_id {
                    store::revoke_family(conn, family, now, "authorization code replayed")?;
                }
                // The code's tokens are revoked: drop the client's cached ones on this node.
                state
                    .token_cache
                    .forget_where(|c| c.client_id == row.client_id);
                return Ok(Some((row, None, false)));
            }
            Ok(None)
        },
    )?;
    match outcome {
        Some((row, family, true)) => Ok(Some(Redeemed {
            row,
            family,
            access,
        })),
        Some((row, _, false)) => {
            tracing::warn!(client_id = %row.client_id, "authorization code replayed: its tokens are revoked");
            Ok(None)
        }
        None => Ok(None),
    }
}

/// The tokens a redeemed code buys: the access token whose `jti` the code recorded and, with a
/// family, the family's first refresh token. A family revoked meanwhile (a concurrent replay of the
/// code) makes it `invalid_grant`.
fn issue(conn: &mut DbConn, issuer: &Issuer<'_>, redeemed: Redeemed) -> Result<Issued, AppError> {
    let row = &redeemed.row;
    let access = issuer.sign(
        redeemed.access,
        AccessGrant {
            client_id: &row.client_id,
            subject: &row.user_id,
            audience: &row.audience,
            scope: &row.scope,
        },
    )?;
    let refresh = match &redeemed.family {
        Some(family) => {
            let expires = issuer.refresh_expiry(access.claims.iat, None);
            let stored = issuer.store_refresh(conn, family, expires, &access, false)?;
            Some(
                stored
                    .ok_or_else(|| AppError::oauth("invalid_grant", Detail::CodeRedeemedTwice))?,
            )
        }
        None => None,
    };
    Ok(issuer.issued(access, refresh))
}
