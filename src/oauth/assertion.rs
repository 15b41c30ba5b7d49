//! JWTs signed by clients (RFC 7523): client authentication by `private_key_jwt` and
//! `client_secret_jwt` (§2.2), and the JWT bearer grant (§2.1). Each `jti` is accepted once.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::model::{Client, TokenAuthMethod};
use super::store;
use crate::db;
use crate::error::AppError;
use crate::i18n::Detail;
use crate::oauth::OAuth;

pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// AEAD associated data of a `client_secret_jwt` secret: binds the ciphertext to its client.
pub fn secret_aad(client_id: &str) -> String {
    format!("client_secret:{client_id}")
}

/// What the assertion is for: it decides the error code of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// `client_assertion`: failures are 401 `invalid_client`.
    ClientAuthentication,
    /// The `assertion` of the JWT bearer grant: failures are 400 `invalid_grant`.
    Grant,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The claims Tessera reads from a client's JWT. Times are NumericDate: fractions are allowed
/// (RFC 7519 §2) and rounded down.
#[derive(Debug, Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub sub: String,
    aud: Audience,
    #[serde(deserialize_with = "numeric_date")]
    pub exp: i64,
    #[serde(default, deserialize_with = "optional_numeric_date")]
    pub iat: Option<i64>,
    #[serde(default, deserialize_with = "optional_numeric_date")]
    pub nbf: Option<i64>,
    pub jti: Option<String>,
}

fn numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = f64::deserialize(d)?;
    if !v.is_finite() {
        return Err(serde::de::Error::custom("not a NumericDate"));
    }
    Ok(v.floor() as i64)
}

fn optional_numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    numeric_date(d).map(Some)
}

/// The longest an assertion may live: `exp` at most one hour after now.
const MAX_LIFETIME: i64 = 3600;

fn refuse(use_: Use, why: Detail) -> AppError {
    match use_ {
        Use::ClientAuthentication => AppError::oauth("invalid_client", why),
        Use::Grant => AppError::oauth("invalid_grant", why),
    }
}

/// The `alg` and `kid` of a JWT's header as written (`alg` may be a name jsonwebtoken does not
/// know, such as RFC 9864's `Ed25519`).
fn raw_header(jwt: &str) -> Option<(String, Option<String>)> {
    let header = jwt.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let alg = v.get("alg")?.as_str()?.to_owned();
    let kid = v.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
    Some((alg, kid))
}

/// The claims of a JWT signed with Ed25519 (`alg: Ed25519`) by one of `set`'s Ed25519 keys (the
/// one named by `kid`, when it names one), checked with ring.
fn verify_ed25519(
    jwt: &str,
    set: &jsonwebtoken::jwk::JwkSet,
    kid: Option<&str>,
) -> Option<serde_json::Value> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (input, signature) = jwt.rsplit_once('.')?;
    let payload = input.split_once('.')?.1;
    let signature = b64.decode(signature).ok()?;
    let signed = set.keys.iter().any(|k| {
        let AlgorithmParameters::OctetKeyPair(p) = &k.algorithm else {
            return false;
        };
        p.curve == EllipticCurve::Ed25519
            && kid.is_none_or(|kid| k.common.key_id.as_deref() == Some(kid))
            && b64.decode(&p.x).is_ok_and(|x| {
                ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, x)
                    .verify(input.as_bytes(), &signature)
                    .is_ok()
            })
    });
    if !signed {
        return None;
    }
    serde_json::from_slice(&b64.decode(payload).ok()?).ok()
}

/// The public keys a `private_key_jwt` client registered: inline, or fetched from its `jwks_uri`
/// (through the node's cache).
async fn client_key_set(
    state: &actix_web::web::Data<OAuth>,
    client: &Client,
    kid: Option<&str>,
    use_: Use,
) -> Result<jsonwebtoken::jwk::JwkSet, AppError> {
    match (&client.jwks, &client.jwks_uri) {
        (Some(inline), _) => super::client_keys::parse_jwks(inline)
            .map_err(|_| AppError::internal("a client's registered JWKS is unreadable")),
        (None, Some(uri)) => Ok((*state.jwks_cache.get(uri, kid).await.map_err(|e| {
            tracing::warn!(client_id = %client.id, error = %e, "client JWKS unavailable");
            refuse(use_, Detail::ClientKeysUnavailable)
        })?)
        .clone()),
        (None, None) => Err(refuse(use_, Detail::AssertionInvalid)),
    }
}

/// The `iss` of a JWT before its signature is checked: only used to find whose key to check it with.
fn unverified_issuer(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss")?.as_str().map(str::to_owned)
}

