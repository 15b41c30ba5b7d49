//! Signing keys (ring), RFC 9068 access-token JWTs (jsonwebtoken), and the JWKS document.

pub mod keys;
mod store;

pub use store::SigningKeyRow;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use actix_web::{HttpResponse, get, web};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

use crate::audit::{self, Actor};
use crate::config::Settings;
use crate::crypto::SecretBytes;
use crate::db::{self, DbConn};
use crate::error::AppError;
pub use keys::SigningAlg;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(jwks);
}

/// The OpenAPI description of the JWKS document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    Docs::openapi()
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(jwks))]
struct Docs;

/// The JWKS document (RFC 7517): the public keys built by `keys::generate`, as stored.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "only the OpenAPI description names it")]
struct JwkSet {
    keys: Vec<Jwk>,
}

/// A public signing key: `OKP`/`Ed25519` (`x`), `EC`/`P-256` (`x`, `y`) or `RSA` (`n`, `e`).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "only the OpenAPI description names it")]
struct Jwk {
    kty: String,
    kid: String,
    /// `EdDSA`, `ES256` or `RS256`.
    alg: String,
    /// `sig`.
    #[schema(rename = "use")]
    r#use: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// RFC 9068 access-token claims.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

/// The claims of an access token being signed, borrowed from the grant: serialized exactly as
/// [`AccessClaims`] (same names, same order), without copying each value into a `String` first.
#[derive(Debug, Serialize)]
pub struct NewAccessClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: &'a str,
    pub client_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub scope: &'a str,
    pub jti: &'a str,
    pub iat: i64,
    pub exp: i64,
}

impl NewAccessClaims<'_> {
    /// The claims as JSON: what serde writes for [`AccessClaims`] (the test below holds it), without
    /// escaping the values byte by byte (ids, URLs and scopes seldom need it).
    pub fn to_json(&self) -> String {
        let mut o = crate::json::Object::with_capacity(
            100 + self.iss.len()
                + self.sub.len()
                + self.aud.len()
                + self.client_id.len()
                + self.scope.len()
                + self.jti.len(),
        );
        o.str("iss", self.iss)
            .str("sub", self.sub)
            .str("aud", self.aud)
            .str("client_id", self.client_id);
        if !self.scope.is_empty() {
            o.str("scope", self.scope);
        }
        o.str("jti", self.jti)
            .int("iat", self.iat)
            .int("exp", self.exp);
        o.finish()
    }
}

impl<'a> From<&'a AccessClaims> for NewAccessClaims<'a> {
    fn from(c: &'a AccessClaims) -> Self {
        Self {
            iss: &c.iss,
            sub: &c.sub,
            aud: &c.aud,
            client_id: &c.client_id,
            scope: &c.scope,
            jti: &c.jti,
            iat: c.iat,
            exp: c.exp,
        }
    }
}

/// Verified access tokens (their claims: signature, expiry and revocation checked) by HMAC, for
/// `/v1/auth/check`.
pub type TokenCache = crate::cache::HashCache<CachedClaims>;

/// A verified token's claims with the headers forward-auth answers for it (`X-Auth-Subject`,
/// `X-Auth-Scopes`, `X-Auth-Client-Id`, `X-Auth-Audience`), made when they enter the cache.
pub type CachedClaims = crate::cache::WithHeaders<AccessClaims>;

/// `claims` as the cache keeps them.
pub fn cached(claims: AccessClaims) -> CachedClaims {
    use actix_web::http::header::HeaderName;
    CachedClaims::new(claims, |c| {
        vec![
            (HeaderName::from_static("x-auth-subject"), c.sub.as_str()),
            (HeaderName::from_static("x-auth-scopes"), c.scope.as_str()),
            (
                HeaderName::from_static("x-auth-client-id"),
                c.client_id.as_str(),
            ),
            (HeaderName::from_static("x-auth-audience"), c.aud.as_str()),
        ]
    })
}

