//! `refresh_token` (RFC 6749 §6, ours: oxide-auth's refresh has no rotation): every use rotates; a
//! used token presented again by its client revokes the whole family (RFC 9700 §4.14.2); scope may
//! narrow, never widen; of two concurrent uses exactly one wins. A refused request (unknown, expired
//! or revoked token, wrong client, wider scope, disabled user) changes nothing: the token stays
//! usable by its client. Another client presenting it is audited (`refresh_token.wrong_client`).

use serde_json::json;

use super::super::credentials::AuthenticatedClient;
use super::super::model::GrantType;
use super::super::store::{self, RotationWrite};
use super::issuer::{Issued, Issuer, SignIn, UnsignedAccess};
use crate::audit::{self, Actor};
use crate::db::{self, Conn, DbConn};
use crate::error::AppError;
use crate::i18n::Detail;
use crate::oauth::OAuth;

/// A rotation that commits: the new tokens (the access token signed once the rotation has
/// committed), or a reuse (the family stays revoked).
#[expect(
    clippy::large_enum_variant,
    reason = "made once per refresh and moved out at once; a box would be one more allocation"
)]
enum Rotation {
    Rotated {
        access: UnsignedAccess,
        refresh_token: String,
        sign_in: Option<SignIn>,
    },
    Reused,
}

/// A refusal that rolls the rotation back: the presented token stays as it was.
#[derive(Debug)]
enum Refused {
    Unknown,
    /// Another client's token: audited after the rollback.
    OtherClient {
        family: String,
        owner: String,
    },
    Expired,
    UserDisabled,
    ScopeNotGranted(String),
    Failed(AppError),
}

impl From<diesel::result::Error> for Refused {
    fn from(e: diesel::result::Error) -> Self {
        Self::Failed(e.into())
    }
}

impl From<AppError> for Refused {
    fn from(e: AppError) -> Self {
        Self::Failed(e)
    }
}

fn invalid(why: Detail) -> AppError {
    AppError::oauth("invalid_grant", why)
}

pub async fn exchange(
    state: &actix_web::web::Data<OAuth>,
    client: &AuthenticatedClient,
    refresh_token: String,
    scope: Option<String>,
) -> Result<Issued, AppError> {
    if !client.client.has_grant(GrantType::RefreshToken) {
        return Err(AppError::oauth(
            "unauthorized_client",
            Detail::GrantNotRegistered {
                grant_type: "refresh_token",
            },
        ));
    }
    let st = state.clone();
    let client_id = client.id().to_owned();
    let (access, refresh_token, sign_in) = db::run_on_writer(&state.pool, move |conn| {
        match rotate(conn, &st, &client_id, &refresh_token, scope.as_deref()) {
            Ok(Rotation::Rotated {
                access,
                refresh_token,
                sign_in,
            }) => Ok((access, refresh_token, sign_in)),
            Ok(Rotation::Reused) => {
                tracing::warn!(client_id = %client_id, "refresh token reuse: family revoked");
                Err(invalid(Detail::RefreshTokenReused))
            }
            Err(Refused::OtherClient { family, owner }) => {
                // Refused, nothing changed; the attempt itself is kept (never the token).
                audit::record(
                    conn,
                    audit::Event::new(
                        Actor::Client(client_id.clone()),
                        "refresh_token.wrong_client",
                    )
                    .target("refresh_token_family", &family)
                    .details(json!({ "client_id": client_id, "owner_client_id": owner })),
                )?;
                tracing::warn!(client_id = %client_id, owner_client_id = %owner,
                    "a refresh token was presented by another client");
                Err(invalid(Detail::RefreshTokenOfOtherClient))
            }
            Err(Refused::Unknown) => Err(invalid(Detail::RefreshTokenUnknown)),
            Err(Refused::Expired) => Err(invalid(Detail::RefreshTokenExpired)),
            Err(Refused::UserDisabled) => Err(invalid(Detail::RefreshTokenUserDisabled)),
            Err(Refused::ScopeNotGranted(scope)) => Err(AppError::oauth(
                "invalid_scope",
                Detail::ScopeNotGranted { scope },
            )),
            Err(Refused::Failed(e)) => Err(e),
        }
    })
    .await?;
    Issuer::new(state)
        .finish(&client.client, access, Some(refresh_token), sign_in)
        .await
}

