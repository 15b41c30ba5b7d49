//! The one `Issuer`: it builds every access token's claims (RFC 9068) and signs them, makes the
//! refresh tokens a grant gets (the grant's one write stores them), and answers the token request
//! (RFC 6749 §5.1), counting the client's usage and the issuance metric. No other module builds
//! claims or makes refresh tokens.

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;

use super::super::credentials::AuthenticatedClient;
use super::super::model::Client;
use super::super::oidc;
use super::super::params::no_store;
use super::super::store;
use crate::crypto::random_id;
use crate::db;
use crate::error::AppError;
use crate::jwt::{NewAccessClaims, SigningAlg};
use crate::oauth::OAuth;

/// Purpose string of refresh-token hashes (keeps them apart from other HMACs under the pepper).
pub const REFRESH_PURPOSE: &str = "refresh_token";

/// The identity of an access token about to be issued: its `jti` and lifetime. A grant that must
/// record the `jti` before signing (the code exchange, so a replay can revoke it) takes it first.
#[derive(Debug, Clone)]
pub struct AccessId {
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

/// What an access token says besides its identity.
#[derive(Debug)]
pub struct AccessGrant<'a> {
    pub client_id: &'a str,
    /// The user, or the client itself for a service token.
    pub subject: &'a str,
    pub audience: &'a str,
    /// Space-separated, sorted.
    pub scope: &'a str,
}

/// An access token whose `jti` is recorded and whose claims are known, to be signed once the write
/// that records it has committed ([`Issuer::sign_after_commit`]): on SQLite the code exchange and the
/// refresh rotation run on the node's one writer, and a signature there (600 µs and more with
/// RS256) would hold up every write of the node.
#[derive(Debug)]
pub struct UnsignedAccess {
    pub id: AccessId,
    pub client_id: String,
    pub subject: String,
    pub audience: String,
    pub scope: String,
}

/// A signed access token, its identity and its scope. `Debug` shows no token.
pub struct SignedAccess {
    pub token: String,
    pub id: AccessId,
    pub scope: String,
}

impl std::fmt::Debug for SignedAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedAccess")
            .field("id", &self.id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The tokens a grant produced. `Debug` shows no token.
pub struct Issued {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: i64,
    pub scope: String,
    /// OpenID Connect: when `openid` was granted to a user (code exchange, refresh).
    pub id_token: Option<String>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A successful token response (RFC 6749 §5.1): its OpenAPI schema, and the shape [`token_json`]
/// writes.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TokenBody<'a> {
    access_token: &'a str,
    #[schema(value_type = String, example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: i64,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    /// OpenID Connect: an ID token, when `openid` was granted to a user.
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
}

/// The sign-in an ID token describes (OpenID Connect Core §2), from the authorization request
/// that started the grant: kept with its code, then with its refresh family.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub user_id: String,
    /// Echoed in the first ID token only (a refreshed one has none, Core §12.2).
    pub nonce: Option<String>,
    pub auth_time: Option<i64>,
    pub sid: Option<String>,
    /// The checked `claims` request.
    pub claims: Option<String>,
}

/// A refresh token made by [`Issuer::new_refresh`] and not stored yet. `Debug` shows no token.
pub struct PendingRefresh {
    token: String,
    row: store::NewRefresh,
}

impl PendingRefresh {
    /// The row to store (by `store::rotate_refresh` or `store::redeem_code`).
    pub fn row(&self) -> &store::NewRefresh {
        &self.row
    }

    /// The token for the client, once stored.
    pub fn into_token(self) -> String {
        self.token
    }
}

impl std::fmt::Debug for PendingRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRefresh")
            .field("family_id", &self.row.family_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Issuer<'a> {
    state: &'a OAuth,
}

impl<'a> Issuer<'a> {
    pub fn new(state: &'a OAuth) -> Self {
        Self { state }
    }

    /// Seconds an access token lives.
    pub fn access_ttl(&self) -> i64 {
        self.state.settings.access_token_ttl.as_secs() as i64
    }

    /// A fresh `jti`, valid from now for the access-token lifetime.
    pub fn next_access(&self) -> AccessId {
        let now = db::now();
        AccessId {
            jti: random_id("at", 22),
            iat: now,
            exp: now + self.access_ttl(),
        }
    }

    /// Builds the claims of an access token and signs them with the current signing key. Nothing is
    /// written: an access token is verified by its signature, revoked by its `jti`.
    pub fn sign(&self, id: AccessId, grant: AccessGrant<'_>) -> Result<SignedAccess, AppError> {
        let token = self.state.keyring.sign(&NewAccessClaims {
            iss: self.state.settings.issuer_str(),
            sub: grant.subject,
            aud: grant.audience,
            client_id: grant.client_id,
            scope: grant.scope,
            jti: &id.jti,
            iat: id.iat,
            exp: id.exp,
        })?;
        Ok(SignedAccess {
            token,
            id,
            scope: grant.scope.to_owned(),
        })
    }

