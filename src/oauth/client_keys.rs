//! The public keys of clients that authenticate with `private_key_jwt` (RFC 7523): registered inline
//! (a JWKS, one JWK, or a PEM public key) or fetched from the client's `jwks_uri` and cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use serde_json::{Value, json};

use crate::crypto::base64url;
use crate::i18n::Detail;

/// A fetched JWKS is trusted this long; a `kid` it lacks triggers a refetch at most this often.
const CACHE_TTL: Duration = Duration::from_secs(300);
const REFETCH_AFTER: Duration = Duration::from_secs(30);
const MAX_JWKS_BYTES: usize = 64 * 1024;
const MAX_KEYS: usize = 20;
/// The most key sets a node keeps (one per client `jwks_uri`).
const MAX_CACHED_SETS: usize = 1_000;

/// Normalises registered key material to a JWKS document (JSON text). Accepts a JWKS, a single JWK,
/// or one or more PEM public keys (SPKI; PKCS#1 for RSA). Private keys and symmetric keys are refused.
pub fn normalize_registered_keys(input: &str) -> Result<String, Detail> {
    let input = input.trim();
    let keys: Vec<Value> = if input.starts_with("-----BEGIN") {
        pem_blocks(input)?
            .into_iter()
            .map(|(label, der)| pem_to_jwk(&label, &der))
            .collect::<Result<_, _>>()?
    } else {
        let doc: Value = serde_json::from_str(input).map_err(|_| Detail::KeysNotJwksOrPem)?;
        match doc.get("keys") {
            Some(Value::Array(keys)) => keys.clone(),
            Some(_) => return Err(Detail::KeysNotArray),
            None if doc.get("kty").is_some() => vec![doc],
            None => return Err(Detail::KeysNotJwk),
        }
    };
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(Detail::KeysCount { max: MAX_KEYS });
    }
    for key in &keys {
        check_public_jwk(key)?;
    }
    Ok(json!({ "keys": keys }).to_string())
}

/// Why a client's key set could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("the key set is not JSON ({0})")]
    NotJson(String),
    #[error("the document is not a JWKS (no `keys` array)")]
    NotJwks,
    #[error("cannot fetch the client's jwks_uri ({0})")]
    Fetch(String),
    #[error("the client's jwks_uri answered {0}")]
    Status(reqwest::StatusCode),
    #[error("the client's JWKS is larger than 64 KiB")]
    TooLarge,
}

/// Parses a JWKS document, keeping only keys usable for client signatures.
pub fn parse_jwks(text: &str) -> Result<JwkSet, JwksError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| JwksError::NotJson(e.to_string()))?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(JwksError::NotJwks)?;
    let usable: Vec<Jwk> = keys
        .iter()
        .filter(|k| check_public_jwk(k).is_ok())
        .filter_map(|k| serde_json::from_value(k.clone()).ok())
        .collect();
    Ok(JwkSet { keys: usable })
}

/// A public signing key of a kind Tessera accepts: RSA (≥ 2048 bits), EC P-256, or Ed25519.
fn check_public_jwk(key: &Value) -> Result<(), Detail> {
    const PRIVATE: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];
    if let Some(member) = PRIVATE.iter().find(|m| key.get(**m).is_some()) {
        return Err(Detail::KeyPrivateMember {
            member: (*member).to_owned(),
        });
    }
    if key
        .get("use")
        .and_then(Value::as_str)
        .is_some_and(|u| u != "sig")
    {
        return Err(Detail::KeyUse);
    }
    let jwk: Jwk = serde_json::from_value(key.clone()).map_err(|_| Detail::KeyNotJwk)?;
    // Members are read as the verifier reads them (base64url without padding, RFC 7515 §2), and sized
    // as it needs them: a key it cannot use is refused here, not at every assertion.
    let decode = |v: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(v)
            .ok()
    };
    match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let n = decode(&rsa.n).ok_or(Detail::KeyRsaModulus)?;
            let n = &n[n.iter().take_while(|b| **b == 0).count()..];
            let bits =
                (n.len() * 8).saturating_sub(n.first().map_or(0, |b| b.leading_zeros() as usize));
            if !(2048..=8192).contains(&bits) {
                return Err(Detail::KeyRsaBits);
            }
            // What ring verifies with: an odd exponent from 3 to 2^33 - 1.
            let e = decode(&rsa.e).ok_or(Detail::KeyRsaExponent)?;
            let e = &e[e.iter().take_while(|b| **b == 0).count()..];
            let e = (e.len() <= 5).then(|| e.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b)));
            if !e.is_some_and(|e| e >= 3 && e % 2 == 1 && e < 1 << 33) {
                return Err(Detail::KeyRsaExponent);
            }
        }
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            let sized = |v: &str| decode(v).is_some_and(|b| b.len() == 32);
            if !sized(&ec.x) || !sized(&ec.y) {
                return Err(Detail::KeyEcSize);
            }
        }
        AlgorithmParameters::EllipticCurve(_) => return Err(Detail::KeyEcCurve),
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            if decode(&okp.x).is_none_or(|x| x.len() != 32) {
                return Err(Detail::KeyEdSize);
            }
        }
        AlgorithmParameters::OctetKeyPair(_) => return Err(Detail::KeyOkpCurve),
        AlgorithmParameters::OctetKey(_) => return Err(Detail::KeySymmetric),
    }
    Ok(())
}

fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, Detail> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines().map(str::trim) {
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            current = Some((label.to_owned(), String::new()));
        } else if line.starts_with("-----END ") {
            let (label, body) = current.take().ok_or(Detail::PemIncomplete)?;
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|_| Detail::PemNotBase64)?;
            out.push((label, der));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
        }
    }
    if current.is_some() || out.is_empty() {
        return Err(Detail::PemIncomplete);
    }
    Ok(out)
}

