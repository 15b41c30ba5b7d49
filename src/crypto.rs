//! Randomness, identifiers, HMAC hashing of high-entropy secrets and constant-time comparison, all on ring.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use std::path::{Path, PathBuf};

pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `N` bytes from the operating system's CSPRNG (through ring).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // SystemRandom only fails when the OS has no entropy source at all; nothing can run safely then.
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the operating system's random number generator failed");
    buf
}

/// A random identifier that sorts by creation time, such as `fam_0AbC1dE2…`: `len` base62 characters,
/// the first 8 the milliseconds since the Unix epoch (big-endian, in `BASE62`'s ASCII order, good
/// until the year 8900), the rest random (`len` 22: 14 random characters, 83 bits). Rows keyed by it
/// are inserted at the end of their indexes, not at a random place: each insert of a batch writes
/// the same last page instead of a page of its own.
pub fn ordered_id(prefix: &str, len: usize) -> String {
    const TIME: usize = 8;
    let mut id = random_id(prefix, len.max(TIME));
    let mut ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let start = prefix.len() + 1;
    let mut time = [b'0'; TIME];
    for c in time.iter_mut().rev() {
        *c = BASE62[(ms % 62) as usize];
        ms /= 62;
    }
    id.replace_range(
        start..start + TIME,
        std::str::from_utf8(&time).unwrap_or("00000000"),
    );
    id
}

/// A random identifier such as `usr_4Jm…` (`len` base62 characters, ~5.95 bits each).
pub fn random_id(prefix: &str, len: usize) -> String {
    let total = prefix.len() + 1 + len;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(prefix.as_bytes());
    out.push(b'_');
    while out.len() < total {
        for b in random_bytes::<32>() {
            // Rejection sampling keeps the alphabet uniform: 248 = 4 * 62.
            if b < 248 && out.len() < total {
                out.push(BASE62[(b % 62) as usize]);
            }
        }
    }
    String::from_utf8(out).expect("a str prefix and ASCII characters are UTF-8")
}

/// A 256-bit random token, base64url without padding (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let mut out = vec![0u8; s.len() / 2];
    unhex_into(s, &mut out).then_some(out)
}

/// Each byte's value as a hex digit (either case), 0xff for a byte that is not one.
const HEX_DIGIT: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Decodes exactly `out.len() * 2` hex digits into `out`; false for anything else. Through a table,
/// with no branch per digit: a stored secret hash is decoded on every client authentication.
fn unhex_into(s: &str, out: &mut [u8]) -> bool {
    if s.len() != out.len() * 2 {
        return false;
    }
    let mut bad = 0u8;
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let (hi, lo) = (
            HEX_DIGIT[usize::from(pair[0])],
            HEX_DIGIT[usize::from(pair[1])],
        );
        bad |= hi | lo;
        *byte = (hi << 4) | (lo & 0x0f);
    }
    bad & 0xf0 == 0
}

/// Bytes that must never be printed. `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes([redacted; {}])", self.0.len())
    }
}

/// HMAC-SHA256 keyed by the server pepper: how tokens, sessions and keys are stored and looked up.
#[derive(Clone)]
pub struct Hasher {
    key: hmac::Key,
    /// This node's random foldhash seeds, for [`Hasher::lookup_key`].
    lookup: [foldhash::quality::RandomState; 2],
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher([redacted])")
    }
}

impl Hasher {
    pub fn new(pepper: &SecretBytes) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, pepper.expose()),
            lookup: [Default::default(), Default::default()],
        }
    }

    /// A key to look up a value that is no secret (a client id, an audience) in a node's cache:
    /// foldhash under two of this node's random seeds (128 bits), a small fraction of the cost of
    /// [`Hasher::hash_raw`] (SipHash-1-3 here was a third of a percent of a token request). Its seeds
    /// are unknown outside the process, so callers cannot aim collisions at it cheaply, and the
    /// caches that use it check the id of the row they find: a collision could only cost a miss. Not
    /// for secrets, and not the same on two nodes (never published: see `HashCache::forget`).
    pub fn lookup_key(&self, purpose: &str, value: &[u8]) -> [u8; 32] {
        use std::hash::{BuildHasher as _, Hasher as _};
        let mut out = [0u8; 32];
        for (i, state) in self.lookup.iter().enumerate() {
            let mut h = state.build_hasher();
            h.write(purpose.as_bytes());
            h.write_u8(0);
            h.write(value);
            out[i * 8..i * 8 + 8].copy_from_slice(&h.finish().to_le_bytes());
        }
        out
    }

    /// Hex HMAC of `purpose || 0x00 || secret`; the purpose keeps hashes of one kind from matching another.
    pub fn hash(&self, purpose: &str, secret: &[u8]) -> String {
        hex(&self.hash_raw(purpose, secret))
    }

    /// The HMAC of [`Hasher::hash`] as bytes (for in-memory lookups; no hex string built).
    pub fn hash_raw(&self, purpose: &str, secret: &[u8]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(purpose.as_bytes());
        ctx.update(&[0]);
        ctx.update(secret);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// Constant-time check of `tag` (base64url) against the HMAC of `purpose || 0x00 || message`.
    pub fn verify_tag(&self, purpose: &str, message: &[u8], tag: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        with_tagged(purpose, message, |data| {
            hmac::verify(&self.key, data, &tag).is_ok()
        })
    }

    /// Constant-time check of `secret` against a stored [`Hasher::hash`] (hex).
    pub fn verify_hash(&self, purpose: &str, secret: &[u8], stored_hex: &str) -> bool {
        // Every stored hash is 64 hex digits: decoded on the stack (this runs on every client
        // authentication).
        let mut tag = [0u8; 32];
        if !unhex_into(stored_hex, &mut tag) {
            return false;
        }
        with_tagged(purpose, secret, |data| {
            hmac::verify(&self.key, data, &tag).is_ok()
        })
    }

    /// Base64url HMAC tag of `purpose || 0x00 || message`, checked by [`Hasher::verify_tag`].
    pub fn tag(&self, purpose: &str, message: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(purpose.as_bytes());
        ctx.update(&[0]);
        ctx.update(message);
        URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
    }
}