/// Verifies a client-signed JWT: the client named by `iss`, its registered key (an asymmetric key for
/// `private_key_jwt`, the encrypted secret for `client_secret_jwt`; `alg: none` and algorithm
/// confusion are impossible because the accepted algorithms come from the client's registration),
/// `sub` = the client, `aud` one of `audiences`, `exp` within one hour (± the clock skew), `iat`, and a
/// `jti` not seen before. Returns the client and the claims.
pub async fn verify(
    state: &actix_web::web::Data<OAuth>,
    jwt: &str,
    use_: Use,
    audiences: &[String],
) -> Result<(std::sync::Arc<Client>, AssertionClaims), AppError> {
    let generic = || refuse(use_, Detail::AssertionInvalid);
    if jwt.len() > 8 * 1024 {
        return Err(generic());
    }
    // RFC 9864 names EdDSA over Ed25519 `Ed25519`; jsonwebtoken knows only `EdDSA`, so such a
    // header is read and its signature checked here (with ring), the rest as for any assertion.
    let (alg_name, kid) = raw_header(jwt).ok_or_else(generic)?;
    let client_id = unverified_issuer(jwt).ok_or_else(generic)?;
    let client = super::credentials::find(state, &client_id)
        .await?
        .filter(|c| c.enabled())
        .ok_or_else(generic)?;
    let method = client.auth_method();
    let claims = if alg_name == "Ed25519" {
        if method != TokenAuthMethod::PrivateKeyJwt {
            return Err(refuse(
                use_,
                match method {
                    TokenAuthMethod::ClientSecretJwt => Detail::AssertionMustBeHs256,
                    _ => Detail::NotJwtClient,
                },
            ));
        }
        let set = client_key_set(state, &client, kid.as_deref(), use_).await?;
        verify_ed25519(jwt, &set, kid.as_deref())
            .ok_or_else(|| refuse(use_, Detail::AssertionSignature))?
    } else {
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| generic())?;
        let keys: Vec<DecodingKey> = match method {
            TokenAuthMethod::ClientSecretJwt => {
                if header.alg != Algorithm::HS256 {
                    return Err(refuse(use_, Detail::AssertionMustBeHs256));
                }
                let sealed = client.secret_encrypted.as_deref().ok_or_else(generic)?;
                let secret =
                    crate::jwt::keys::open(&state.master_key, &secret_aad(&client.id), sealed)
                        .map_err(|_| AppError::internal("a client secret cannot be decrypted"))?;
                vec![DecodingKey::from_secret(&secret)]
            }
            TokenAuthMethod::PrivateKeyJwt => {
                if !matches!(
                    header.alg,
                    Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
                ) {
                    return Err(refuse(use_, Detail::AssertionMustBeAsymmetric));
                }
                let set = client_key_set(state, &client, header.kid.as_deref(), use_).await?;
                set.keys
                    .iter()
                    .filter(|k| {
                        header
                            .kid
                            .as_deref()
                            .is_none_or(|kid| k.common.key_id.as_deref() == Some(kid))
                    })
                    .filter_map(|k| DecodingKey::from_jwk(k).ok())
                    .collect()
            }
            _ => {
                return Err(refuse(use_, Detail::NotJwtClient));
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false; // checked below with the configured skew
        validation.validate_aud = false; // checked below against our own endpoints
        validation.set_required_spec_claims::<&str>(&[]);
        // A key of the wrong family (an HMAC secret vs. a public key) fails here: no algorithm
        // confusion.
        keys.iter()
            .find_map(|key| jsonwebtoken::decode::<serde_json::Value>(jwt, key, &validation).ok())
            .map(|d| d.claims)
            .ok_or_else(|| refuse(use_, Detail::AssertionSignature))?
    };
    let claims: AssertionClaims = serde_json::from_value(claims)
        .map_err(|_| refuse(use_, Detail::AssertionClaimsMalformed))?;
    // The signature holds: from here the reasons can be told to the client.
    let skew = state.settings.clock_skew.as_secs() as i64;
    let now = db::now();
    if claims.iss != client.id || claims.sub != client.id {
        return Err(refuse(use_, Detail::AssertionIssSub));
    }
    let aud_ok = match &claims.aud {
        Audience::One(a) => audiences.contains(a),
        Audience::Many(list) => list.iter().any(|a| audiences.contains(a)),
    };
    if !aud_ok {
        return Err(refuse(use_, Detail::AssertionAudience));
    }
    if claims.exp + skew <= now {
        return Err(refuse(use_, Detail::AssertionExpired));
    }
    if claims.exp > now + MAX_LIFETIME + skew {
        return Err(refuse(use_, Detail::AssertionTooLong));
    }
    match claims.iat {
        None => return Err(refuse(use_, Detail::MissingParameter { name: "iat" })),
        Some(iat) if iat > now + skew => {
            return Err(refuse(use_, Detail::IatInFuture));
        }
        Some(_) => {}
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + skew) {
        return Err(refuse(use_, Detail::AssertionNotYetValid));
    }
    let jti = match claims.jti.as_deref() {
        Some(j) if !j.is_empty() && j.len() <= 256 => j.to_owned(),
        _ => return Err(refuse(use_, Detail::JtiFormat)),
    };
    // Remembered until the assertion could no longer be accepted anyway.
    let until = claims.exp + skew;
    let id = client.id.clone();
    let fresh = db::run(&state.pool, move |conn| {
        Ok(store::record_assertion_jti(conn, &id, &jti, until)?)
    })
    .await?;
    if !fresh {
        return Err(refuse(use_, Detail::JtiReused));
    }
    Ok((client, claims))
}