impl crate::cache::Fields for AccessClaims {
    fn field(&self, name: &str) -> Option<&str> {
        match name {
            "jti" => Some(&self.jti),
            "client_id" => Some(&self.client_id),
            _ => None,
        }
    }
}

/// What loading, using or rotating the signing keys fails with (one line each, as logged).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Crypto(#[from] keys::CryptoError),
    #[error(transparent)]
    Seal(#[from] keys::SealError),
    #[error("{0}")]
    Database(#[from] diesel::result::Error),
    #[error("cannot read signing keys: {0}")]
    Read(#[source] diesel::result::Error),
    #[error("cannot store the signing key: {0}")]
    Store(#[source] diesel::result::Error),
    #[error("a concurrent rotation failed half-way")]
    HalfRotated,
    /// A stored key that cannot be used.
    #[error("signing key {kid}: {problem}")]
    Unusable { kid: String, problem: KeyProblem },
    #[error("JWK field missing")]
    JwkFieldMissing,
    #[error("{0}")]
    JwkBase64(#[from] base64::DecodeError),
    #[error("keyring lock poisoned")]
    Poisoned,
}

/// Why a stored signing key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyProblem {
    #[error(transparent)]
    Sealed(#[from] keys::SealError),
    #[error("bad JWK ({0})")]
    Jwk(#[source] serde_json::Error),
    #[error("unknown algorithm")]
    Algorithm,
    #[error(transparent)]
    Private(#[from] keys::CryptoError),
}

/// A private key parsed once, when the keyring loads (jsonwebtoken would parse, and for RSA validate,
/// the key again on every signature: that cost more than the signature itself).
enum Signer {
    Ed(ring::signature::Ed25519KeyPair),
    Ec(ring::signature::EcdsaKeyPair),
    Rsa(ring::signature::RsaKeyPair),
}

impl Signer {
    fn parse(alg: SigningAlg, der: &[u8]) -> Result<Self, keys::CryptoError> {
        use ring::signature::{
            ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair,
        };
        let err = |e: &dyn std::fmt::Display| keys::CryptoError::of(e);
        Ok(match alg {
            SigningAlg::EdDSA => {
                Self::Ed(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| err(&e))?)
            }
            SigningAlg::ES256 => Self::Ec(
                EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    der,
                    &ring::rand::SystemRandom::new(),
                )
                .map_err(|e| err(&e))?,
            ),
            SigningAlg::RS256 => Self::Rsa(RsaKeyPair::from_der(der).map_err(|e| err(&e))?),
        })
    }

    /// The JWS signature of `input` (ES256 in the fixed `r || s` form RFC 7518 §3.4 requires).
    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, keys::CryptoError> {
        let rng = ring::rand::SystemRandom::new();
        match self {
            Self::Ed(k) => Ok(k.sign(input).as_ref().to_vec()),
            Self::Ec(k) => k
                .sign(&rng, input)
                .map(|s| s.as_ref().to_vec())
                .map_err(keys::CryptoError::of),
            Self::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, input, &mut sig)
                    .map_err(keys::CryptoError::of)?;
                Ok(sig)
            }
        }
    }
}

/// One key, ready to sign (when current) and verify.
struct LoadedKey {
    kid: String,
    signing_alg: SigningAlg,
    alg: Algorithm,
    signer: Signer,
    /// The base64url JOSE header of its tokens: `{"alg", "typ": "at+jwt", "kid"}`.
    header: String,
    decoding: DecodingKey,
    jwk: serde_json::Value,
    publish_at: i64,
    sign_from: i64,
    sign_until: Option<i64>,
    retire_at: Option<i64>,
}

impl LoadedKey {
    /// Published and not yet retired: tokens it signed may still be verified.
    fn trusted(&self, now: i64) -> bool {
        self.publish_at <= now && self.retire_at.is_none_or(|r| now < r)
    }
}

/// The signing keys of this node, loaded from the database and decrypted with the master key.
pub struct Keyring {
    master: SecretBytes,
    /// The algorithm access tokens are signed with (`TESSERA_SIGNING_ALG`).
    access_alg: SigningAlg,
    keys: RwLock<Arc<Vec<LoadedKey>>>,
    /// When an unknown `kid` last made this node re-read the keys (unix ms): at most once a second.
    reread_at: AtomicI64,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring([redacted])")
    }
}

impl Keyring {
    /// Loads the live keys, creating a first key of each algorithm that has none that can sign now;
    /// access tokens are signed with `access_alg`.
    pub fn load_or_create(
        conn: &mut DbConn,
        master: SecretBytes,
        access_alg: SigningAlg,
    ) -> Result<Self, KeyError> {
        let ring = Self {
            master,
            access_alg,
            keys: RwLock::new(Arc::new(Vec::new())),
            reread_at: AtomicI64::new(0),
        };
        ring.reload(conn)?;
        let mut made = false;
        for alg in SigningAlg::ALL {
            if ring.current(alg).is_none() {
                let outcome = first_key(conn, &ring.master, alg)?;
                if let RotateOutcome::Rotated { kid, .. } = &outcome {
                    tracing::info!(%kid, alg = alg.as_str(), "generated a signing key");
                }
                made = true;
            }
        }
        if made {
            ring.reload(conn)?;
        }
        Ok(ring)
    }

    /// The periodic job of every node: re-read the keys (another node or the CLI may have rotated
    /// them), and start the next rotation of each algorithm's chain when the schedule says so.
    pub fn maintain(&self, conn: &mut DbConn, settings: &Settings) -> Result<(), KeyError> {
        self.reload(conn)?;
        let now = db::now();
        let rotate_at = settings.signing_key_rotation.as_secs() as i64
            - settings.signing_key_lead_time.as_secs() as i64;
        let mut rotated = false;
        for alg in SigningAlg::ALL {
            let due = match store::find_head(conn, alg.as_str())? {
                None => true,
                Some(h) => h.sign_from <= now && now - h.sign_from >= rotate_at,
            };
            if !due {
                continue;
            }
            let outcome = rotate(
                conn,
                &self.master,
                alg,
                settings.signing_key_lead_time.as_secs() as i64,
                retire_after(settings),
                Actor::System,
                audit::Origin::default(),
            )?;
            if let RotateOutcome::Rotated { kid, sign_from, .. } = &outcome {
                tracing::info!(%kid, alg = alg.as_str(), sign_from, "scheduled signing-key rotation");
                rotated = true;
            }
        }
        if rotated {
            self.reload(conn)?;
        }
        Ok(())
    }

    /// Re-reads the keys from the database (another node may have rotated them).
    pub fn reload(&self, conn: &mut DbConn) -> Result<(), KeyError> {
        let rows = store::find_live_signing_keys(conn, db::now()).map_err(KeyError::Read)?;
        let mut loaded = Vec::with_capacity(rows.len());
        for row in rows {
            let unusable = |problem: KeyProblem| KeyError::Unusable {
                kid: row.kid.clone(),
                problem,
            };
            let pkcs8 = keys::open(&self.master, &row.kid, &row.private_key_encrypted)
                .map_err(|e| unusable(e.into()))?;
            let jwk: serde_json::Value =
                serde_json::from_str(&row.public_jwk).map_err(|e| unusable(KeyProblem::Jwk(e)))?;
            let b64 = |field: &str| -> Result<Vec<u8>, KeyError> {
                use base64::Engine as _;
                let v = jwk[field].as_str().ok_or(KeyError::JwkFieldMissing)?;
                Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v)?)
            };
            let signing_alg =
                SigningAlg::parse(&row.algorithm).ok_or_else(|| unusable(KeyProblem::Algorithm))?;
            let (alg, decoding) = match signing_alg {
                SigningAlg::EdDSA => (Algorithm::EdDSA, DecodingKey::from_ed_der(&b64("x")?)),
                SigningAlg::ES256 => {
                    let mut point = vec![4u8];
                    point.extend(b64("x")?);
                    point.extend(b64("y")?);
                    (Algorithm::ES256, DecodingKey::from_ec_der(&point))
                }
                SigningAlg::RS256 => (
                    Algorithm::RS256,
                    DecodingKey::from_rsa_raw_components(&b64("n")?, &b64("e")?),
                ),
            };
            let signer = Signer::parse(signing_alg, &pkcs8).map_err(|e| unusable(e.into()))?;
            let header =
                serde_json::json!({ "alg": signing_alg.as_str(), "typ": "at+jwt", "kid": row.kid });
            let header = {
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string())
            };
            loaded.push(LoadedKey {
                kid: row.kid,
                signing_alg,
                alg,
                signer,
                header,
                decoding,
                jwk,
                publish_at: row.publish_at,
                sign_from: row.sign_from,
                sign_until: row.sign_until,
                retire_at: row.retire_at,
            });
        }
        let mut guard = self.keys.write().map_err(|_| KeyError::Poisoned)?;
        *guard = Arc::new(loaded);
        Ok(())
    }

    fn snapshot(&self) -> Arc<Vec<LoadedKey>> {
        self.keys
            .read()
            .map(|g| Arc::clone(&g))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    /// Index of the key of `alg` that signs now: the newest whose signing window contains `now`.
    fn current_index(keys: &[LoadedKey], now: i64, alg: SigningAlg) -> Option<usize> {
        keys.iter()
            .enumerate()
            .filter(|(_, k)| {
                k.signing_alg == alg && k.sign_from <= now && k.sign_until.is_none_or(|u| now < u)
            })
            .max_by_key(|(_, k)| k.sign_from)
            .map(|(i, _)| i)
    }

    fn current(&self, alg: SigningAlg) -> Option<String> {
        let keys = self.snapshot();
        Self::current_index(&keys, db::now(), alg).map(|i| keys[i].kid.clone())
    }

    /// The algorithms of the keys that sign now (for discovery and client registration).
    pub fn signing_algs(&self) -> Vec<SigningAlg> {
        let keys = self.snapshot();
        let now = db::now();
        SigningAlg::ALL
            .into_iter()
            .filter(|a| Self::current_index(&keys, now, *a).is_some())
            .collect()
    }

    /// Signs an RFC 9068 access token (`typ: at+jwt`, `kid` in the header) with the current key of
    /// the access-token algorithm. Writes nothing.
    pub fn sign(&self, claims: &NewAccessClaims<'_>) -> Result<String, AppError> {
        let keys = self.snapshot();
        let i = Self::current_index(&keys, db::now(), self.access_alg)
            .ok_or_else(|| AppError::internal("no signing key is active"))?;
        let key = &keys[i];
        let payload = claims.to_json();
        let mut token = String::with_capacity(key.header.len() + payload.len() * 4 / 3 + 360);
        token.push_str(&key.header);
        compact_jws(key, token, payload.as_bytes())
    }

    /// Signs `payload` (a JSON object) as a JWS with the current key of `alg`, `typ` in its
    /// header (`JWT` for an ID token, `logout+jwt` for a logout token). Writes nothing.
    pub fn sign_jwt(&self, alg: SigningAlg, typ: &str, payload: &str) -> Result<String, AppError> {
        let keys = self.snapshot();
        let i = Self::current_index(&keys, db::now(), alg).ok_or_else(|| {
            AppError::internal(format!("no {} signing key is active", alg.as_str()))
        })?;
        let key = &keys[i];
        use base64::Engine as _;
        let header = serde_json::json!({ "alg": alg.as_str(), "typ": typ, "kid": key.kid });
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string());
        compact_jws(key, token, payload.as_bytes())
    }

    /// The snapshot of keys and the index of the trusted (published, not retired) key that signed
    /// `token`, when its header names one by `kid` and has the `typ` asked for.
    fn key_of(&self, token: &str, typ: &str) -> Option<(Arc<Vec<LoadedKey>>, usize)> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(typ))
        {
            return None;
        }
        let keys = self.snapshot();
        let now = db::now();
        let i = keys
            .iter()
            .position(|k| Some(&k.kid) == header.kid.as_ref() && k.trusted(now))?;
        Some((keys, i))
    }

    /// The claims of a JWT this server signed with `typ` (an ID token given back as
    /// `id_token_hint`): known `kid`, that key's algorithm, our issuer. Expiry is not checked (an
    /// expired ID token is still a hint, OpenID Connect Core §3.1.2.1); nor is the audience.
    pub fn verify_own(&self, token: &str, typ: &str, issuer: &str) -> Option<serde_json::Value> {
        let (keys, i) = self.key_of(token, typ)?;
        let key = &keys[i];
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "sub"]);
        jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }

    /// Verifies a token this server signed: known `kid`, that key's algorithm, `typ: at+jwt`, our
    /// issuer, not expired. The audience is checked by the caller, who knows which API it serves.
    pub fn verify(&self, token: &str, issuer: &str) -> Option<AccessClaims> {
        let (keys, i) = self.key_of(token, "at+jwt")?;
        let key = &keys[i];
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "sub", "iat"]);
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }

    /// As [`Keyring::verify`], but a token whose `kid` this node has not loaded yet (another node or
    /// the CLI rotated with `--now`) makes it re-read the keys first, at most once a second.
    pub fn verify_fresh(
        &self,
        conn: &mut DbConn,
        token: &str,
        issuer: &str,
    ) -> Option<AccessClaims> {
        if let Some(claims) = self.verify(token, issuer) {
            return Some(claims);
        }
        let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
        if self.snapshot().iter().any(|k| k.kid == kid) {
            return None;
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let last = self.reread_at.load(Ordering::Relaxed);
        if now_ms - last < 1000
            || self
                .reread_at
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        if let Err(e) = self.reload(conn) {
            tracing::warn!(error = %e, "cannot re-read the signing keys");
            return None;
        }
        self.verify(token, issuer)
    }

    /// The public keys clients should trust now (published, not retired).
    pub fn jwks(&self) -> serde_json::Value {
        let now = db::now();
        let keys: Vec<serde_json::Value> = self
            .snapshot()
            .iter()
            .filter(|k| k.trusted(now))
            .map(|k| k.jwk.clone())
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

/// Completes a compact JWS: `token` holds the base64url header; the payload and `key`'s signature
/// of both are appended.
fn compact_jws(key: &LoadedKey, mut token: String, payload: &[u8]) -> Result<String, AppError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    token.push('.');
    b64.encode_string(payload, &mut token);
    let signature = key
        .signer
        .sign(token.as_bytes())
        .map_err(|e| AppError::internal(format!("signing: {e}")))?;
    token.push('.');
    b64.encode_string(&signature, &mut token);
    Ok(token)
}

#[utoipa::path(
    operation_id = "jwks",
    tag = "oauth",
    responses((status = 200, description = "The keys that verify Tessera's tokens now", body = JwkSet))
)]
#[get("/.well-known/jwks.json")]
async fn jwks(keyring: web::Data<Keyring>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(keyring.jwks())
}