    /// Signs `access` (its write has committed) and answers with it and `refresh_token`. The key is
    /// the one current now; only a keyring with no active key fails here, which no running node has.
    pub fn sign_after_commit(
        &self,
        access: UnsignedAccess,
        refresh_token: Option<String>,
    ) -> Result<Issued, AppError> {
        let signed = self.sign(
            access.id,
            AccessGrant {
                client_id: &access.client_id,
                subject: &access.subject,
                audience: &access.audience,
                scope: &access.scope,
            },
        )?;
        Ok(self.issued(signed, refresh_token))
    }

    /// As [`Issuer::sign_after_commit`], with an ID token beside the access token when the grant
    /// holds `openid` and describes a user's sign-in, and the grant's `claims` request kept for
    /// UserInfo. The user is read only when the ID token releases their claims.
    pub async fn finish(
        &self,
        client: &Client,
        access: UnsignedAccess,
        refresh_token: Option<String>,
        sign_in: Option<SignIn>,
    ) -> Result<Issued, AppError> {
        let sign_in = sign_in.filter(|_| oidc::has_scope(&access.scope, "openid"));
        let Some(sign_in) = sign_in else {
            return self.sign_after_commit(access, refresh_token);
        };
        let scope = access.scope.clone();
        let (jti, exp) = (access.id.jti.clone(), access.id.exp);
        let mut issued = self.sign_after_commit(access, refresh_token)?;
        let userinfo_claims = sign_in
            .claims
            .as_deref()
            .filter(|c| oidc::requests(c, oidc::Target::UserInfo))
            .map(str::to_owned);
        let user = if oidc::needs_user(&scope, sign_in.claims.as_deref(), oidc::Target::IdToken)
            || userinfo_claims.is_some()
        {
            let user_id = crate::accounts::UserId::from(sign_in.user_id.as_str());
            Some(
                db::run(&self.state.pool, move |conn| {
                    if let Some(claims) = userinfo_claims {
                        store::insert_access_token_claims(conn, &jti, &claims, exp)?;
                    }
                    crate::accounts::find_user(conn, &user_id)
                })
                .await?,
            )
        } else {
            None
        };
        let made = self.id_token(
            client,
            &sign_in,
            user.as_ref(),
            &scope,
            &issued.access_token,
        );
        match made {
            Ok(id_token) => {
                issued.id_token = Some(id_token);
                Ok(issued)
            }
            Err(e) => {
                // The grant's tokens were stored, but the client gets none of them without its
                // ID token: the failure is kept where an operator looks.
                tracing::error!(client_id = %client.id, error = %e, "cannot issue an ID token");
                let (client_id, reason) = (client.id.to_string(), e.to_string());
                let alg = oidc::id_token_alg(client).as_str();
                let recorded = db::run(&self.state.pool, move |conn| {
                    let event =
                        crate::audit::Event::new(crate::audit::Actor::System, "id_token.failed")
                            .target("client", &client_id)
                            .details(serde_json::json!({ "reason": reason, "alg": alg }));
                    Ok(crate::audit::record(conn, event)?)
                })
                .await;
                if let Err(audit) = recorded {
                    tracing::warn!(error = %audit, "cannot audit an ID-token failure");
                }
                Err(e)
            }
        }
    }

    /// The ID token (Core §2, §3.1.3.6) of `sign_in` for `client`, beside `access_token`: signed
    /// with the client's `id_token_signed_response_alg` (RS256 when it registered none).
    fn id_token(
        &self,
        client: &Client,
        sign_in: &SignIn,
        user: Option<&crate::accounts::User>,
        scope: &str,
        access_token: &str,
    ) -> Result<String, AppError> {
        use serde_json::Value;
        let alg = oidc::id_token_alg(client);
        let now = db::now();
        let mut c = serde_json::Map::new();
        c.insert("iss".into(), self.state.settings.issuer_str().into());
        c.insert(
            "sub".into(),
            oidc::subject(&self.state.hasher, client, &sign_in.user_id).into(),
        );
        c.insert("aud".into(), client.id.as_str().into());
        c.insert("exp".into(), (now + self.access_ttl()).into());
        c.insert("iat".into(), now.into());
        if let Some(t) = sign_in.auth_time {
            c.insert("auth_time".into(), t.into());
        }
        if let Some(n) = &sign_in.nonce {
            c.insert("nonce".into(), n.as_str().into());
        }
        c.insert("azp".into(), client.id.as_str().into());
        c.insert("at_hash".into(), at_hash(alg, access_token).into());
        if let Some(sid) = &sign_in.sid {
            c.insert("sid".into(), sid.as_str().into());
        }
        c.insert("amr".into(), Value::Array(vec![oidc::AMR.into()]));
        c.insert("acr".into(), oidc::ACR.into());
        if let Some(user) = user {
            oidc::user_claims(
                user,
                scope,
                sign_in.claims.as_deref(),
                oidc::Target::IdToken,
                &mut c,
            );
        }
        self.state
            .keyring
            .sign_jwt(alg, "JWT", &Value::Object(c).to_string())
    }