/// One rotation. The token is read and checked (on PostgreSQL with no transaction open; on SQLite
/// all of it runs on the one writer, [`db::run_on_writer`]); then one short write decides ([`store::rotate_refresh`]): it marks the presented token used only if it
/// still is unused (so of concurrent uses exactly one wins), and stores the next token only if the
/// family is still live. A refusal writes nothing; a reuse revokes the family. The new access
/// token's `jti` is recorded with the next refresh token; it is signed after the commit.
fn rotate(
    conn: &mut Conn,
    state: &OAuth,
    client_id: &str,
    presented: &str,
    requested: Option<&str>,
) -> Result<Rotation, Refused> {
    let issuer = Issuer::new(state);
    let hash = issuer.refresh_hash(presented);
    let row = store::find_refresh(conn, &hash)?.ok_or(Refused::Unknown)?;
    if row.client_id != client_id {
        return Err(Refused::OtherClient {
            family: row.family_id,
            owner: row.client_id,
        });
    }
    if row.token_used {
        let family = row.family_id.clone();
        conn.write(move |conn| revoke_reused(conn, &family))?;
        return Ok(reused(state, &row));
    }
    let access = issuer.next_access();
    let now = access.iat;
    if row.family_revoked || row.family_expires_at <= now || row.token_expires_at <= now {
        return Err(Refused::Expired);
    }
    if row.user_disabled {
        return Err(Refused::UserDisabled);
    }
    let scope = narrowed(&row.scope, requested)?;
    let expires = issuer.refresh_expiry(now, Some(row.family_expires_at));
    let next = issuer.new_refresh(&row.family_id, expires, &access);
    let (written, next) = conn.atomic(move |conn| -> Result<_, Refused> {
        Ok((store::rotate_refresh(conn, &hash, next.row())?, next))
    })?;
    match written {
        RotationWrite::Rotated => Ok(Rotation::Rotated {
            // A refreshed ID token describes the same sign-in, without the nonce (Core §12.2).
            sign_in: row.user_id.clone().map(|user_id| SignIn {
                user_id,
                nonce: None,
                auth_time: row.auth_time,
                sid: row.sid.clone(),
                claims: row.claims.clone(),
            }),
            access: UnsignedAccess {
                id: access,
                client_id: client_id.to_owned(),
                subject: row.user_id.unwrap_or_else(|| client_id.to_owned()),
                audience: row.audience,
                scope,
            },
            refresh_token: next.into_token(),
        }),
        // Used since the read: a concurrent use of the same token won.
        RotationWrite::Lost => {
            let family = row.family_id.clone();
            conn.write(move |conn| revoke_reused(conn, &family))?;
            Ok(reused(state, &row))
        }
        RotationWrite::FamilyRevoked => Err(Refused::Expired),
    }
}

/// Reuse of a used token: someone holds a copy. The whole family ends.
fn revoke_reused(conn: &mut DbConn, family: &str) -> Result<(), Refused> {
    Ok(store::revoke_family(
        conn,
        family,
        db::now(),
        "refresh token reused",
    )?)
}

/// After [`revoke_reused`] committed: the client's cached tokens are dropped on this node.
fn reused(state: &OAuth, row: &store::RefreshRow) -> Rotation {
    state
        .token_cache
        .forget_where(|c| c.client_id == row.client_id);
    Rotation::Reused
}

/// The scope of the new tokens: the family's, or the requested part of it (never more).
fn narrowed(granted: &str, requested: Option<&str>) -> Result<String, Refused> {
    let Some(requested) = requested else {
        return Ok(granted.to_owned());
    };
    let granted: Vec<&str> = granted.split(' ').filter(|s| !s.is_empty()).collect();
    let mut asked: Vec<&str> = requested.split(' ').filter(|s| !s.is_empty()).collect();
    if let Some(extra) = asked.iter().find(|s| !granted.contains(s)) {
        return Err(Refused::ScopeNotGranted(extra.chars().take(64).collect()));
    }
    asked.sort_unstable();
    asked.dedup();
    Ok(asked.join(" "))
}