/// How long a key stays published after it stops signing: the last token it signed must still be
/// verifiable until it expires, even one signed by a node that had not yet re-read the keys, on a
/// verifier whose clock is `clock_skew` behind.
pub fn retire_after(settings: &Settings) -> i64 {
    (settings.access_token_ttl + settings.key_reload_interval + settings.clock_skew)
        .as_secs_f64()
        .ceil() as i64
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// A new key was stored: published now, signing from `sign_from`; `previous` stops then.
    Rotated {
        kid: String,
        sign_from: i64,
        previous: Option<String>,
    },
    /// A successor already waits for its turn (or another node created it just now).
    AlreadyScheduled { kid: String, sign_from: i64 },
}

impl RotateOutcome {
    pub fn kid(&self) -> &str {
        match self {
            Self::Rotated { kid, .. } | Self::AlreadyScheduled { kid, .. } => kid,
        }
    }
}

/// Creates the successor of the current key: published at once, signing `lead_secs` from now; the
/// current key signs until then and is retired `retire_after_secs` later. At most one successor per
/// key exists (a unique index), so nodes rotating at the same moment cannot fork the chain.
pub fn rotate(
    conn: &mut DbConn,
    master: &SecretBytes,
    alg: SigningAlg,
    lead_secs: i64,
    retire_after_secs: i64,
    actor: Actor,
    origin: audit::Origin,
) -> Result<RotateOutcome, KeyError> {
    rotate_when(
        conn,
        master,
        alg,
        lead_secs,
        retire_after_secs,
        actor,
        origin,
        false,
    )
}

