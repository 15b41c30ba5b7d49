//! Argon2id password hashing (OWASP parameters): slow and memory-hard on purpose, so it runs on the
//! blocking pool behind [`PasswordGate`], which bounds how many hashes run at once (each takes
//! 19 MiB) and how many wait.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::error::AppError;

/// 19 MiB, 2 passes, 1 lane: the OWASP minimum for Argon2id.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("static Argon2 parameters are valid")
}

/// Above this size glibc's malloc always maps a fresh region and unmaps it on free. Argon2's
/// memory (19 MiB) is below it: allocated as it is, freeing it would raise malloc's dynamic mmap
/// threshold and later hashes would come from (and stay in) the heaps of whichever blocking
/// threads ran them: that is how 48 parallel sign-ins left the server at 931 MB. Reserving more
/// than this (the pages past the 19 MiB are never touched, so they cost no memory) makes every
/// hash's memory go back to the system when the hash is done.
const ALWAYS_MAPPED: usize = 33 * 1024 * 1024;

/// Runs Argon2 `argon` over `password` and `salt` into `out`, with memory that is returned to the
/// system afterwards.
fn compute(argon: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> argon2::Result<()> {
    let blocks = argon.params().block_count();
    let mut memory: Vec<Block> =
        Vec::with_capacity(blocks.max(ALWAYS_MAPPED / std::mem::size_of::<Block>()));
    memory.resize(blocks, Block::default());
    argon.hash_password_into_with_memory(password, salt, out, &mut memory)
}

/// A PHC string `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`; the salt comes from ring.
pub fn hash(password: &str) -> Result<String, AppError> {
    let salt = SaltString::encode_b64(&crate::crypto::random_bytes::<16>())
        .map_err(|e| AppError::internal(format!("salt: {e}")))?;
    let params = params();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut raw_salt = [0u8; 16];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut raw_salt)
        .map_err(|e| AppError::internal(format!("salt: {e}")))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(&argon, password.as_bytes(), salt_bytes, &mut out)
        .map_err(|e| AppError::internal(format!("argon2: {e}")))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(|e| AppError::internal(format!("argon2 params: {e}")))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| AppError::internal(format!("argon2: {e}")))?),
    };
    Ok(phc.to_string())
}

/// A hash of nothing in particular, verified against when the user does not exist so that
/// "no such user" and "wrong password" take the same time.
static DECOY: LazyLock<String> =
    LazyLock::new(|| hash("decoy password, never valid").unwrap_or_default());

/// Checks `password` against a stored hash (or against the decoy when `stored` is `None`), with the
/// algorithm, version and parameters the hash was made with.
pub fn verify(stored: Option<&str>, password: &str) -> bool {
    let target = stored.unwrap_or(DECOY.as_str());
    let Ok(parsed) = PasswordHash::new(target) else {
        return false;
    };
    let (Ok(algorithm), Some(expected), Some(salt)) = (
        Algorithm::try_from(parsed.algorithm),
        parsed.hash,
        parsed.salt,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .ok()
        .flatten()
        .unwrap_or_default();
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    // Refuse parameters that would make one sign-in take more than the gate accounts for.
    if params.m_cost() > 64 * 1024 || params.t_cost() > 16 || params.p_cost() > 4 {
        return false;
    }
    let mut raw_salt = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut raw_salt) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    if compute(&argon, password.as_bytes(), salt, &mut out).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time.
    let ok = Output::new(&out).is_ok_and(|computed| computed == expected);
    ok && stored.is_some()
}

/// Bounds the password hashing of a node: at most `concurrency` hashes at once (one per core), at
/// most `queue` more waiting for a turn; past that a request is refused at once with 503 and
/// `Retry-After` instead of piling up 19 MiB each.
#[derive(Debug)]
pub struct PasswordGate {
    permits: tokio::sync::Semaphore,
    admitted: AtomicUsize,
    capacity: usize,
}

/// Gives the admission back when the request ends, finished or dropped while it waited.
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PasswordGate {
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            permits: tokio::sync::Semaphore::new(concurrency),
            admitted: AtomicUsize::new(0),
            capacity: concurrency + queue,
        }
    }

    /// One hash per core, and eight waiting per core.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores, 8 * cores)
    }

    /// Runs `work` (a hash or a verification) on the blocking pool when its turn comes;
    /// [`AppError::Busy`] when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(AppError::Busy);
        }
        let _admission = Admission(&self.admitted);
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AppError::internal("password gate closed"))?;
        let span = tracing::Span::current();
        Ok(actix_web::web::block(move || span.in_scope(work)).await?)
    }

    /// Hashes currently running or waiting.
    pub fn in_use(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_with_its_password_only_and_keeps_the_phc_shape() {
        let stored = hash("correct horse battery staple").expect("hash");
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(Some(&stored), "correct horse battery staple"));
        assert!(!verify(Some(&stored), "correct horse battery stapl"));
        assert!(!verify(None, "decoy password, never valid"));
        assert!(!verify(Some("not a phc string"), "x"));
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_still_verify() {
        use argon2::password_hash::PasswordHasher as _;
        let salt = SaltString::encode_b64(&[7u8; 16]).expect("salt");
        let stored = Argon2::default()
            .hash_password(b"pw", &salt)
            .expect("hash")
            .to_string();
        assert!(verify(Some(&stored), "pw"));
        assert!(!verify(Some(&stored), "pw2"));
    }

    #[actix_web::test]
    async fn the_gate_refuses_past_its_queue_and_frees_its_places() {
        let gate = std::sync::Arc::new(PasswordGate::new(1, 1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let hold = |gate: std::sync::Arc<PasswordGate>| {
            let rx = rx.clone();
            actix_web::rt::spawn(async move {
                gate.run(move || {
                    let _ = rx.lock().map(|r| r.recv());
                })
                .await
            })
        };
        let first = hold(gate.clone());
        let second = hold(gate.clone());
        while gate.in_use() < 2 {
            actix_web::rt::task::yield_now().await;
        }
        assert!(matches!(gate.run(|| ()).await, Err(AppError::Busy)));
        tx.send(()).expect("release the first");
        tx.send(()).expect("release the second");
        assert!(first.await.expect("join").is_ok());
        assert!(second.await.expect("join").is_ok());
        assert_eq!(gate.in_use(), 0);
        assert!(gate.run(|| 1).await.is_ok());
    }
}
