//! `authorization_code` (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.6): oxide-auth's code-grant request
//! checks (its `AccessToken` state machine: the request's shape, the code bound to this client and
//! redirect URI and not expired) and its PKCE verification, driven step by step from here with our
//! own data: the client authenticated before, the code looked up in our store, the tokens made by
//! the [`Issuer`]. Nothing is written until every check has passed; then one write consumes the code
//! and stores the tokens it buys (`store::redeem_code`), so of concurrent redemptions exactly one
//! wins and a replay revokes everything the winner got (RFC 6749 §4.1.2).

use std::borrow::Cow;

use chrono::{TimeZone as _, Utc};
use oxide_auth::code_grant::accesstoken::{self, AccessToken, Authorization, Input, Output};
use oxide_auth::code_grant::error::AccessTokenErrorType;
use oxide_auth::frontends::simple::extensions::Pkce;
use oxide_auth::primitives::grant::{Extensions, Grant, Value};
use oxide_auth::primitives::issuer::{IssuedToken, TokenType};
use oxide_auth::primitives::prelude::Scope;

use super::super::authorize::{CODE_PURPOSE, PKCE_EXTENSION};
use super::super::credentials::AuthenticatedClient;
use super::super::model::{Client, GrantType};
use super::super::store;
use super::issuer::{Issued, Issuer, PendingRefresh, SignIn, UnsignedAccess};
use crate::db::{self, Conn, DbConn};
use crate::error::AppError;
use crate::i18n::Detail;
use crate::oauth::OAuth;

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
    state: &actix_web::web::Data<OAuth>,
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
    let client = client.client.clone();
    let of = client.clone();
    let (access, refresh_token, sign_in) =
        db::run_on_writer(&state.pool, move |conn| run(conn, &st, &of, &request)).await?;
    Issuer::new(state)
        .finish(&client, access, refresh_token, sign_in)
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

/// A code found unused and unexpired: what its tokens will say.
struct Found {
    hash: String,
    row: store::CodeRow,
}