/// The first signing key of a fresh database, made at start when there is none. Nodes starting
/// together race to make it: one that finds a key made meanwhile (by the time its transaction
/// looks) keeps that one instead of rotating it away.
fn first_key(
    conn: &mut DbConn,
    master: &SecretBytes,
    alg: SigningAlg,
) -> Result<RotateOutcome, KeyError> {
    rotate_when(
        conn,
        master,
        alg,
        0,
        0,
        Actor::System,
        audit::Origin::default(),
        true,
    )
}

/// [`rotate`]; with `only_first`, nothing is made when a key exists.
#[expect(
    clippy::too_many_arguments,
    reason = "rotate's arguments and the one switch"
)]
fn rotate_when(
    conn: &mut DbConn,
    master: &SecretBytes,
    alg: SigningAlg,
    lead_secs: i64,
    retire_after_secs: i64,
    actor: Actor,
    origin: audit::Origin,
    only_first: bool,
) -> Result<RotateOutcome, KeyError> {
    if let Some(pending) = pending_successor(conn, alg)? {
        return Ok(pending);
    }
    // Generated outside the transaction: an RSA key takes a while and must not hold a write lock.
    let key = keys::generate(alg)?;
    let sealed = keys::seal(master, &key.kid, &key.pkcs8)?;
    let jwk = key.public_jwk.to_string();
    let result = crate::db::transaction(conn, |conn| -> diesel::QueryResult<RotateOutcome> {
        let now = db::now();
        let head = store::find_head(conn, alg.as_str())?;
        if let Some(h) = &head
            && (h.sign_from > now || only_first)
        {
            return Ok(RotateOutcome::AlreadyScheduled {
                kid: h.kid.clone(),
                sign_from: h.sign_from,
            });
        }
        let sign_from = now + lead_secs.max(0);
        let successor_of = match &head {
            Some(h) => h.kid.clone(),
            None => format!(
                "first:{}:{}",
                alg.as_str(),
                store::find_newest(conn, alg.as_str())?
                    .as_deref()
                    .unwrap_or("none")
            ),
        };
        store::insert_signing_key(
            conn,
            &store::NewSigningKey {
                kid: &key.kid,
                algorithm: alg.as_str(),
                public_jwk: &jwk,
                private_key_encrypted: &sealed,
                created_at: now,
                publish_at: now,
                sign_from,
                successor_of: Some(&successor_of),
            },
        )?;
        if let Some(h) = &head {
            store::end_signing_key(
                conn,
                &h.kid,
                sign_from,
                sign_from + retire_after_secs.max(0),
            )?;
        }
        audit::record(
            conn,
            audit::Event::new(actor, "signing_key.rotate")
                .target("signing_key", &key.kid)
                .origin(origin.clone())
                .details(serde_json::json!({
                    "algorithm": alg.as_str(),
                    "sign_from": sign_from,
                    "previous": head.as_ref().map(|h| h.kid.as_str()),
                })),
        )?;
        // Every node re-reads its keys when this commits (PostgreSQL), not at its next reload.
        crate::invalidate::notify(conn, &crate::invalidate::Event::SigningKeys)?;
        Ok(RotateOutcome::Rotated {
            kid: key.kid.clone(),
            sign_from,
            previous: head.map(|h| h.kid),
        })
    });
    match result {
        Ok(outcome) => Ok(outcome),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => {
            // Another node or CLI run made the successor first: its key is the outcome, whether
            // it signs later (a lead time) or already (none).
            store::find_head(conn, alg.as_str())?
                .map(|h| RotateOutcome::AlreadyScheduled {
                    kid: h.kid,
                    sign_from: h.sign_from,
                })
                .ok_or(KeyError::HalfRotated)
        }
        Err(e) => Err(KeyError::Store(e)),
    }
}

