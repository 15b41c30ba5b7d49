//! Argon2id password hashing (OWASP parameters). Slow on purpose: call it on the blocking pool.

use std::sync::{Condvar, LazyLock, Mutex, PoisonError};

use argon2::password_hash::{Output, PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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

/// Argon2's working memory (19 MiB per hash): at most one buffer per core ever exists, each reused by
/// the next hash; a hash that finds none free waits for one. Allocated per hash and freed, each 19 MiB
/// went back to the malloc arena of whichever blocking thread had run it and stayed there, so failed
/// sign-ins grew the process by 19 MiB for every thread that had hashed once, to 700 MB in the
/// malformed-traffic bench (issue 12, defect 10).
struct Memory {
    /// Free buffers, and how many exist.
    free: Mutex<(Vec<Vec<Block>>, usize)>,
    returned: Condvar,
}

static MEMORY: Memory = Memory {
    free: Mutex::new((Vec::new(), 0)),
    returned: Condvar::new(),
};

fn max_buffers() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Runs `f` with at least `blocks` blocks of working memory from [`MEMORY`], then gives them back.
fn with_memory<T>(blocks: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
    let taken = {
        let mut free = MEMORY.free.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(buffer) = free.0.pop() {
                break buffer;
            }
            if free.1 < max_buffers() {
                free.1 += 1;
                break Vec::new();
            }
            free = MEMORY
                .returned
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
    };
    let mut memory = taken;
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let result = f(&mut memory);
    MEMORY
        .free
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .0
        .push(memory);
    MEMORY.returned.notify_one();
    result
}

/// `password`'s Argon2 output under the algorithm, parameters and salt of `stored`, equal to its hash.
fn matches(stored: &PasswordHash<'_>, password: &str) -> Option<bool> {
    let expected = stored.hash?;
    let algorithm = Algorithm::try_from(stored.algorithm).ok()?;
    let version = stored
        .version
        .map_or(Ok(Version::default()), Version::try_from)
        .ok()?;
    let params = Params::try_from(stored).ok()?;
    let mut salt = [0u8; 64];
    let salt = stored.salt?.decode_b64(&mut salt).ok()?;
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    with_memory(blocks, |memory| {
        argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
    })
    .ok()?;
    // `Output`'s equality is constant-time.
    Some(Output::new(&out).ok()? == expected)
}

/// Checks `password` against a stored hash (or against the decoy when `stored` is `None`).
pub fn verify(stored: Option<&str>, password: &str) -> bool {
    let target = stored.unwrap_or(DECOY.as_str());
    let Ok(parsed) = PasswordHash::new(target) else {
        return false;
    };
    let ok = matches(&parsed, password).unwrap_or(false);
    ok && stored.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_working_memory_is_reused() {
        let stored = hash("correct horse").expect("hashes");
        assert!(verify(Some(&stored), "correct horse"));
        assert!(!verify(Some(&stored), "correct horsf"));
        assert!(!verify(None, "decoy password, never valid"));
        assert!(!verify(Some("not a phc string"), "x"));
        let free = MEMORY.free.lock().unwrap_or_else(PoisonError::into_inner);
        assert!((1..=max_buffers()).contains(&free.1), "{} buffers", free.1);
        assert_eq!(free.0.len(), free.1, "every buffer is given back");
    }
}
