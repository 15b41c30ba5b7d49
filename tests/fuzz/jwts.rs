//! Access-token JWTs (`jwt::Keyring::verify`, behind forward-auth and introspection): a token the
//! server signed verifies to exactly its claims; any edit of its header, payload or signature, a
//! foreign signature, and random tokens are refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::{TestCaseResult, TestRunner};
use tessera::config::{DatabaseUrl, SecretBytes};
use tessera::jwt::SigningAlg;
use tessera::jwt::{AccessClaims, Keyring};

use crate::{config, insert_at, replace_char};

const ISSUER: &str = "https://auth.example";

/// A keyring with one fresh key of `alg`, as a node loads it from its (here: temporary SQLite) database.
fn keyring(alg: SigningAlg) -> (tempfile::TempDir, Keyring) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = DatabaseUrl::Sqlite(dir.path().join("keys.db"));
    let mut conn = tessera::db::connect_one(&url).expect("sqlite");
    tessera::db::migrate(&mut conn).expect("migrations");
    let ring = Keyring::load_or_create(&mut conn, SecretBytes::new(vec![7; 32]), alg)
        .expect("a signing key");
    (dir, ring)
}

fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> TestCaseResult) {
    let mut runner = TestRunner::new(config(cases));
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

fn claims() -> impl Strategy<Value = AccessClaims> {
    (
        any::<String>(),
        "\\PC{1,30}",
        "\\PC{1,24}",
        "[!#-\\[\\]-~ ]{0,40}",
        "[A-Za-z0-9_-]{1,32}",
    )
        .prop_map(|(sub, aud, client_id, scope, jti)| {
            let now = tessera::db::now();
            AccessClaims {
                iss: ISSUER.to_owned(),
                sub,
                aud,
                client_id,
                scope,
                jti,
                iat: now,
                exp: now + 3600,
            }
        })
}

/// One edit of a token: a character replaced, removed or put in.
#[derive(Debug, Clone)]
pub enum Edit {
    Replace(usize, char),
    Remove(usize),
    Insert(usize, char),
}

pub fn edit() -> impl Strategy<Value = Edit> {
    let c = prop_oneof![
        prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/"
                .chars()
                .collect::<Vec<_>>()
        ),
        any::<char>(),
    ];
    prop_oneof![
        4 => (any::<usize>(), c.clone()).prop_map(|(i, c)| Edit::Replace(i, c)),
        1 => any::<usize>().prop_map(Edit::Remove),
        1 => (any::<usize>(), c).prop_map(|(i, c)| Edit::Insert(i, c)),
    ]
}

pub fn apply(token: &str, edit: &Edit) -> String {
    let n = token.chars().count();
    match *edit {
        Edit::Replace(i, c) => replace_char(token, i % n, c),
        Edit::Remove(i) => {
            let i = i % n;
            token
                .chars()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, c)| c)
                .collect()
        }
        Edit::Insert(i, c) => insert_at(token, i % (n + 1), &c.to_string()),
    }
}

const ALGS: [(SigningAlg, u32); 3] = [
    (SigningAlg::EdDSA, 3000),
    (SigningAlg::ES256, 1500),
    (SigningAlg::RS256, 1000),
];

#[test]
fn signed_tokens_verify_to_their_claims_and_any_edit_is_refused() {
    for (alg, cases) in ALGS {
        let (_dir, ring) = keyring(alg);
        run(cases / 4, claims(), |claims| {
            let token = ring.sign(&(&claims).into()).expect("signed");
            prop_assert_eq!(ring.verify(&token, ISSUER), Some(claims.clone()));
            prop_assert_eq!(ring.verify(&token, "https://other.example"), None);
            Ok(())
        });
        let fixed = claims()
            .new_tree(&mut TestRunner::new(config(1)))
            .expect("claims")
            .current();
        let token = ring.sign(&(&fixed).into()).expect("signed");
        run(cases, edit(), |edit| {
            let edited = apply(&token, &edit);
            prop_assume!(edited != token);
            prop_assert_eq!(
                ring.verify(&edited, ISSUER),
                None,
                "{:?} of {} verified: {}",
                alg,
                token,
                edited
            );
            Ok(())
        });
    }
}

#[test]
fn foreign_signatures_and_swapped_parts_are_refused() {
    let (_d1, ring) = keyring(SigningAlg::EdDSA);
    let (_d2, other) = keyring(SigningAlg::EdDSA);
    run(1000, (claims(), claims()), |(a, b)| {
        let (ta, tb) = (
            ring.sign(&(&a).into()).expect("a"),
            ring.sign(&(&b).into()).expect("b"),
        );
        let foreign = other.sign(&(&a).into()).expect("foreign");
        prop_assert_eq!(ring.verify(&foreign, ISSUER), None);
        let parts = |t: &str| t.split('.').map(str::to_owned).collect::<Vec<_>>();
        let (pa, pb) = (parts(&ta), parts(&tb));
        let mixed = [
            format!("{}.{}.{}", pa[0], pb[1], pa[2]),
            format!("{}.{}.{}", pb[0], pa[1], pb[2]),
            format!("{}.{}", pa[0], pa[1]),
            format!("{}.{}.", pa[0], pa[1]),
            format!("{}.{}.{}.{}", pa[0], pa[1], pa[2], pa[2]),
        ];
        for m in mixed {
            if m != ta && m != tb {
                prop_assert_eq!(ring.verify(&m, ISSUER), None, "{} verified", m);
            }
        }
        Ok(())
    });
}

/// Random text, and tokens with a random header (any `alg`, `none` included, any `kid`) and random
/// payload and signature: never a panic, never verified.
#[test]
fn random_tokens_are_refused() {
    let (_dir, ring) = keyring(SigningAlg::ES256);
    let b64 = |s: &[u8]| URL_SAFE_NO_PAD.encode(s);
    let header = (
        prop::sample::select(
            &[
                "none", "HS256", "ES256", "EdDSA", "RS256", "PS256", "nOnE", "",
            ][..],
        ),
        prop::option::of(prop_oneof![Just("at+jwt".to_owned()), any::<String>()]),
        prop::option::of(any::<String>()),
    )
        .prop_map(|(alg, typ, kid)| {
            serde_json::json!({"alg": alg, "typ": typ, "kid": kid}).to_string()
        });
    let token = prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_.=-]{0,200}",
        (header, claims(), prop::collection::vec(any::<u8>(), 0..80)).prop_map(
            move |(h, c, sig)| {
                let payload = serde_json::to_vec(&c).expect("json");
                format!("{}.{}.{}", b64(h.as_bytes()), b64(&payload), b64(&sig))
            }
        ),
    ];
    run(4000, token, |token| {
        prop_assert_eq!(ring.verify(&token, ISSUER), None, "{} verified", token);
        Ok(())
    });
}
