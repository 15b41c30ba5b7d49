//! Scope strings: registered names (`oauth::model::valid_scope_name`), the `scope` of an authorization
//! request (oxide-auth's `Scope`, RFC 6749 §3.3) and of a token request (`oauth::grant_scopes`).

use std::collections::BTreeSet;
use std::str::FromStr as _;

use oxide_auth::primitives::scope::Scope;
use proptest::prelude::*;
use tessera::oauth::grant_scopes;
use tessera::oauth::model::valid_scope_name;

use crate::{config, insert_at};

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn in_grammar(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

fn token() -> impl Strategy<Value = String> {
    "[!#-\\[\\]-~]{1,20}"
}

/// A character no scope token may hold (space excepted: it separates tokens).
fn outside() -> impl Strategy<Value = char> {
    any::<char>().prop_filter("outside the scope-token grammar", |c| {
        !in_grammar(*c) && *c != ' '
    })
}

/// Registered names, and which of them the client is allowed and the API defines.
fn registry() -> impl Strategy<Value = (Vec<String>, Vec<String>, Vec<String>)> {
    prop::collection::btree_set(token(), 1..8).prop_flat_map(|names| {
        let names: Vec<String> = names.into_iter().collect();
        let n = names.len();
        (
            Just(names),
            prop::collection::vec(any::<bool>(), n),
            prop::collection::vec(any::<bool>(), n),
        )
            .prop_map(|(names, a, d)| {
                let pick = |keep: &[bool]| -> Vec<String> {
                    names
                        .iter()
                        .zip(keep)
                        .filter(|(_, k)| **k)
                        .map(|(s, _)| s.clone())
                        .collect()
                };
                let (allowed, defined) = (pick(&a), pick(&d));
                (names, allowed, defined)
            })
    })
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn scope_names_are_exactly_the_grammar(name in "[!#-\\[\\]-~]{1,128}") {
        prop_assert!(valid_scope_name(&name));
    }

    #[test]
    fn a_name_with_a_character_outside_the_grammar_is_refused(
        name in "[!#-\\[\\]-~]{0,20}",
        bad in prop_oneof![outside(), Just(' ')],
        at in 0..21usize,
    ) {
        let with = insert_at(&name, at, &bad.to_string());
        prop_assert!(!valid_scope_name(&with), "{:?} accepted", with);
        prop_assert!(!valid_scope_name(&"a".repeat(129)));
    }

    #[test]
    fn any_text_is_a_name_only_by_the_grammar(text in any::<String>()) {
        let expected = !text.is_empty() && text.len() <= 128 && text.chars().all(in_grammar);
        prop_assert_eq!(valid_scope_name(&text), expected);
    }

    /// An authorization request's `scope`: tokens separated by spaces round-trip as a set; one
    /// character outside the grammar refuses the whole parameter.
    #[test]
    fn an_authorization_scope_parses_by_the_grammar(
        tokens in prop::collection::vec(token(), 0..6),
        spaces in prop::collection::vec(1..3usize, 6),
        bad in prop::option::of((outside(), 0..60usize)),
    ) {
        let mut text = String::new();
        for (t, n) in tokens.iter().zip(&spaces) {
            text.push_str(t);
            text.push_str(&" ".repeat(*n));
        }
        match bad {
            None => {
                let scope = Scope::from_str(&text);
                prop_assert!(scope.is_ok(), "{:?} refused", text);
                let got: BTreeSet<&str> = scope.as_ref().expect("checked").iter().collect();
                let want: BTreeSet<&str> = tokens.iter().map(String::as_str).collect();
                prop_assert_eq!(got, want);
            }
            Some((c, at)) => {
                let with = insert_at(&text, at, &c.to_string());
                prop_assert!(Scope::from_str(&with).is_err(), "{:?} accepted", with);
            }
        }
    }

    /// A token request's `scope`: granted only names the client is allowed and the API defines; any
    /// other name, or a character outside the grammar, is `invalid_scope`.
    #[test]
    fn a_token_request_gets_only_allowed_and_defined_scopes(
        (names, allowed, defined) in registry(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        noise in prop::option::of(prop_oneof![
            (outside(), 0..40usize).prop_map(|(c, at)| (c.to_string(), at)),
            (token(), 0..40usize),
        ]),
    ) {
        let allowed_refs: Vec<&str> = allowed.iter().map(String::as_str).collect();
        let requested: Vec<&str> = picks.iter().map(|i| names[i.index(names.len())].as_str()).collect();
        let mut text = requested.join(" ");
        if let Some((extra, at)) = &noise {
            text = insert_at(&text, *at, extra);
        }
        let grantable = |s: &str| allowed.iter().any(|a| a == s) && defined.iter().any(|d| d == s);
        let expected: Option<BTreeSet<&str>> = text
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(|s| grantable(s).then_some(s))
            .collect();
        match (grant_scopes(Some(&text), &allowed_refs, &defined), expected) {
            (Ok(got), Some(want)) => {
                // Sorted, each once, space-separated.
                let want: Vec<&str> = want.into_iter().collect();
                prop_assert_eq!(got, want.join(" "));
                prop_assert!(text.chars().all(|c| c == ' ' || in_grammar(c)), "{:?} accepted", text);
            }
            (Err(e), None) => prop_assert_eq!(e.code(), "invalid_scope"),
            (got, want) => prop_assert!(false, "{:?}: got {:?}, expected {:?}", text, got.map_err(|e| e.code()), want),
        }
        // No scope asked: the allowed and defined ones, never offline_access.
        let default = grant_scopes(None, &allowed_refs, &defined).expect("no scope asked");
        prop_assert!(default.split(' ').filter(|s| !s.is_empty()).all(|s| grantable(s) && s != "offline_access"));
    }
}