impl Found {
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
    conn: &mut Conn,
    state: &OAuth,
    client: &Client,
    exchange: &CodeExchange,
) -> Result<Redeemed, AppError> {
    let issuer = Issuer::new(state);
    let request = CheckedRequest {
        client_id: &client.id,
        exchange,
    };
    let mut machine = AccessToken::new(&request);
    let mut input = Input::None;
    let mut found: Option<Found> = None;
    // Set once the code was looked up: any later refusal is about the grant (RFC 6749 §5.2).
    let mut looked_up = false;
    let mut issued: Option<Redeemed> = None;
    loop {
        input = match machine.advance(input) {
            Output::Authenticate { .. } => Input::Authenticated,
            Output::Recover { code } => {
                let code = code.to_owned();
                looked_up = true;
                found = look_up(conn, state, &code)?;
                let grant = found.as_ref().map(Found::grant).transpose()?;
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
                let found = found
                    .take()
                    .ok_or_else(|| AppError::internal("the code exchange issued without a code"))?;
                let redeemed = redeem(conn, state, &issuer, client, found)?;
                let access = &redeemed.0;
                let until = Utc
                    .timestamp_opt(access.id.exp, 0)
                    .single()
                    .ok_or_else(|| AppError::internal("an access token expiry out of range"))?;
                // The access token is signed once this write has committed (`exchange`); the
                // machine's own answer, which would carry it, is not used.
                let token = IssuedToken {
                    token: String::new(),
                    refresh: None,
                    until,
                    token_type: TokenType::Bearer,
                };
                issued = Some(redeemed);
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

/// The code, when it is unused and unexpired. A consumed code presented again is a replay: the
/// tokens it bought are revoked (RFC 6749 §4.1.2) and the answer is `None`, as for an unknown or
/// expired code (`invalid_grant`). Nothing else is written.
fn look_up(conn: &mut Conn, state: &OAuth, code: &str) -> Result<Option<Found>, AppError> {
    let hash = state.hasher.hash(CODE_PURPOSE, code.as_bytes());
    let now = db::now();
    let Some(row) = store::find_code(conn, &hash)? else {
        return Ok(None);
    };
    if row.consumed_at.is_some() {
        let replayed = row.clone();
        conn.write(move |conn| revoke_replayed(conn, &replayed, now))?;
        replayed_revoked(state, &row);
        return Ok(None);
    }
    if row.expires_at <= now {
        return Ok(None);
    }
    Ok(Some(Found { hash, row }))
}

/// A consumed code was presented again: the access token and the refresh family it bought are
/// revoked.
fn revoke_replayed(conn: &mut DbConn, row: &store::CodeRow, now: i64) -> diesel::QueryResult<()> {
    if let Some(jti) = &row.access_token_jti {
        let exp = row.access_token_exp.unwrap_or(now);
        store::insert_revoked_jti(conn, jti, row.refresh_family_id.as_deref(), now, exp)?;
    }
    if let Some(family) = &row.refresh_family_id {
        store::revoke_family(conn, family, now, "authorization code replayed")?;
    }
    Ok(())
}

/// After [`revoke_replayed`] committed: the client's cached tokens are dropped on this node.
fn replayed_revoked(state: &OAuth, row: &store::CodeRow) {
    state
        .token_cache
        .forget_where(|c| c.client_id == row.client_id);
    tracing::warn!(client_id = %row.client_id, "authorization code replayed: its tokens are revoked");
}

/// A redeemed code: the access token to sign once the redemption has committed, the first
/// refresh token of its family when one was started, and the sign-in its ID token describes.
type Redeemed = (UnsignedAccess, Option<String>, Option<SignIn>);

/// How a redemption ended: it consumed the code (and stored its tokens), or another redemption had
/// consumed it first (this one revoked what that one got), or it expired meanwhile.
enum Redemption {
    Won(Option<PendingRefresh>),
    Replayed(Box<store::CodeRow>),
    Expired,
}

/// Chooses the access token's `jti` (on SQLite this and the look-up run on the one writer,
/// [`db::run_on_writer`]; the token is signed after the commit), then in one write
/// ([`store::redeem_code`]) consumes the code (exactly
/// one concurrent redemption wins), records the token's `jti` (and the refresh family) on it, and,
/// when the client may refresh and `offline_access` was granted, starts a refresh family with its
/// first token. A redemption that loses the race is a replay: it revokes what the winner got, and
/// is refused.
fn redeem(
    conn: &mut Conn,
    state: &OAuth,
    issuer: &Issuer<'_>,
    client: &Client,
    found: Found,
) -> Result<Redeemed, AppError> {
    let Found { hash, row } = found;
    let access = issuer.next_access();
    let now = access.iat;
    let family_expires = issuer.refresh_expiry(now, None);
    let family = (client.has_grant(GrantType::RefreshToken)
        && row.scope.split(' ').any(|s| s == "offline_access"))
    .then(|| {
        let family = store::NewFamily {
            id: crate::crypto::ordered_id("fam", 22),
            client_id: row.client_id.clone(),
            user_id: Some(row.user_id.clone()),
            scope: row.scope.clone(),
            audience: row.audience.clone(),
            auth_time: row.auth_time,
            sid: row.sid.clone(),
            claims: row.claims.clone(),
        };
        let first = issuer.new_refresh(&family.id, family_expires, &access);
        (family, first)
    });
    let (jti, jti_exp) = (access.jti.clone(), access.exp);
    // The write decides: the code's row lock (PostgreSQL) or SQLite's one writer orders concurrent
    // redemptions, and exactly one consumes the code.
    let code = hash.clone();
    let (won, family) = conn.atomic(move |conn| -> Result<_, AppError> {
        let written = family
            .as_ref()
            .map(|(f, first)| (f, family_expires, first.row()));
        let won = store::redeem_code(conn, &code, &jti, jti_exp, written, now)?;
        Ok((won, family))
    })?;
    let outcome = if won {
        Redemption::Won(family.map(|(_, first)| first))
    } else {
        // Another redemption consumed it first (a replay: what it got is revoked), or it expired.
        conn.write(move |conn| -> Result<_, AppError> {
            match store::find_code(conn, &hash)? {
                Some(row) if row.consumed_at.is_some() => {
                    revoke_replayed(conn, &row, now)?;
                    Ok(Redemption::Replayed(Box::new(row)))
                }
                _ => Ok(Redemption::Expired),
            }
        })?
    };
    match outcome {
        Redemption::Won(first) => Ok((
            UnsignedAccess {
                id: access,
                client_id: row.client_id,
                subject: row.user_id.clone(),
                audience: row.audience,
                scope: row.scope,
            },
            first.map(PendingRefresh::into_token),
            row.auth_time.map(|auth_time| SignIn {
                user_id: row.user_id,
                nonce: row.nonce,
                auth_time: Some(auth_time),
                sid: row.sid,
                claims: row.claims,
            }),
        )),
        Redemption::Replayed(row) => {
            replayed_revoked(state, &row);
            Err(AppError::oauth("invalid_grant", Detail::CodeRedeemedTwice))
        }
        Redemption::Expired => Err(code_invalid()),
    }
}
