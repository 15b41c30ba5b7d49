//! Property-based tests of the parsers an attacker reaches (issue 12, "fuzzing in the suite"): API keys,
//! redirect URIs, scope strings, Basic credentials, form bodies, access-token JWTs and client JWKs.
//! Each property runs thousands of generated cases from one fixed seed, so a failure reproduces on
//! every run and machine, and asserts more than "no panic": invalid inputs are refused, valid ones
//! round-trip exactly.

mod api_keys;
mod basic;
mod forms;
#[path = "../api/helpers/mod.rs"]
#[expect(
    dead_code,
    unused_imports,
    reason = "the API suite's helpers: this binary uses a few"
)]
mod helpers;
mod http;
mod jwks;
mod jwts;
mod redirect_uris;
mod regressions;
mod scopes;

use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

/// The seed of every property (ChaCha): the same cases on every run.
pub const SEED: u64 = 0x7e55_e7a0_0012;

/// `cases` cases from [`SEED`]; a failure is reported (with its shrunk input), never written to disk.
/// `TESSERA_FUZZ_SCALE=N` runs N times as many (same seed, so the usual cases come first), for a
/// longer hunt on a developer's machine.
pub fn config(cases: u32) -> Config {
    let scale = std::env::var("TESSERA_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let cases = cases.saturating_mul(scale);
    Config {
        cases,
        max_global_rejects: (cases / 4).max(1024),
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(SEED),
        ..Config::default()
    }
}

/// `s` with the character at char index `at` replaced by `with`.
pub fn replace_char(s: &str, at: usize, with: char) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| if i == at { with } else { c })
        .collect()
}

/// `s` with `what` inserted before the character at char index `at` (at the end when `at` is past it).
pub fn insert_at(s: &str, at: usize, what: &str) -> String {
    let at = s.char_indices().nth(at).map_or(s.len(), |(i, _)| i);
    format!("{}{what}{}", &s[..at], &s[at..])
}