/// Runs `f` on `purpose || 0x00 || message`, the text every HMAC here is of (ring's
/// `hmac::verify`, the constant-time check, takes it whole). Built on the stack when it is short, as
/// a client secret's is: this runs on every client authentication.
fn with_tagged<T>(purpose: &str, message: &[u8], f: impl FnOnce(&[u8]) -> T) -> T {
    let len = purpose.len() + 1 + message.len();
    let mut stack = [0u8; 128];
    let mut heap = Vec::new();
    let data: &mut [u8] = if len <= stack.len() {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    let (head, rest) = data.split_at_mut(purpose.len());
    head.copy_from_slice(purpose.as_bytes());
    rest[0] = 0;
    rest[1..].copy_from_slice(message);
    f(data)
}

/// Key material kept in the key file when it is not given by the environment.
#[derive(Debug)]
pub struct KeyMaterial {
    pub pepper: SecretBytes,
    pub master_key: SecretBytes,
}

impl KeyMaterial {
    /// Fingerprints of the pepper and of the master key (hex HMAC-SHA256 under each key of a fixed
    /// label): what a database records to recognise its keys, revealing nothing about them.
    pub fn fingerprints(&self) -> (String, String) {
        let print = |key: &SecretBytes, label: &str| {
            hex(hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, key.expose()),
                label.as_bytes(),
            )
            .as_ref())
        };
        (
            print(&self.pepper, "tessera key fingerprint v1: secret pepper"),
            print(&self.master_key, "tessera key fingerprint v1: master key"),
        )
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeyFile {
    secret_pepper: String,
    master_key: String,
}

/// What reading or creating the key file fails with (one line each, naming the file).
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a Tessera key file: {reason}", path.display())]
    NotAKeyFile { path: PathBuf, reason: String },
    #[error("{} holds malformed keys", path.display())]
    Malformed { path: PathBuf },
    #[error("{0}")]
    Encode(#[from] toml::ser::Error),
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} vanished while being created", path.display())]
    Vanished { path: PathBuf },
}

/// Reads the key file; `None` when there is none at `path`.
pub fn read_key_file(path: &Path) -> Result<Option<KeyMaterial>, KeyFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(KeyFileError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let file: KeyFile = toml::from_str(&text).map_err(|e| KeyFileError::NotAKeyFile {
        path: path.to_owned(),
        reason: e.message().trim().to_owned(),
    })?;
    let pepper = unhex(&file.secret_pepper).filter(|b| b.len() >= 32);
    let master = unhex(&file.master_key).filter(|b| b.len() == 32);
    match (pepper, master) {
        (Some(p), Some(m)) => Ok(Some(KeyMaterial {
            pepper: SecretBytes::new(p),
            master_key: SecretBytes::new(m),
        })),
        _ => Err(KeyFileError::Malformed {
            path: path.to_owned(),
        }),
    }
}

