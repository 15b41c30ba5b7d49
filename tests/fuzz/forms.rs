//! Form bodies of the token, revocation and introspection endpoints (`oauth::parse_form`).

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use tessera::oauth::parse_form;

use crate::config;

const FORM: &str = "application/x-www-form-urlencoded";

fn encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "grant_type",
                "code",
                "redirect_uri",
                "client_id",
                "client_secret",
                "scope",
                "refresh_token",
                "code_verifier",
                "client_assertion",
                "token",
                "resource"
            ][..]
        )
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

/// What `parse_form` must answer for `body`: the pairs as the `url` crate reads them, refused when a
/// name repeats, without the empty values.
fn as_the_url_crate_reads(body: &[u8]) -> Result<HashMap<String, String>, &'static str> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    for (i, (k, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(seen, _)| seen == k) {
            return Err("invalid_request");
        }
    }
    Ok(pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect())
}

proptest! {
    #![proptest_config(config(4096))]

    /// Any bytes, with the characters that matter to form encoding over-represented, read as the
    /// `url` crate reads them (the plain parts are not run through its decoder).
    #[test]
    fn any_body_reads_as_the_url_crate_reads_it(
        body in prop::collection::vec(
            prop_oneof![
                Just(b'&'), Just(b'='), Just(b'%'), Just(b'+'), Just(b'a'), Just(b'F'), Just(b'3'),
                Just(b'.'), any::<u8>(),
            ],
            0..64,
        )
    ) {
        let got = parse_form(Some(FORM), &body).map_err(|e| e.code());
        prop_assert_eq!(got, as_the_url_crate_reads(&body));
    }

    /// Distinct names with values round-trip exactly, whatever the characters.
    #[test]
    fn a_form_round_trips(
        params in prop::collection::btree_map(name(), any::<String>().prop_filter("a value", |v| !v.is_empty()), 0..8),
        content_type in prop::sample::select(&[
            FORM, "application/x-www-form-urlencoded; charset=UTF-8", "Application/X-WWW-Form-URLEncoded",
        ][..]),
    ) {
        let body = encode(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let got = parse_form(Some(content_type), &body).map_err(|e| e.code());
        let want: HashMap<String, String> = params.into_iter().collect();
        prop_assert_eq!(got, Ok(want));
    }

    /// RFC 6749 §3.1: a parameter sent twice (both with a value) refuses the request.
    #[test]
    fn a_repeated_parameter_is_refused(
        params in prop::collection::btree_map(name(), "\\PC{1,10}", 1..6),
        again in any::<prop::sample::Index>(),
        value in "\\PC{1,10}",
    ) {
        let repeated = params.keys().nth(again.index(params.len())).expect("in range").clone();
        let mut pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        pairs.push((&repeated, &value));
        let got = parse_form(Some(FORM), &encode(pairs)).map_err(|e| e.code());
        prop_assert_eq!(got, Err("invalid_request"));
    }

    /// Another content type, or none, is refused whatever the body.
    #[test]
    fn another_content_type_is_refused(
        content_type in prop::option::of(prop_oneof![
            any::<String>(),
            Just("application/json".to_owned()),
            Just("multipart/form-data; boundary=x".to_owned()),
            Just("text/plain".to_owned()),
        ]),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        prop_assume!(content_type.as_deref().is_none_or(|ct| {
            !ct.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case(FORM)
        }));
        let got = parse_form(content_type.as_deref(), &body).map_err(|e| e.code());
        prop_assert_eq!(got, Err("invalid_request"));
    }

    /// Any bytes as a form: never a panic; what is accepted holds no empty value and no name twice.
    #[test]
    fn random_bodies_never_panic(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..128),
        "([a-z_%+=&]|%[0-9A-Fa-f]{2}|%[\\x80-\\xff]){0,40}".prop_map(String::into_bytes),
    ]) {
        if let Ok(params) = parse_form(Some(FORM), &body) {
            prop_assert!(params.values().all(|v| !v.is_empty()));
            let mut seen = BTreeMap::new();
            for (k, v) in url::form_urlencoded::parse(&body) {
                if !v.is_empty() {
                    prop_assert!(seen.insert(k.into_owned(), v.into_owned()).is_none());
                }
            }
            prop_assert_eq!(seen.len(), params.len());
        }
    }
}
