//! Redirect URIs at client registration (`oauth::RedirectUri::parse`, also behind the dashboard's
//! one-per-line form): fragments, credentials, wildcards, other schemes and plain http off loopback are
//! refused; a valid URI is kept character for character.

use proptest::prelude::*;
use tessera::oauth::RedirectUri;

use crate::{config, insert_at};

const LOOPBACK: [&str; 5] = ["127.0.0.1", "localhost", "[::1]", "127.0.0.53", "LocalHost"];
/// RFC 3986 `unreserved`, `reserved` without `#` (fragment) and `*` (wildcard), and `%` (escapes).
const URI_CHARS: &str = "-._~:/?[]@!$&'()+,;=%";

/// A DNS name that is not a loopback name: 2 to 4 labels, the last one not numeric.
fn host() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,9}(\\.[a-z0-9][a-z0-9-]{0,9}){0,2}\\.[a-z]{2,6}"
        .prop_filter("not an (invalid) punycode label", |h| !h.contains("xn--"))
}

/// What may follow the authority of a valid redirect URI: port, path, query.
fn rest() -> impl Strategy<Value = String> {
    (
        prop::option::of(1..65535u16),
        "(/[A-Za-z0-9._~!$&'()+,;=:@-]{0,10}){0,4}",
        prop::option::of("[A-Za-z0-9._~!$&'()+,;=:@/?-]{0,20}"),
    )
        .prop_map(|(port, path, query)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let query = query.map(|q| format!("?{q}")).unwrap_or_default();
            format!("{port}{path}{query}")
        })
}

/// A valid redirect URI: https anywhere, or http on a loopback host.
fn valid_uri() -> impl Strategy<Value = String> {
    prop_oneof![
        (host(), rest()).prop_map(|(h, r)| format!("https://{h}{r}")),
        (prop::sample::select(&LOOPBACK[..]), rest()).prop_map(|(h, r)| format!("http://{h}{r}")),
    ]
}

/// What a redirect URI that passed must be, checked apart from the code under test.
fn acceptable(raw: &str) -> Result<(), String> {
    let bytes = raw.as_bytes();
    for (i, c) in raw.char_indices() {
        if !(c.is_ascii_alphanumeric() || URI_CHARS.contains(c)) {
            return Err(format!("holds {c:?}, which no RFC 3986 URI holds"));
        }
        if c == '%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return Err("has a '%' without two hex digits".into());
        }
    }
    let url = url::Url::parse(raw).map_err(|e| e.to_string())?;
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("has a fragment or credentials".into());
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => return Err("has no host".into()),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        other => Err(format!("scheme {other} on {:?}", url.host_str())),
    }
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn valid_redirect_uris_are_kept_exactly(uri in valid_uri()) {
        let parsed = RedirectUri::parse(&uri);
        prop_assert!(parsed.is_ok(), "{} refused: {:?}", uri, parsed);
        let parsed = parsed.expect("checked");
        prop_assert_eq!(parsed.as_str(), uri.as_str());
        prop_assert_eq!(RedirectUri::parse(parsed.as_str()), Ok(parsed.clone()));
        let lines = tessera::oauth::parse_redirect_uri_lines(&format!("\n  {uri}  \n\n"));
        prop_assert_eq!(lines, Ok(vec![parsed]));
    }

    #[test]
    fn a_fragment_is_refused(uri in valid_uri(), fragment in "\\PC{0,12}") {
        let with = format!("{uri}#{fragment}");
        prop_assert!(RedirectUri::parse(&with).is_err(), "{} accepted", with);
    }

    #[test]
    fn credentials_are_refused(
        scheme in prop::sample::select(&["https", "http"][..]),
        (user, password) in ("[A-Za-z0-9._~%-]{0,8}", prop::option::of("[A-Za-z0-9._~%!$&'()+,;=-]{0,8}"))
            .prop_filter("some credentials", |(u, p)| !u.is_empty() || p.as_deref().is_some_and(|p| !p.is_empty())),
        h in prop_oneof![host(), prop::sample::select(&LOOPBACK[..]).prop_map(str::to_owned)],
        r in rest(),
    ) {
        let userinfo = match &password {
            Some(p) => format!("{user}:{p}@"),
            None => format!("{user}@"),
        };
        let uri = format!("{scheme}://{userinfo}{h}{r}");
        prop_assert!(RedirectUri::parse(&uri).is_err(), "{} accepted", uri);
    }

    #[test]
    fn plain_http_off_loopback_is_refused(h in host(), r in rest()) {
        prop_assume!(!h.eq_ignore_ascii_case("localhost"));
        let uri = format!("http://{h}{r}");
        prop_assert!(RedirectUri::parse(&uri).is_err(), "{} accepted", uri);
    }

    #[test]
    fn a_wildcard_anywhere_is_refused(uri in valid_uri(), at in 0..80usize) {
        let with = insert_at(&uri, at % (uri.len() + 1), "*");
        prop_assert!(RedirectUri::parse(&with).is_err(), "{} accepted", with);
    }

    #[test]
    fn other_schemes_are_refused(
        scheme in "[a-z][a-z0-9+.-]{0,9}",
        h in prop_oneof![host(), prop::sample::select(&LOOPBACK[..]).prop_map(str::to_owned)],
        r in rest(),
    ) {
        prop_assume!(scheme != "https" && scheme != "http");
        let uri = format!("{scheme}://{h}{r}");
        prop_assert!(RedirectUri::parse(&uri).is_err(), "{} accepted", uri);
    }
}

proptest! {
    #![proptest_config(config(8192))]

    /// Random text, and valid URIs with random characters put in: never a panic, and what passes is a
    /// URI fit to register.
    #[test]
    fn whatever_passes_is_fit_to_register(
        text in prop_oneof![
            any::<String>(),
            "(https?|javascript|data|file)://[ -~]{0,30}",
            (valid_uri(), 0..80usize, prop_oneof!["\\PC", "[\\x00-\\x20\\x7f]", "[ -~]"])
                .prop_map(|(u, at, c)| insert_at(&u, at, &c)),
        ],
    ) {
        if let Ok(uri) = RedirectUri::parse(&text) {
            prop_assert_eq!(uri.as_str(), text.trim());
            if let Err(why) = acceptable(uri.as_str()) {
                prop_assert!(false, "{:?} accepted, but it {}", text, why);
            }
        }
    }
}