/// Creates the key file with fresh random keys: written to a temporary file (mode 0600) in the same
/// directory, synced, then linked into place, so no reader ever sees half a file and an existing file
/// is never replaced. Returns the keys and whether this call created them (`false`: another process
/// created the file first, and its keys are returned).
pub fn create_key_file(path: &Path) -> Result<(KeyMaterial, bool), KeyFileError> {
    let pepper = random_bytes::<32>().to_vec();
    let master = random_bytes::<32>().to_vec();
    let text = toml::to_string(&KeyFile {
        secret_pepper: hex(&pepper),
        master_key: hex(&master),
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let cannot = |source: std::io::Error| KeyFileError::Create {
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(cannot)?;
    let tmp = dir.join(format!(".tessera.key.{}", random_id("tmp", 12)));
    let linked =
        write_private_file(&tmp, text.as_bytes()).and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            // The new name is durable once the directory is.
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok((
                KeyMaterial {
                    pepper: SecretBytes::new(pepper),
                    master_key: SecretBytes::new(master),
                },
                true,
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path)?
            .map(|keys| (keys, false))
            .ok_or_else(|| KeyFileError::Vanished {
                path: path.to_owned(),
            }),
        Err(e) => Err(cannot(e)),
    }
}

fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_length() {
        let id = random_id("usr", 20);
        assert!(id.starts_with("usr_"));
        assert_eq!(id.len(), 24);
        assert_ne!(id, random_id("usr", 20));
        assert!(id[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        let long = random_id("at", 200);
        assert_eq!(long.len(), 203);
        assert!(long[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    /// Ordered ids keep the shape of random ones, sort by the millisecond they were made in, and
    /// differ within one millisecond.
    #[test]
    fn ordered_ids_sort_by_time_and_stay_unique() {
        let first = ordered_id("fam", 22);
        assert!(first.starts_with("fam_"));
        assert_eq!(first.len(), 26);
        assert!(first[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        let same_ms: Vec<String> = (0..100).map(|_| ordered_id("fam", 22)).collect();
        let distinct: std::collections::HashSet<&String> = same_ms.iter().collect();
        assert_eq!(distinct.len(), 100);
        let mut made = vec![first];
        for _ in 0..5 {
            std::thread::sleep(std::time::Duration::from_millis(2));
            made.push(ordered_id("fam", 22));
        }
        let mut sorted = made.clone();
        sorted.sort();
        assert_eq!(sorted, made, "later ids sort after earlier ones");
        // The time part reads back as now.
        let ms = made[5][4..12].bytes().fold(0u64, |n, c| {
            let digit = BASE62.iter().position(|&b| b == c).expect("base62") as u64;
            n * 62 + digit
        });
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as u64;
        assert!(now >= ms && now - ms < 60_000, "{ms} against {now}");
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex(&hex(&[0, 1, 254, 255])), Some(vec![0, 1, 254, 255]));
        assert_eq!(unhex("zz"), None);
        // Every digit in either case, and nothing else: no sign, no odd length.
        assert_eq!(
            unhex("0123456789abcdefABCDEF00"),
            Some(vec![
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xab, 0xcd, 0xef, 0x00
            ])
        );
        for bad in ["+f", "0", "0g", "g0", " 0", "0x", "é0"] {
            assert_eq!(unhex(bad), None, "{bad}");
        }
        for b in 0..=255u8 {
            let text = format!("{}0", char::from(b));
            let is_digit = b.is_ascii_hexdigit();
            assert_eq!(unhex(&text).is_some(), is_digit && text.len() == 2, "{b}");
        }
    }

    #[test]
    fn tags_verify_only_their_message() {
        let h = Hasher::new(&SecretBytes::new(vec![7; 32]));
        let t = h.tag("csrf", b"abc");
        assert!(h.verify_tag("csrf", b"abc", &t));
        assert!(!h.verify_tag("csrf", b"abd", &t));
        assert!(!h.verify_tag("other", b"abc", &t));
    }

    #[test]
    fn hashes_verify_short_and_long_secrets_alike() {
        let h = Hasher::new(&SecretBytes::new(vec![7; 32]));
        // Short ones are checked on the stack, long ones on the heap: the same answers.
        for len in [0, 1, 43, 114, 115, 200, 4096] {
            let secret = vec![b'x'; len];
            let stored = h.hash("client_secret", &secret);
            assert!(h.verify_hash("client_secret", &secret, &stored), "{len}");
            let mut wrong = secret.clone();
            wrong.push(b'y');
            assert!(!h.verify_hash("client_secret", &wrong, &stored), "{len}");
            assert!(!h.verify_hash("other", &secret, &stored), "{len}");
            let tag = h.tag("csrf", &secret);
            assert!(h.verify_tag("csrf", &secret, &tag), "{len}");
            assert!(!h.verify_tag("csrf", &wrong, &tag), "{len}");
        }
        assert!(!h.verify_hash("client_secret", b"x", "not hex"));
    }

    #[test]
    fn the_key_file_is_private_and_never_replaced() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("sub").join("tessera.key");
        let (made, created) = create_key_file(&path).expect("created");
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, created) = create_key_file(&path).expect("the existing file");
        assert!(!created, "an existing key file is kept");
        assert_eq!(again.fingerprints(), made.fingerprints());
        let read = read_key_file(&path).expect("readable").expect("present");
        assert_eq!(read.fingerprints(), made.fingerprints());
        let leftovers = std::fs::read_dir(path.parent().expect("dir"))
            .expect("dir")
            .count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        assert!(
            read_key_file(&dir.path().join("none"))
                .expect("fine")
                .is_none()
        );
    }

    #[test]
    fn fingerprints_tell_keys_apart_and_hide_them() {
        let keys = |p: u8, m: u8| KeyMaterial {
            pepper: SecretBytes::new(vec![p; 32]),
            master_key: SecretBytes::new(vec![m; 32]),
        };
        let (p1, m1) = keys(1, 2).fingerprints();
        let (p2, m2) = keys(1, 3).fingerprints();
        assert_eq!(p1, p2);
        assert_ne!(m1, m2);
        assert_ne!(p1, m1);
        assert!(!p1.contains(&hex(&[1; 32])));
    }
}
