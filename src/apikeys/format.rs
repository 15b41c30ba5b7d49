//! The API key format: `<type prefix><env>_<43 base62 chars of 32 random bytes><6 base62 chars of CRC32>`,
//! e.g. `sk_live_…`. The checksum covers everything before it, so a typo or an edited prefix is rejected
//! before any database work.

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 62^43 > 2^256: 43 characters hold 32 bytes.
pub const BODY_LEN: usize = 43;
/// 62^6 > 2^32: 6 characters hold a CRC32.
pub const CHECKSUM_LEN: usize = 6;

/// Base62 of `bytes` as a big-endian number, left-padded with '0' to `width` characters.
fn base62(bytes: &[u8], width: usize) -> String {
    let mut digits: Vec<u8> = Vec::with_capacity(width);
    let mut num: Vec<u32> = bytes.iter().map(|b| u32::from(*b)).collect();
    while num.iter().any(|d| *d != 0) {
        let mut rem = 0u32;
        for d in num.iter_mut() {
            let cur = rem * 256 + *d;
            *d = cur / 62;
            rem = cur % 62;
        }
        digits.push(ALPHABET[rem as usize]);
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

fn checksum(text: &str) -> String {
    String::from_utf8_lossy(&checksum_digits(text)).into_owned()
}

/// The checksum's 6 base62 digits, computed on the stack (the verify path allocates nothing here).
fn checksum_digits(text: &str) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(text.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// A new key of `prefix` (e.g. `sk_`) in `env` (`live` or `test`): 32 random bytes from ring.
pub fn generate(prefix: &str, env: &str) -> String {
    let head = format!(
        "{prefix}{env}_{}",
        base62(&crate::crypto::random_bytes::<32>(), BODY_LEN)
    );
    let sum = checksum(&head);
    head + &sum
}

/// A key that passed the format checks: which prefix and environment it claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub prefix: &'a str,
    pub env: &'a str,
}

/// Why a string is not a well-formed key (all answered as `invalid_api_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatError {
    Length,
    Alphabet,
    Prefix,
    Checksum,
}

/// Checks a presented key against the known prefixes without touching the database: the prefix and
/// environment, the length, the alphabet, then the checksum.
pub fn parse<'a, 'p>(
    key: &'a str,
    prefixes: impl IntoIterator<Item = &'p str>,
) -> Result<Parsed<'a>, FormatError> {
    let prefix = prefixes
        .into_iter()
        .filter(|p| key.starts_with(*p))
        .max_by_key(|p| p.len())
        .ok_or(FormatError::Prefix)?;
    let rest = &key[prefix.len()..];
    let (env, tail) = rest.split_once('_').ok_or(FormatError::Prefix)?;
    if !matches!(env, "live" | "test") {
        return Err(FormatError::Prefix);
    }
    if tail.len() != BODY_LEN + CHECKSUM_LEN {
        return Err(FormatError::Length);
    }
    if !tail.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(FormatError::Alphabet);
    }
    let (head, sum) = key.split_at(key.len() - CHECKSUM_LEN);
    if checksum_digits(head) != sum.as_bytes() {
        return Err(FormatError::Checksum);
    }
    Ok(Parsed {
        prefix: &key[..prefix.len()],
        env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_typos_do_not() {
        let key = generate("sk_", "live");
        assert!(key.starts_with("sk_live_"));
        assert_eq!(key.len(), "sk_live_".len() + BODY_LEN + CHECKSUM_LEN);
        let prefixes = ["sk_", "rk_", "pak_"];
        assert_eq!(
            parse(&key, prefixes),
            Ok(Parsed {
                prefix: "sk_",
                env: "live"
            })
        );
        // One changed character anywhere is caught by the checksum (or the prefix check).
        let mut typo = key.clone().into_bytes();
        typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).expect("ascii");
        assert_eq!(parse(&typo, prefixes), Err(FormatError::Checksum));
        let edited = key.replacen("sk_", "rk_", 1);
        assert_eq!(parse(&edited, prefixes), Err(FormatError::Checksum));
        let test_env = key.replacen("_live_", "_test_", 1);
        assert_eq!(parse(&test_env, prefixes), Err(FormatError::Checksum));
        assert_eq!(
            parse(&key[..key.len() - 1], prefixes),
            Err(FormatError::Length)
        );
        assert_eq!(parse("xx_live_abc", prefixes), Err(FormatError::Prefix));
        let bad_char = format!("{}-{}", &key[..30], &key[31..]);
        assert_eq!(parse(&bad_char, prefixes), Err(FormatError::Alphabet));
    }

    #[test]
    fn base62_is_fixed_width_and_distinct() {
        assert_eq!(base62(&[0; 32], BODY_LEN), "0".repeat(BODY_LEN));
        assert_eq!(base62(&[0xff; 32], BODY_LEN).len(), BODY_LEN);
        assert_eq!(base62(&[0, 0, 0, 61], 6), "00000z");
        assert_eq!(base62(&[0, 0, 0, 62], 6), "000010");
    }
}
