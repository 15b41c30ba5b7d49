//! Signing key generation (ring), their public JWKs, and encryption of private keys at rest (AES-256-GCM).

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use serde_json::json;

use crate::crypto::SecretBytes;
use crate::crypto::{base64url, random_bytes};

/// The algorithm of the keys Tessera generates to sign access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    EdDSA,
    ES256,
    RS256,
}

impl SigningAlg {
    /// Every algorithm the keyring keeps a current key of (RS256 because OpenID Connect Discovery
    /// requires it; a client may ask for any of them for its ID tokens).
    pub const ALL: [Self; 3] = [Self::EdDSA, Self::ES256, Self::RS256];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    /// The algorithm `TESSERA_SIGNING_ALG` names (checked when the settings load).
    pub fn of(settings: &crate::config::Settings) -> Self {
        Self::parse(settings.signing_alg).unwrap_or(Self::EdDSA)
    }

    /// A JWS `alg` as registered for a client or named in an assertion: the names JOSE uses, with
    /// `Ed25519` for EdDSA over Ed25519 (RFC 9864).
    pub fn from_jose(s: &str) -> Option<Self> {
        match s {
            "EdDSA" | "Ed25519" => Some(Self::EdDSA),
            "ES256" => Some(Self::ES256),
            "RS256" => Some(Self::RS256),
            _ => None,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EdDSA" | "eddsa" | "Ed25519" | "ed25519" => Some(Self::EdDSA),
            "ES256" | "es256" => Some(Self::ES256),
            "RS256" | "rs256" => Some(Self::RS256),
            _ => None,
        }
    }
}

/// ring or the `rsa` crate refused to make or use a key; the library's own message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CryptoError(String);

impl CryptoError {
    pub(crate) fn of(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// Sealing or opening a secret under the master key ([`seal`], [`open`]).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the master key must be 32 bytes")]
    MasterKeyLength,
    #[error("encryption failed")]
    Encrypt,
    #[error("ciphertext too short")]
    TooShort,
    #[error("bad nonce")]
    BadNonce,
    #[error("cannot decrypt: wrong TESSERA_MASTER_KEY or corrupted key")]
    Decrypt,
}

/// A freshly generated key: its private key (PKCS#8; PKCS#1 for RSA) and its public JWK (with `kid`, `alg`, `use`).
pub struct GeneratedKey {
    pub kid: String,
    pub pkcs8: Vec<u8>,
    pub public_jwk: serde_json::Value,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

pub fn generate(alg: SigningAlg) -> Result<GeneratedKey, CryptoError> {
    let rng = SystemRandom::new();
    let kid = crate::crypto::random_id("key", 16);
    match alg {
        SigningAlg::EdDSA => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(CryptoError::of)?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(CryptoError::of)?;
            let jwk = json!({
                "kty": "OKP", "crv": "Ed25519", "x": base64url(pair.public_key().as_ref()),
                "kid": kid, "alg": "EdDSA", "use": "sig",
            });
            Ok(GeneratedKey {
                kid,
                pkcs8: pkcs8.as_ref().to_vec(),
                public_jwk: jwk,
            })
        }
        SigningAlg::RS256 => {
            use rsa::pkcs1::EncodeRsaPrivateKey as _;
            use rsa::traits::PublicKeyParts as _;
            let key = rsa::RsaPrivateKey::new(&mut RingRng(rng), 2048).map_err(CryptoError::of)?;
            let der = key.to_pkcs1_der().map_err(CryptoError::of)?;
            let jwk = json!({
                "kty": "RSA", "n": base64url(&key.n().to_bytes_be()), "e": base64url(&key.e().to_bytes_be()),
                "kid": kid, "alg": "RS256", "use": "sig",
            });
            Ok(GeneratedKey {
                kid,
                pkcs8: der.as_bytes().to_vec(),
                public_jwk: jwk,
            })
        }
        SigningAlg::ES256 => {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(CryptoError::of)?;
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .map_err(CryptoError::of)?;
            // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
            let point = pair.public_key().as_ref();
            let jwk = json!({
                "kty": "EC", "crv": "P-256",
                "x": base64url(&point[1..33]), "y": base64url(&point[33..65]),
                "kid": kid, "alg": "ES256", "use": "sig",
            });
            Ok(GeneratedKey {
                kid,
                pkcs8: pkcs8.as_ref().to_vec(),
                public_jwk: jwk,
            })
        }
    }
}

/// ring's CSPRNG behind the `rand_core` traits the `rsa` crate asks for.
struct RingRng(SystemRandom);

impl rand_core::RngCore for RingRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        ring::rand::SecureRandom::fill(&self.0, dest)
            .expect("the operating system's random number generator failed");
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        ring::rand::SecureRandom::fill(&self.0, dest).map_err(rand_core::Error::new)
    }
}

impl rand_core::CryptoRng for RingRng {}

fn aead_key(master: &SecretBytes) -> Result<LessSafeKey, SealError> {
    UnboundKey::new(&AES_256_GCM, master.expose())
        .map(LessSafeKey::new)
        .map_err(|_| SealError::MasterKeyLength)
}

/// `nonce || ciphertext || tag`, bound to `aad` (the key id) so ciphertexts cannot be swapped between rows.
pub fn seal(master: &SecretBytes, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let key = aead_key(master)?;
    let nonce_bytes = random_bytes::<NONCE_LEN>();
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce_bytes),
        Aad::from(aad.as_bytes()),
        &mut buf,
    )
    .map_err(|_| SealError::Encrypt)?;
    let mut out = nonce_bytes.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Reverses [`seal`]; fails when the master key or the key id differs.
pub fn open(master: &SecretBytes, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    let key = aead_key(master)?;
    if sealed.len() < NONCE_LEN {
        return Err(SealError::TooShort);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::BadNonce)?;
    let mut buf = rest.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
        .map_err(|_| SealError::Decrypt)?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_the_setting_accepts_is_an_algorithm_of_the_same_name() {
        for (canonical, others) in crate::config::SIGNING_ALGS {
            for name in std::iter::once(canonical).chain(others.iter().copied()) {
                let alg = SigningAlg::parse(name).expect(name);
                assert_eq!(alg.as_str(), canonical, "{name}");
            }
        }
    }

    #[test]
    fn sealed_keys_open_only_with_the_same_master_and_kid() {
        let master = SecretBytes::new(vec![1; 32]);
        let sealed = seal(&master, "kid1", b"secret key").expect("seal");
        assert_eq!(open(&master, "kid1", &sealed).expect("open"), b"secret key");
        assert!(open(&master, "kid2", &sealed).is_err());
        assert!(open(&SecretBytes::new(vec![2; 32]), "kid1", &sealed).is_err());
    }

    #[test]
    fn generated_keys_have_public_jwks() {
        for alg in [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::RS256] {
            let k = generate(alg).expect("generate");
            assert_eq!(k.public_jwk["alg"], alg.as_str());
            assert_eq!(k.public_jwk["kid"], k.kid.as_str());
            assert!(k.public_jwk.get("d").is_none(), "no private part");
        }
    }
}