fn pending_successor(
    conn: &mut DbConn,
    alg: SigningAlg,
) -> Result<Option<RotateOutcome>, KeyError> {
    let head = store::find_head(conn, alg.as_str())?;
    Ok(head
        .filter(|h| h.sign_from > db::now())
        .map(|h| RotateOutcome::AlreadyScheduled {
            kid: h.kid,
            sign_from: h.sign_from,
        }))
}

/// Where a signing key is in its life at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published in the JWKS, not signing yet.
    Next,
    /// Signing.
    Current,
    /// Taken over by the next key; still published so its tokens verify.
    Previous,
    /// Gone from the JWKS.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Current => "current",
            Self::Previous => "previous",
            Self::Retired => "retired",
        }
    }
}

/// A signing key as listed (its schedule; no key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedKey {
    pub kid: String,
    pub algorithm: String,
    pub state: KeyState,
    pub created_at: i64,
    pub publish_at: i64,
    pub sign_from: i64,
    pub sign_until: Option<i64>,
    pub retire_at: Option<i64>,
}

/// Every signing key with its state now, newest first.
pub fn list_keys(conn: &mut DbConn) -> Result<Vec<ListedKey>, AppError> {
    let now = db::now();
    let rows = store::find_all_signing_keys(conn)?;
    Ok(rows
        .into_iter()
        .map(|k| ListedKey {
            state: if k.retire_at.is_some_and(|r| r <= now) {
                KeyState::Retired
            } else if k.sign_from > now {
                KeyState::Next
            } else if k.sign_until.is_none_or(|u| now < u) {
                KeyState::Current
            } else {
                KeyState::Previous
            },
            kid: k.kid,
            algorithm: k.algorithm,
            created_at: k.created_at,
            publish_at: k.publish_at,
            sign_from: k.sign_from,
            sign_until: k.sign_until,
            retire_at: k.retire_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_claims_serialize_as_the_claims_they_become() {
        for (scope, iss) in [
            ("read write", "https://auth.example"),
            ("", "https://auth.example"),
            ("a\"b", "https://auth.example/\u{1}\\"),
        ] {
            let owned = AccessClaims {
                iss: iss.into(),
                sub: "usr_1".into(),
                aud: "https://api.example".into(),
                client_id: "cli_1".into(),
                scope: scope.into(),
                jti: "at_1".into(),
                iat: 1_700_000_000,
                exp: 1_700_000_900,
            };
            let borrowed = NewAccessClaims::from(&owned);
            let json = serde_json::to_string(&borrowed).expect("serialize");
            assert_eq!(json, serde_json::to_string(&owned).expect("serialize"));
            assert_eq!(borrowed.to_json(), json);
            let back: AccessClaims = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, owned);
        }
    }
}
