//! Client public keys (`oauth::client_keys`): registered inline (JWKS, JWK or PEM) and read back from
//! a client's JWKS. Random keys never panic and never become a key a signature could be checked with
//! unless they are one: RSA of 2048 to 8192 bits, EC P-256 or Ed25519, public, for signing.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::DecodingKey;
use proptest::prelude::*;
use serde_json::{Value, json};
use tessera::oauth::client_keys::{normalize_registered_keys, parse_jwks};

use crate::config;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url without padding, as RFC 7515 §2 writes JWK members.
fn member(key: &Value, name: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(key.get(name)?.as_str()?).ok()
}

/// Whether `key` is a public signing key a verifier can use, checked apart from the code under test.
fn usable(key: &Value) -> Result<(), String> {
    for private in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
        if key.get(private).is_some() {
            return Err(format!("holds '{private}'"));
        }
    }
    if key.get("use").is_some_and(|u| u != "sig") {
        return Err("is not for signing".into());
    }
    let crv = key.get("crv").and_then(Value::as_str);
    match key.get("kty").and_then(Value::as_str) {
        Some("RSA") => {
            let n = member(key, "n").ok_or("n is not base64url")?;
            let e = member(key, "e").ok_or("e is not base64url")?;
            let n: Vec<u8> = n.into_iter().skip_while(|b| *b == 0).collect();
            let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
            if !(2048..=8192).contains(&bits) {
                return Err(format!("has {bits} bits"));
            }
            let e = e.iter().skip_while(|b| **b == 0).try_fold(0u64, |acc, b| {
                (acc < 1 << 40).then_some(acc << 8 | u64::from(*b))
            });
            match e {
                Some(e) if e >= 3 && e % 2 == 1 && e < 1 << 33 => Ok(()),
                _ => Err(format!("has the exponent {e:?}")),
            }
        }
        Some("EC") if crv == Some("P-256") => {
            let (x, y) = (member(key, "x"), member(key, "y"));
            if x.is_some_and(|x| x.len() == 32) && y.is_some_and(|y| y.len() == 32) {
                Ok(())
            } else {
                Err("x and y are not 32 bytes each".into())
            }
        }
        Some("OKP") if crv == Some("Ed25519") => match member(key, "x") {
            Some(x) if x.len() == 32 => Ok(()),
            _ => Err("x is not 32 bytes".into()),
        },
        other => Err(format!("is {other:?} on {crv:?}")),
    }
}

/// A base64url member: mostly the encoding of random bytes (sometimes of the right length), or
/// any text.
fn bytes_member(lengths: &'static [usize]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(lengths)
            .prop_flat_map(|n| prop::collection::vec(any::<u8>(), n))
            .prop_map(|b| b64(&b)),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| b64(&b)),
        1 => any::<String>(),
        1 => prop::collection::vec(any::<u8>(), 30..34).prop_map(|b| STANDARD.encode(b)),
    ]
}

/// Keys of every shape: the right and wrong kty and crv, good and bad members, private members.
fn random_jwk() -> impl Strategy<Value = Value> {
    let text = |choices: &'static [&'static str]| {
        prop_oneof![
            4 => prop::sample::select(choices).prop_map(str::to_owned),
            1 => any::<String>(),
        ]
    };
    (
        prop::option::of(text(&["RSA", "EC", "OKP", "oct", "rsa"])),
        prop::option::of(text(&[
            "P-256",
            "P-384",
            "P-521",
            "Ed25519",
            "Ed448",
            "X25519",
            "secp256k1",
        ])),
        prop::option::of(bytes_member(&[32, 31, 33, 48, 64])),
        prop::option::of(bytes_member(&[32, 31, 33, 48])),
        prop::option::of(bytes_member(&[256, 255, 257, 128, 512, 1025])),
        prop::option::of(prop_oneof![
            Just("AQAB".to_owned()),
            bytes_member(&[1, 3, 4, 5, 9])
        ]),
        prop::option::of(prop::sample::select(&["d", "k", "p", "qi"][..])),
        prop::option::of(text(&["sig", "enc"])),
        prop::option::of(text(&["RS256", "ES256", "EdDSA", "HS256"])),
        prop::option::of("[a-z0-9-]{0,12}"),
    )
        .prop_map(|(kty, crv, x, y, n, e, private, use_, alg, kid)| {
            let mut key = serde_json::Map::new();
            let mut put = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    key.insert(k.to_owned(), Value::String(v));
                }
            };
            put("kty", kty);
            put("crv", crv);
            put("x", x);
            put("y", y);
            put("n", n);
            put("e", e);
            put("use", use_);
            put("alg", alg);
            put("kid", kid);
            if let Some(p) = private {
                key.insert(p.to_owned(), Value::String(b64(&[1; 32])));
            }
            Value::Object(key)
        })
}

