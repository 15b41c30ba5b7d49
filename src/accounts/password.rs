//! Argon2id password hashing (OWASP parameters). Slow on purpose: call it on the blocking pool.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::AppError;

fn argon2() -> Argon2<'static> {
    // 19 MiB, 2 passes, 1 lane: the OWASP minimum for Argon2id.
    let params = Params::new(19 * 1024, 2, 1, None).expect("static Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`; the salt comes from ring.
pub fn hash(password: &str) -> Result<String, AppError> {
    let salt = SaltString::encode_b64(&crate::crypto::random_bytes::<16>())
        .map_err(|e| AppError::internal(format!("salt: {e}")))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::internal(format!("argon2: {e}")))
}

/// A hash of nothing in particular, verified against when the user does not exist so that
/// "no such user" and "wrong password" take the same time.
static DECOY: LazyLock<String> =
    LazyLock::new(|| hash("decoy password, never valid").unwrap_or_default());

/// Checks `password` against a stored hash (or against the decoy when `stored` is `None`).
pub fn verify(stored: Option<&str>, password: &str) -> bool {
    let target = stored.unwrap_or(DECOY.as_str());
    let Ok(parsed) = PasswordHash::new(target) else {
        return false;
    };
    let ok = argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && stored.is_some()
}