const ED25519_SPKI: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const P256_SPKI: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
];

fn pem_to_jwk(label: &str, der: &[u8]) -> Result<Value, Detail> {
    let mut jwk = match label {
        "PUBLIC KEY" => {
            if let Some(x) = der.strip_prefix(ED25519_SPKI).filter(|x| x.len() == 32) {
                json!({ "kty": "OKP", "crv": "Ed25519", "x": base64url(x) })
            } else if let Some(xy) = der.strip_prefix(P256_SPKI).filter(|p| p.len() == 64) {
                json!({ "kty": "EC", "crv": "P-256", "x": base64url(&xy[..32]), "y": base64url(&xy[32..]) })
            } else {
                use rsa::pkcs8::DecodePublicKey as _;
                let key = rsa::RsaPublicKey::from_public_key_der(der)
                    .map_err(|_| Detail::PemUnknownKey)?;
                rsa_jwk(&key)
            }
        }
        "RSA PUBLIC KEY" => {
            use rsa::pkcs1::DecodeRsaPublicKey as _;
            let key = rsa::RsaPublicKey::from_pkcs1_der(der).map_err(|_| Detail::PemBadPkcs1)?;
            rsa_jwk(&key)
        }
        other if other.contains("PRIVATE") => {
            return Err(Detail::PemPrivate);
        }
        other => {
            return Err(Detail::PemLabel {
                label: other.chars().take(64).collect(),
            });
        }
    };
    jwk["kid"] = json!(thumbprint(&jwk));
    jwk["use"] = json!("sig");
    Ok(jwk)
}

fn rsa_jwk(key: &rsa::RsaPublicKey) -> Value {
    use rsa::traits::PublicKeyParts as _;
    json!({ "kty": "RSA", "n": base64url(&key.n().to_bytes_be()), "e": base64url(&key.e().to_bytes_be()) })
}

/// The RFC 7638 JWK thumbprint (SHA-256), used as the `kid` of keys registered as PEM.
pub fn thumbprint(jwk: &Value) -> String {
    let s = |k: &str| jwk[k].as_str().unwrap_or_default().to_owned();
    let canonical = match jwk["kty"].as_str() {
        Some("RSA") => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e"), s("n")),
        Some("EC") => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s("crv"),
            s("x"),
            s("y")
        ),
        _ => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, s("crv"), s("x")),
    };
    base64url(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref())
}

struct Cached {
    fetched: Instant,
    keys: Arc<JwkSet>,
}

/// Per-node cache of client JWKS documents fetched from their `jwks_uri`.
pub struct JwksCache {
    http: reqwest::Client,
    entries: Mutex<HashMap<String, Cached>>,
    /// Answered from `entries` (hit) or fetched (miss).
    counts: crate::metrics::CacheCounters,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwksCache")
    }
}

impl Default for JwksCache {
    fn default() -> Self {
        Self::new()
    }
}

impl JwksCache {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            http,
            entries: Mutex::new(HashMap::new()),
            counts: crate::metrics::CacheCounters::detached(),
        }
    }

    /// This cache with its hits and misses counted in `metrics` (as the cache `jwks`).
    pub fn counted_in(self, metrics: &crate::metrics::Metrics) -> Self {
        Self {
            counts: metrics.cache_counters("jwks"),
            ..self
        }
    }

    /// The key sets held now.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys at `uri`: from the cache when fresh; refetched when stale, or when `kid` is missing
    /// from the cached set and the last fetch is older than 30 s (the client may have rotated).
    pub async fn get(&self, uri: &str, kid: Option<&str>) -> Result<Arc<JwkSet>, JwksError> {
        let cached = self.entries.lock().ok().and_then(|m| {
            m.get(uri)
                .map(|c| (c.fetched.elapsed(), Arc::clone(&c.keys)))
        });
        if let Some((age, keys)) = &cached {
            let has_kid = kid.is_none_or(|k| keys.find(k).is_some());
            if *age < CACHE_TTL && (has_kid || *age < REFETCH_AFTER) {
                self.counts.hit();
                return Ok(Arc::clone(keys));
            }
        }
        self.counts.miss();
        match self.fetch(uri).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                if let Ok(mut m) = self.entries.lock() {
                    // Bounded: past the limit, the stale sets go, then all (each is refetched once).
                    if m.len() >= MAX_CACHED_SETS && !m.contains_key(uri) {
                        m.retain(|_, c| c.fetched.elapsed() < CACHE_TTL);
                        if m.len() >= MAX_CACHED_SETS {
                            m.clear();
                        }
                    }
                    m.insert(
                        uri.to_owned(),
                        Cached {
                            fetched: Instant::now(),
                            keys: Arc::clone(&keys),
                        },
                    );
                }
                Ok(keys)
            }
            // A failed refetch keeps serving the last good set until it is stale.
            Err(e) => match cached {
                Some((age, keys)) if age < CACHE_TTL => Ok(keys),
                _ => Err(e),
            },
        }
    }

    async fn fetch(&self, uri: &str) -> Result<JwkSet, JwksError> {
        let mut res = self
            .http
            .get(uri)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| JwksError::Fetch(e.to_string()))?;
        if !res.status().is_success() {
            return Err(JwksError::Status(res.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| JwksError::Fetch(e.to_string()))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                return Err(JwksError::TooLarge);
            }
        }
        parse_jwks(&String::from_utf8_lossy(&body))
    }
}