/// Keys valid by construction.
fn valid_jwk() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 32).prop_map(|x| json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&x)})),
        (prop::collection::vec(any::<u8>(), 32), prop::collection::vec(any::<u8>(), 32))
            .prop_map(|(x, y)| json!({"kty": "EC", "crv": "P-256", "x": b64(&x), "y": b64(&y), "use": "sig"})),
        (prop::sample::select(&[256usize, 384, 512][..]), any::<u8>(), prop::collection::vec(any::<u8>(), 1024))
            .prop_map(|(len, top, mut n)| {
                n.truncate(len);
                n[0] = top | 0x80;
                json!({"kty": "RSA", "n": b64(&n), "e": "AQAB", "alg": "RS256"})
            }),
    ]
}

/// What registration and a fetched JWKS keep of `doc`, each kept key checked.
fn check_kept(doc: &str) -> Result<(), TestCaseError> {
    if let Ok(normal) = normalize_registered_keys(doc) {
        let normal: Value = serde_json::from_str(&normal).expect("a JWKS document");
        for key in normal["keys"].as_array().expect("keys") {
            if let Err(why) = usable(key) {
                prop_assert!(false, "registration kept {} which {}", key, why);
            }
        }
    }
    if let Ok(set) = parse_jwks(doc) {
        for jwk in &set.keys {
            let key = serde_json::to_value(jwk).expect("a JWK serialises");
            if let Err(why) = usable(&key) {
                prop_assert!(false, "the JWKS kept {} which {}", key, why);
            }
            prop_assert!(
                DecodingKey::from_jwk(jwk).is_ok(),
                "{} kept but unusable",
                key
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn random_jwks_become_keys_only_when_valid(
        keys in prop::collection::vec(random_jwk(), 1..4),
        single in any::<bool>(),
    ) {
        let doc = if single { keys[0].to_string() } else { json!({ "keys": keys }).to_string() };
        check_kept(&doc)?;
        check_kept(&json!({ "keys": keys }).to_string())?;
    }

    #[test]
    fn valid_jwks_are_kept(keys in prop::collection::vec(valid_jwk(), 1..4)) {
        let doc = json!({ "keys": keys }).to_string();
        let normal = normalize_registered_keys(&doc);
        prop_assert!(normal.is_ok(), "{} refused: {:?}", doc, normal);
        prop_assert_eq!(parse_jwks(&doc).map(|s| s.keys.len()), Ok(keys.len()));
        check_kept(&doc)?;
    }

    /// Random JSON and random PEM text: never a panic, never an unusable key.
    #[test]
    fn random_documents_never_panic(doc in prop_oneof![
        any::<String>(),
        "\\{\"keys\": ?\\[[ -~]{0,40}\\]\\}",
        (prop::sample::select(&["PUBLIC KEY", "RSA PUBLIC KEY", "PRIVATE KEY", "EC PRIVATE KEY", "CERTIFICATE"][..]),
         prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(any::<u8>(), 32).prop_map(|x| [&[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00][..], &x].concat()),
            prop::collection::vec(any::<u8>(), 60..68).prop_map(|p| [&[0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04][..], &p].concat()),
         ],
         any::<bool>())
            .prop_map(|(label, der, end)| {
                let end = if end { format!("-----END {label}-----") } else { String::new() };
                format!("-----BEGIN {label}-----\n{}\n{end}", STANDARD.encode(der))
            }),
    ]) {
        check_kept(&doc)?;
    }
}
