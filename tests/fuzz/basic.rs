//! `Authorization: Basic` at the token, revocation and introspection endpoints
//! (`oauth::basic_credentials`, RFC 6749 §2.3.1: id and secret form-urlencoded, then RFC 7617).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use tessera::oauth::{BasicCredentials, basic_credentials};

use crate::config;

/// The decoded id and secret, to compare with what was encoded.
fn pair(c: BasicCredentials) -> (String, String) {
    (c.client_id().to_owned(), c.secret().to_owned())
}

/// RFC 6749 §2.3.1: `application/x-www-form-urlencoded` encoding of each part.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", form_encode(id), form_encode(secret)))
    )
}

/// Strict form decoding, written apart from the code under test: `+` is a space, `%XX` a byte; a
/// stray `%` or bytes that are not UTF-8 make the value malformed.
fn form_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = char::from(bytes.next()?).to_digit(16)?;
                let lo = char::from(bytes.next()?).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn encoded_credentials_round_trip_exactly(
        id in any::<String>(),
        secret in any::<String>(),
        scheme in prop::sample::select(&["Basic", "basic", "BASIC", "bAsIc"][..]),
    ) {
        let header = basic(&id, &secret).replacen("Basic", scheme, 1);
        let got = basic_credentials(&header).map(pair).map_err(|e| e.code());
        prop_assert_eq!(got, Ok((id, secret)));
    }

    /// Clients that do not form-encode (most send the raw id and secret): what needs no encoding
    /// comes back as sent, `&` and `=` included.
    #[test]
    fn unencoded_credentials_without_escapes_come_back_as_sent(
        id in "[^:%+]{0,20}",
        secret in "[^%+]{0,40}",
    ) {
        let header = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        let got = basic_credentials(&header).map(pair).map_err(|e| e.code());
        prop_assert_eq!(got, Ok((id, secret)));
    }

    /// Any base64 payload: never a panic; accepted only with a `:` and both parts strictly decodable,
    /// and then exactly their decoding (two different secrets never decode to the same one).
    #[test]
    fn random_payloads_decode_strictly_or_are_refused(
        payload in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            "[%+:A-Za-z0-9&=\\x80-\\xff]{0,30}".prop_map(String::into_bytes),
            ("[^:]{0,10}", "%[0-9A-Fa-f]{2}(%[0-9A-Fa-f]{2}|[a-z%]){0,4}")
                .prop_map(|(a, b)| format!("{a}:{b}").into_bytes()),
        ],
    ) {
        let header = format!("Basic {}", STANDARD.encode(&payload));
        let expected = std::str::from_utf8(&payload)
            .ok()
            .and_then(|p| p.split_once(':'))
            .and_then(|(id, secret)| Some((form_decode(id)?, form_decode(secret)?)));
        let got = basic_credentials(&header).map(pair).map_err(|e| e.code());
        match expected {
            Some(pair) => prop_assert_eq!(got, Ok(pair)),
            None => prop_assert_eq!(got, Err("invalid_client")),
        }
    }

    /// Any header text: never a panic, and a failure is always `invalid_client`.
    #[test]
    fn random_headers_never_panic(header in prop_oneof![
        any::<String>(),
        "(Basic|Bearer|basic) ?[A-Za-z0-9+/= ]{0,40}",
    ]) {
        if let Err(e) = basic_credentials(&header) {
            prop_assert_eq!(e.code(), "invalid_client");
        }
    }
}
