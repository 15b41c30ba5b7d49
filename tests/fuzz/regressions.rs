//! The inputs the properties found accepted (each failed before its fix), kept as plain tests.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use tessera::oauth::RedirectUri;
use tessera::oauth::basic_credentials;
use tessera::oauth::client_keys::{normalize_registered_keys, parse_jwks};

fn basic(payload: &[u8]) -> Result<(String, String), &'static str> {
    basic_credentials(&format!("Basic {}", STANDARD.encode(payload)))
        .map(|c| (c.client_id().to_owned(), c.secret().to_owned()))
        .map_err(|e| e.code())
}

/// `client:a&b` came back as the secret `a`: everything from an unencoded `&` on was dropped.
#[test]
fn basic_credentials_keep_an_unencoded_ampersand() {
    assert_eq!(basic(b":&"), Ok((String::new(), "&".to_owned())));
    assert_eq!(
        basic(b"client:s3cr&t=x"),
        Ok(("client".to_owned(), "s3cr&t=x".to_owned()))
    );
}

/// `:%0A%aa` was accepted as the secret "\n\u{FFFD}": escapes that are not UTF-8 (or a stray `%`)
/// decoded lossily, so different secrets decoded alike.
#[test]
fn basic_credentials_refuse_escapes_that_are_not_utf8() {
    for payload in [&b":%0A%aa"[..], b":%ff", b"%fe:x", b":%", b":%4", b":%zz"] {
        assert_eq!(basic(payload), Err("invalid_client"), "{payload:?}");
    }
    assert_eq!(
        basic(b"a%3Ab:%C3%A9+%2B"),
        Ok(("a:b".to_owned(), "é +".to_owned()))
    );
}

/// A 2041-bit modulus (256 bytes, top byte 0x01) passed the "at least 2048 bits" check.
#[test]
fn client_keys_are_sized_as_the_verifier_needs_them() {
    let mut n = vec![0u8; 256];
    n[0] = 1;
    let short_rsa = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"});
    n[0] = 0x80;
    let rsa = |n: &[u8], e: &str| json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": e});
    let padded =
        json!({"kty": "RSA", "n": format!("{}==", URL_SAFE_NO_PAD.encode(&n[..254])), "e": "AQAB"});
    let x32 = URL_SAFE_NO_PAD.encode([9u8; 32]);
    let refused = [
        short_rsa,
        rsa(&n, "AQ"),   // e = 1
        rsa(&n, "AQAA"), // e even
        rsa(&n, "!"),
        rsa(&[0xff; 1025], "AQAB"), // 8200 bits: more than a verifier takes
        padded,
        json!({"kty": "EC", "crv": "P-256", "x": "!!", "y": x32}),
        json!({"kty": "EC", "crv": "P-256", "x": x32, "y": URL_SAFE_NO_PAD.encode([9u8; 31])}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": "not base64"}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": STANDARD.encode([0xfbu8; 32])}),
    ];
    for key in refused {
        assert!(
            normalize_registered_keys(&key.to_string()).is_err(),
            "{key}"
        );
        let set = parse_jwks(&json!({ "keys": [key] }).to_string()).expect("a JWKS");
        assert!(set.keys.is_empty(), "{key}");
    }
    for key in [
        rsa(&n, "AQAB"),
        json!({"kty": "EC", "crv": "P-256", "x": x32, "y": x32}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": x32}),
    ] {
        assert!(normalize_registered_keys(&key.to_string()).is_ok(), "{key}");
    }
}

/// `https://0/"` was registered: characters no URI holds were kept, although the URL parser drops
/// tabs and newlines and reads `\` as `/`, so the stored text was not what it meant.
#[test]
fn redirect_uris_hold_only_uri_characters() {
    for bad in [
        "https://0/\"",
        "https://app.example/c\tb",
        "https://app.example/c\nb",
        "https://app.example\\@evil.example/cb",
        "https://app.example/c b",
        "https://app.example/<cb>",
        "https://bücher.example/cb",
        "https://app.example/cb?x=%zz",
        "https://app.example/cb%4",
        "\u{1}https://app.example/cb",
    ] {
        assert!(RedirectUri::parse(bad).is_err(), "{bad:?}");
    }
    for good in [
        "https://app.example/cb?x=%20y&z=[1]",
        "https://xn--bcher-kva.example/cb",
        "http://[::1]:8080/cb",
    ] {
        assert!(RedirectUri::parse(good).is_ok(), "{good}");
    }
}