    /// A service token (client_credentials, jwt-bearer): an access token, no refresh token.
    pub fn service_token(&self, grant: AccessGrant<'_>) -> Result<Issued, AppError> {
        let access = self.sign(self.next_access(), grant)?;
        Ok(self.issued(access, None))
    }

    /// The HMAC a refresh token is stored and looked up by.
    pub fn refresh_hash(&self, token: &str) -> String {
        self.state.hasher.hash(REFRESH_PURPOSE, token.as_bytes())
    }

    /// A new refresh token (256 random bits, kept only as its HMAC) for `family`, recording the
    /// access token issued beside it so that revoking the family revokes that token too. Made
    /// before the write transaction; [`PendingRefresh::store`] inside it.
    pub fn new_refresh(&self, family: &str, expires_at: i64, access: &AccessId) -> PendingRefresh {
        let token = crate::crypto::random_token();
        let row = store::NewRefresh {
            token_hash: self.refresh_hash(&token),
            family_id: family.to_owned(),
            now: access.iat,
            expires_at,
            jti: access.jti.clone(),
            jti_exp: access.exp,
        };
        PendingRefresh { token, row }
    }

    /// When a refresh token issued now expires: the configured lifetime, never past its family's end.
    pub fn refresh_expiry(&self, now: i64, family_expires_at: Option<i64>) -> i64 {
        let exp = now + self.state.settings.refresh_token_ttl.as_secs() as i64;
        family_expires_at.map_or(exp, |f| exp.min(f))
    }

    /// What a grant answers with.
    pub fn issued(&self, access: SignedAccess, refresh_token: Option<String>) -> Issued {
        Issued {
            access_token: access.token,
            refresh_token,
            expires_in: self.access_ttl(),
            scope: access.scope,
            id_token: None,
        }
    }

    /// The token response: `no-store`, the client's rate-limit headers, its usage counted (in
    /// memory; written with the API-key usage) and the issuance metric.
    pub fn deliver(
        &self,
        issued: &Issued,
        client: &AuthenticatedClient,
        grant: &'static str,
        limit: &crate::ratelimit::Decision,
    ) -> HttpResponse {
        self.state.usage.record(
            client.id(),
            crate::apikeys::usage::Outcome::Allowed,
            db::now(),
        );
        self.state
            .metrics
            .token_issued(grant, client.client.is_public);
        let res = HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(token_json(issued));
        crate::ratelimit::with_headers(no_store(res), limit)
    }
}

/// The token response's JSON: what serde writes for [`TokenBody`] (the test below holds it), the
/// tokens copied whole instead of escaped byte by byte (this runs on every token request).
fn token_json(issued: &Issued) -> String {
    let refresh = issued.refresh_token.as_deref();
    let mut o = crate::json::Object::with_capacity(
        96 + issued.access_token.len()
            + issued.scope.len()
            + refresh.map_or(0, |t| 20 + t.len())
            + issued.id_token.as_ref().map_or(0, |t| 16 + t.len()),
    );
    o.str("access_token", &issued.access_token)
        .str("token_type", "Bearer")
        .int("expires_in", issued.expires_in)
        .str("scope", &issued.scope);
    if let Some(token) = refresh {
        o.str("refresh_token", token);
    }
    if let Some(token) = &issued.id_token {
        o.str("id_token", token);
    }
    o.finish()
}

/// `at_hash` (Core §3.1.3.6): the left half of the hash of the access token, with the hash of
/// the ID token's algorithm (SHA-256 for RS256 and ES256, SHA-512 for EdDSA over Ed25519),
/// base64url.
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    use ring::digest::{SHA256, SHA512, digest};
    let d = match alg {
        SigningAlg::EdDSA => digest(&SHA512, access_token.as_bytes()),
        SigningAlg::ES256 | SigningAlg::RS256 => digest(&SHA256, access_token.as_bytes()),
    };
    let bytes = d.as_ref();
    crate::crypto::base64url(&bytes[..bytes.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_json_is_what_serde_writes_for_the_token_body() {
        for (refresh, scope, id) in [
            (None, "read write", None),
            (Some("rt_abc"), "", Some("eyJ.eyJ.sig")),
            (Some("rt_\"odd\\"), "a\u{7}b", None),
        ] {
            let issued = Issued {
                access_token: "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln".into(),
                refresh_token: refresh.map(str::to_owned),
                expires_in: 900,
                scope: scope.into(),
                id_token: id.map(str::to_owned),
            };
            let serde = serde_json::to_string(&TokenBody {
                access_token: &issued.access_token,
                token_type: "Bearer",
                expires_in: issued.expires_in,
                scope: &issued.scope,
                refresh_token: issued.refresh_token.as_deref(),
                id_token: issued.id_token.as_deref(),
            })
            .expect("serialize");
            assert_eq!(token_json(&issued), serde);
        }
    }
}
