//! API keys (`apikeys::format::parse`): only well-formed keys with the right checksum pass.

use proptest::prelude::*;
use tessera::apikeys::format::{self, BODY_LEN, CHECKSUM_LEN, FormatError, Parsed};

use crate::{config, insert_at, replace_char};

/// Distinct prefixes, none a prefix of another (as the configuration requires).
const PREFIXES: [&str; 4] = ["sk_", "rk_", "pak_", "x9_"];
const ENVS: [&str; 2] = ["live", "test"];
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The checksum as design.md specifies it, written apart from the code under test: the CRC32 of
/// everything before it as 6 base62 digits, most significant first.
fn checksum(head: &str) -> String {
    let mut n = crc32fast::hash(head.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|b| char::from(*b)).collect()
}

/// The prefix and environment of `s` when it is a well-formed key by the specification.
fn well_formed(s: &str) -> Option<(&'static str, &'static str)> {
    let prefix = PREFIXES.into_iter().find(|p| s.starts_with(p))?;
    let rest = &s[prefix.len()..];
    let env = ENVS
        .into_iter()
        .find(|e| rest.strip_prefix(e).is_some_and(|r| r.starts_with('_')))?;
    let tail = &rest[env.len() + 1..];
    let ok = tail.len() == BODY_LEN + CHECKSUM_LEN
        && tail.bytes().all(|b| b.is_ascii_alphanumeric())
        && checksum(&s[..s.len() - CHECKSUM_LEN]) == s[s.len() - CHECKSUM_LEN..];
    ok.then_some((prefix, env))
}

fn parse(s: &str) -> Result<Parsed<'_>, FormatError> {
    format::parse(s, PREFIXES)
}

/// A well-formed key: a prefix, an environment, 43 base62 characters and their checksum.
fn key() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&PREFIXES[..]),
        prop::sample::select(&ENVS[..]),
        "[0-9A-Za-z]{43}",
    )
        .prop_map(|(prefix, env, body)| {
            let head = format!("{prefix}{env}_{body}");
            let sum = checksum(&head);
            head + &sum
        })
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn well_formed_keys_parse_to_their_prefix_and_environment(k in key()) {
        let (prefix, env) = well_formed(&k).expect("the strategy builds well-formed keys");
        prop_assert_eq!(parse(&k), Ok(Parsed { prefix, env }));
        let settings = tessera::config::Settings::default();
        prop_assert_eq!(
            tessera::apikeys::well_formed(&settings, &k),
            prefix == "sk_" || prefix == "rk_"
        );
    }

    #[test]
    fn a_key_with_any_one_character_changed_is_refused(
        k in key(),
        at in 0..60usize,
        with in any::<char>(),
    ) {
        let at = at % k.len();
        let changed = replace_char(&k, at, with);
        prop_assume!(changed != k);
        prop_assert!(parse(&changed).is_err(), "{} was accepted", changed);
    }

    #[test]
    fn a_key_with_two_neighbours_swapped_is_refused(k in key(), at in 0..60usize) {
        let at = at % (k.len() - 1);
        let b = k.as_bytes();
        prop_assume!(b[at] != b[at + 1]);
        let mut swapped = b.to_vec();
        swapped.swap(at, at + 1);
        let swapped = String::from_utf8(swapped).expect("ascii");
        prop_assert!(parse(&swapped).is_err(), "{} was accepted", swapped);
    }

    #[test]
    fn an_edited_prefix_or_environment_is_refused_by_the_checksum(
        k in key(),
        (other, flip_env) in (0..PREFIXES.len(), any::<bool>())
            .prop_filter("an edit", |(other, flip)| *other != 0 || *flip),
    ) {
        let (prefix, env) = well_formed(&k).expect("well formed");
        let at = PREFIXES.iter().position(|p| *p == prefix).expect("a known prefix");
        let new_prefix = PREFIXES[(at + other) % PREFIXES.len()];
        let new_env = if flip_env { if env == "live" { "test" } else { "live" } } else { env };
        let edited = format!("{new_prefix}{new_env}{}", &k[prefix.len() + env.len()..]);
        prop_assert_eq!(parse(&edited), Err(FormatError::Checksum));
    }

    #[test]
    fn a_shortened_or_lengthened_key_is_refused(
        k in key(),
        at in 0..60usize,
        extra in "\\PC{1,3}",
        remove in any::<bool>(),
    ) {
        let at = at % k.len();
        let edited = if remove {
            format!("{}{}", &k[..at], &k[at + 1..])
        } else {
            insert_at(&k, at, &extra)
        };
        prop_assert!(parse(&edited).is_err(), "{} was accepted", edited);
    }
}

proptest! {
    #![proptest_config(config(8192))]

    /// Random text, and random text behind a real prefix and environment: never a panic, and accepted
    /// only when it is a well-formed key by the specification (which random text practically never is).
    #[test]
    fn random_strings_are_keys_only_when_well_formed(
        head in prop::sample::select(&["", "sk_", "sk_live_", "rk_test_", "pak_live_", "x9_test_"][..]),
        body in prop_oneof![
            any::<String>(),
            "[0-9A-Za-z_]{45,52}",
            "[ -~]{49}",
            "\\PC{49}",
        ],
    ) {
        let s = format!("{head}{body}");
        match parse(&s) {
            Ok(parsed) => {
                let (prefix, env) = well_formed(&s).expect("accepted, so well formed");
                prop_assert_eq!(parsed, Parsed { prefix, env });
            }
            Err(_) => prop_assert!(well_formed(&s).is_none(), "{} was refused", s),
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    /// Keys made by the server (32 bytes from ring) follow the same specification.
    #[test]
    fn generated_keys_follow_the_format(
        prefix in prop::sample::select(&PREFIXES[..]),
        env in prop::sample::select(&ENVS[..]),
    ) {
        let k = format::generate(prefix, env);
        prop_assert_eq!(well_formed(&k), Some((prefix, env)));
        prop_assert_eq!(parse(&k), Ok(Parsed { prefix, env }));
    }
}
