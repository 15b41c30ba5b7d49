//! Prometheus metrics: requests by route and status, a latency histogram, the database pool's state,
//! what operators graph about the features (tokens issued and refused, key verifications by result,
//! sign-ins, rate-limit refusals, cache hits and misses, background-queue lengths), and the standard
//! `process_*` series (Linux).
//!
//! Every label value is a `&'static str` chosen by the code (a grant, an error code, a limiter, a
//! cache): nothing a request sends becomes a label as it is, so the number of series is bounded by the
//! program text (an unknown `grant_type` is `other`, a client is `confidential` or `public`, never its id).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use rustc_hash::FxHashMap;

use crate::db::Pool;

/// A counter handed to a feature that counts on its hot path (an atomic add, no label lookup).
pub type Counter = IntCounter;

/// A counter registered nowhere: what a cache or limiter built without [`Metrics`] counts into.
pub fn detached() -> Counter {
    IntCounter::new("detached", "Counted nowhere.").expect("static metric options are valid")
}

/// The grants of the token endpoint, as labels (`other`: a `grant_type` Tessera does not support;
/// `none`: the request had none, or was refused before it was read).
pub const GRANTS: [&str; 6] = [
    "authorization_code",
    "client_credentials",
    "refresh_token",
    "jwt_bearer",
    "other",
    "none",
];

/// Where a key or token was verified: `POST /v1/keys/verify` or forward-auth `/v1/auth/check`.
pub const VIAS: [&str; 2] = ["verify", "forward_auth"];

/// The result codes of a verification, created at zero so that a rate is defined from the start.
pub const VERIFY_CODES: [&str; 8] = [
    "valid",
    "invalid_api_key",
    "missing_api_key",
    "expired_api_key",
    "revoked_api_key",
    "disabled_api_key",
    "insufficient_permissions",
    "rate_limited",
];

/// Why a sign-in failed.
/// The outcomes `userinfo_requests_total` counts by (`requested` counts every request).
pub const USERINFO_OUTCOMES: [&str; 4] = ["requested", "ok", "invalid_token", "insufficient_scope"];

pub const SIGN_IN_FAILURES: [&str; 6] = [
    "wrong_password",
    "unknown_account",
    "disabled_account",
    "throttled",
    "busy",
    "csrf_failed",
];

/// The RFC 6749 errors of the token endpoint (others, such as `rate_limited`, appear when they occur).
const TOKEN_ERRORS: [&str; 6] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
];

/// The background queues whose length is sampled at each scrape.
pub const QUEUES: [&str; 3] = ["usage_flush", "cache_invalidation", "password_hashing"];

/// The per-node caches.
pub const CACHES: [&str; 5] = ["keys", "tokens", "clients", "apis", "jwks"];

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("static metric options are valid")
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric options are valid")
}

/// One registry per running app (tests run many apps in one process; nothing is global).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// The `process_*` collector, apart: the registry's `tessera_` prefix must not rename them.
    process: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    pool_connections: IntGaugeVec,
    pool_max: IntGauge,
    purged_rows: IntCounterVec,
    api_key_lookups: IntCounter,
    api_key_cache_hits: IntCounter,
    tokens_issued: IntCounterVec,
    /// `tokens_issued` of the four issuing grants ([`GRANTS`]), confidential then public clients:
    /// no label lookup per token.
    issued: Vec<IntCounter>,
    token_failures: IntCounterVec,
    key_verifications: IntCounterVec,
    /// `key_verifications` of every (`VIAS`, `VERIFY_CODES`) pair, in that order: no label lookup on
    /// the forward-auth and verify paths.
    verified: Vec<IntCounter>,
    /// Which registry this is, for the per-thread series of [`Metrics::observe`].
    id: u64,
    sign_ins: IntCounter,
    sign_in_failures: IntCounterVec,
    userinfo: IntCounterVec,
    rate_limited: IntCounterVec,
    cache_hits: IntCounterVec,
    cache_misses: IntCounterVec,
    cache_entries: IntGaugeVec,
    queue_length: IntGaugeVec,
    invalidation_up: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("tessera".into()), None)
            .expect("static registry options are valid");
        let requests = counter_vec(
            "http_requests_total",
            "HTTP requests by method, route and status.",
            &["method", "route", "status"],
        );
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method and route.",
            )
            .buckets(vec![
                0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["method", "route"],
        )
        .expect("static metric options are valid");
        let pool_connections = gauge_vec(
            "db_pool_connections",
            "Database pool connections by state.",
            &["state"],
        );
        let pool_max = IntGauge::new("db_pool_max_connections", "Database pool size limit.")
            .expect("static metric options are valid");
        let purged_rows = counter_vec(
            "purged_rows_total",
            "Expired rows deleted by the janitor, by table.",
            &["table"],
        );
        let api_key_lookups = IntCounter::new(
            "api_key_lookups_total",
            "Well-formed API keys looked up, in the per-node cache or the database (malformed keys are \
             refused before any lookup).",
        )
        .expect("static metric options are valid");
        let api_key_cache_hits = IntCounter::new(
            "api_key_cache_hits_total",
            "API-key lookups answered by the per-node cache without a database query.",
        )
        .expect("static metric options are valid");
        let tokens_issued = counter_vec(
            "tokens_issued_total",
            "Access tokens issued at /oauth/token, by grant and client type (confidential or public).",
            &["grant", "client_type"],
        );
        let token_failures = counter_vec(
            "token_failures_total",
            "Refused token requests at /oauth/token, by grant and error code.",
            &["grant", "error"],
        );
        let key_verifications = counter_vec(
            "key_verifications_total",
            "API keys and access tokens verified, by endpoint (verify, forward_auth) and result code \
             (/v1/keys/verify answers 200 whatever the result).",
            &["via", "code"],
        );
        let sign_ins = IntCounter::new("sign_ins_total", "Successful sign-ins at /login.")
            .expect("static metric options are valid");
        let sign_in_failures = counter_vec(
            "sign_in_failures_total",
            "Failed sign-ins at /login, by reason.",
            &["reason"],
        );
        let userinfo = counter_vec(
            "userinfo_requests_total",
            "Requests to /oauth/userinfo, by outcome (`requested` counts them all).",
            &["outcome"],
        );
        let rate_limited = counter_vec(
            "rate_limited_total",
            "Requests refused by a rate limit, by limiter.",
            &["limiter"],
        );
        let cache_hits = counter_vec(
            "cache_hits_total",
            "Lookups answered by a per-node cache, by cache.",
            &["cache"],
        );
        let cache_misses = counter_vec(
            "cache_misses_total",
            "Lookups a per-node cache could not answer (the database or the network was asked), by cache.",
            &["cache"],
        );
        let cache_entries = gauge_vec(
            "cache_entries",
            "Entries held by a per-node cache, by cache.",
            &["cache"],
        );
        let queue_length = gauge_vec(
            "queue_length",
            "Items waiting in a background queue: API-key and client usage not yet written \
             (usage_flush), cache drops not yet sent to the other nodes (cache_invalidation), password \
             hashes running or waiting (password_hashing).",
            &["queue"],
        );
        let invalidation_up = IntGauge::new(
            "invalidation_listener_up",
            "1 while this node's cache invalidation listener is connected to PostgreSQL (always 0 on \
             SQLite, which has no listener).",
        )
        .expect("static metric options are valid");
        // The janitor's tables are named by the janitor (`Metrics::name_purged_tables`).
        let mut issued = Vec::with_capacity(8);
        for grant in &GRANTS[..4] {
            for client_type in ["confidential", "public"] {
                issued.push(tokens_issued.with_label_values(&[grant, client_type]));
            }
        }
        for error in TOKEN_ERRORS {
            token_failures.with_label_values(&["none", error]);
        }
        let mut verified = Vec::with_capacity(VIAS.len() * VERIFY_CODES.len());
        for via in VIAS {
            for code in VERIFY_CODES {
                verified.push(key_verifications.with_label_values(&[via, code]));
            }
        }
        for reason in SIGN_IN_FAILURES {
            sign_in_failures.with_label_values(&[reason]);
        }
        for outcome in USERINFO_OUTCOMES {
            userinfo.with_label_values(&[outcome]);
        }
        // Each limiter's series is made by `RateLimits::counted_in` (the limiters are theirs to name).
        for cache in CACHES {
            cache_hits.with_label_values(&[cache]);
            cache_misses.with_label_values(&[cache]);
            cache_entries.with_label_values(&[cache]);
        }
        for queue in QUEUES {
            queue_length.with_label_values(&[queue]);
        }
        for c in [
            Box::new(purged_rows.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(api_key_lookups.clone()),
            Box::new(api_key_cache_hits.clone()),
            Box::new(requests.clone()),
            Box::new(duration.clone()),
            Box::new(pool_connections.clone()),
            Box::new(pool_max.clone()),
            Box::new(tokens_issued.clone()),
            Box::new(token_failures.clone()),
            Box::new(key_verifications.clone()),
            Box::new(sign_ins.clone()),
            Box::new(sign_in_failures.clone()),
            Box::new(userinfo.clone()),
            Box::new(rate_limited.clone()),
            Box::new(cache_hits.clone()),
            Box::new(cache_misses.clone()),
            Box::new(cache_entries.clone()),
            Box::new(queue_length.clone()),
            Box::new(invalidation_up.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Self {
            registry,
            process: process_registry(),
            requests,
            duration,
            pool_connections,
            pool_max,
            purged_rows,
            api_key_lookups,
            api_key_cache_hits,
            tokens_issued,
            issued,
            token_failures,
            key_verifications,
            verified,
            id: NEXT_REGISTRY.fetch_add(1, Ordering::Relaxed),
            sign_ins,
            sign_in_failures,
            userinfo,
            rate_limited,
            cache_hits,
            cache_misses,
            cache_entries,
            queue_length,
            invalidation_up,
        }
    }

    /// Counts an access token issued under `grant` (one of [`GRANTS`]) to a public or confidential client.
    pub fn token_issued(&self, grant: &'static str, public: bool) {
        match GRANTS[..4].iter().position(|g| *g == grant) {
            Some(i) => self.issued[i * 2 + usize::from(public)].inc(),
            None => self.other_token_issued(grant, public),
        }
    }

    /// [`Metrics::token_issued`] for a grant without a counter of its own: the labelled series, found
    /// by its labels (out of line: the issuing paths carry only the array index).
    #[cold]
    #[inline(never)]
    fn other_token_issued(&self, grant: &'static str, public: bool) {
        let client_type = if public { "public" } else { "confidential" };
        self.tokens_issued
            .with_label_values(&[grant, client_type])
            .inc();
    }

    /// Counts a refused token request: its grant (one of [`GRANTS`]) and error code.
    pub fn token_failed(&self, grant: &'static str, error: &'static str) {
        self.token_failures.with_label_values(&[grant, error]).inc();
    }

    /// Counts a verification at `via` (one of [`VIAS`]) that answered `code`.
    pub fn key_verified(&self, via: &'static str, code: &'static str) {
        let at = |all: &[&str], x: &str| all.iter().position(|a| *a == x);
        match (at(&VIAS, via), at(&VERIFY_CODES, code)) {
            (Some(i), Some(j)) => self.verified[i * VERIFY_CODES.len() + j].inc(),
            _ => self.other_key_verified(via, code),
        }
    }

    /// [`Metrics::key_verified`] for a pair without a counter of its own.
    #[cold]
    #[inline(never)]
    fn other_key_verified(&self, via: &'static str, code: &'static str) {
        self.key_verifications.with_label_values(&[via, code]).inc();
    }

    /// Counts a successful sign-in.
    pub fn signed_in(&self) {
        self.sign_ins.inc();
    }

    /// Counts a failed sign-in (`reason`: one of [`SIGN_IN_FAILURES`]).
    pub fn sign_in_failed(&self, reason: &'static str) {
        self.sign_in_failures.with_label_values(&[reason]).inc();
    }

    /// Counts a UserInfo request's outcome (one of [`USERINFO_OUTCOMES`]).
    pub fn userinfo(&self, outcome: &'static str) {
        self.userinfo.with_label_values(&[outcome]).inc();
    }

    /// The refusal counter of the rate limiter `limiter` (the rate limits name theirs).
    pub fn rate_limit_counter(&self, limiter: &'static str) -> Counter {
        self.rate_limited.with_label_values(&[limiter])
    }

    /// The hit and miss counters of the cache `cache` (one of [`CACHES`]).
    pub fn cache_counters(&self, cache: &'static str) -> CacheCounters {
        CacheCounters {
            hits: self.cache_hits.with_label_values(&[cache]),
            misses: self.cache_misses.with_label_values(&[cache]),
        }
    }

    /// Sets the entries a cache holds now (sampled at each scrape).
    pub fn set_cache_entries(&self, cache: &'static str, entries: usize) {
        self.cache_entries
            .with_label_values(&[cache])
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// Sets whether the cache invalidation listener is connected (sampled at each scrape).
    pub fn set_invalidation_up(&self, up: bool) {
        self.invalidation_up.set(i64::from(up));
    }

    /// Sets the length of the background queue `queue` (one of [`QUEUES`]; sampled at each scrape).
    pub fn set_queue_length(&self, queue: &'static str, length: usize) {
        self.queue_length
            .with_label_values(&[queue])
            .set(i64::try_from(length).unwrap_or(i64::MAX));
    }

    /// Counts one lookup of a well-formed API key.
    pub fn api_key_lookup(&self) {
        self.api_key_lookups.inc();
    }

    /// Counts one API-key lookup answered by the per-node cache.
    pub fn api_key_cache_hit(&self) {
        self.api_key_cache_hits.inc();
    }

    /// Makes the purge counter of each of `tables` (at 0), so every table has a series from the start.
    pub fn name_purged_tables(&self, tables: impl IntoIterator<Item = &'static str>) {
        for table in tables {
            self.purged_rows.with_label_values(&[table]);
        }
    }

    /// Counts rows the janitor deleted from `table`.
    pub fn purged(&self, table: &str, rows: usize) {
        self.purged_rows
            .with_label_values(&[table])
            .inc_by(rows as u64);
    }

    /// Records one finished request. `route` is the matched pattern, never the raw path, and `method`
    /// is labelled by [`method_label`] (bounded labels).
    ///
    /// Each worker thread keeps the series it has used (a label lookup hashes every label and takes
    /// the vector's lock): they are as many as the registry's own, bounded by the routes, the method
    /// labels and the statuses the app answers.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        SERIES.with_borrow_mut(|series| {
            if series.registry != Some(self.id) {
                *series = Series {
                    registry: Some(self.id),
                    by_route: FxHashMap::default(),
                };
            }
            let record = |s: &RouteSeries| {
                s.requests.inc();
                s.duration.observe(seconds);
            };
            if let Some(s) = series.by_route.get(route).and_then(|of_route| {
                of_route
                    .iter()
                    .find(|s| s.status == status && s.method == method)
            }) {
                return record(s);
            }
            record(self.new_series(series, method, route, status));
        });
    }

    /// The series of a method, route and status this thread has not answered before, found in the
    /// registry by its labels and kept (out of line: once per series and thread).
    #[cold]
    #[inline(never)]
    fn new_series<'a>(
        &self,
        series: &'a mut Series,
        method: &'static str,
        route: &str,
        status: u16,
    ) -> &'a RouteSeries {
        let of_route = series.by_route.entry(route.into()).or_default();
        of_route.push(RouteSeries {
            method,
            status,
            requests: self.requests.with_label_values(&[
                method,
                route,
                status.to_string().as_str(),
            ]),
            duration: self.duration.with_label_values(&[method, route]),
        });
        &of_route[of_route.len() - 1]
    }

    /// The Prometheus text exposition of every metric, with the pool's state read now.
    pub fn render(&self, pool: &Pool) -> String {
        let state = pool.state();
        let idle = i64::from(state.idle_connections);
        self.pool_connections.with_label_values(&["idle"]).set(idle);
        self.pool_connections
            .with_label_values(&["active"])
            .set(i64::from(state.connections) - idle);
        self.pool_max.set(i64::from(pool.max_size()));
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&families, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Numbers the registries of a process (tests run many apps in one).
static NEXT_REGISTRY: AtomicU64 = AtomicU64::new(0);

/// A method and status of one route, and its series.
struct RouteSeries {
    method: &'static str,
    status: u16,
    requests: IntCounter,
    duration: Histogram,
}

/// The request series a worker thread has used, for one registry.
#[derive(Default)]
struct Series {
    registry: Option<u64>,
    /// FxHash: the routes are the app's patterns (and `unmatched`), not what a request sends.
    by_route: FxHashMap<Box<str>, Vec<RouteSeries>>,
}

thread_local! {
    static SERIES: RefCell<Series> = RefCell::default();
}

/// The `method` label: a standard method as it is, any other `other`. HTTP lets a client send any token
/// as a method, and each distinct label value is a series (a counter and a histogram) kept for the
/// process's life: labelled as they came, random methods grew memory and `/metrics` without bound.
pub fn method_label(method: &str) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
    ];
    STANDARD
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or("other")
}

/// The hits and misses of one cache (hot path: an atomic add each).
#[derive(Debug, Clone)]
pub struct CacheCounters {
    hits: Counter,
    misses: Counter,
}

impl CacheCounters {
    /// Counters registered nowhere, for a cache built without [`Metrics`].
    pub fn detached() -> Self {
        Self {
            hits: detached(),
            misses: detached(),
        }
    }

    pub fn hit(&self) {
        self.hits.inc();
    }

    pub fn miss(&self) {
        self.misses.inc();
    }
}

impl Default for CacheCounters {
    fn default() -> Self {
        Self::detached()
    }
}

/// The registry of the standard `process_*` series (CPU seconds, resident and virtual memory, open and
/// maximum file descriptors, threads, start time), read from `/proc` at each scrape. Empty off Linux.
fn process_registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("a fresh registry");
    registry
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(m: &Metrics, method: &str, route: &str, status: &str) -> u64 {
        m.requests.with_label_values(&[method, route, status]).get()
    }

    #[test]
    fn each_registry_counts_its_own_requests_on_a_shared_thread() {
        let (a, b) = (Metrics::new(), Metrics::new());
        for _ in 0..3 {
            a.observe("GET", "/healthz", 200, 0.001);
            b.observe("GET", "/healthz", 200, 0.001);
            a.observe("POST", "/oauth/token", 400, 0.002);
        }
        b.observe("BREW", "/healthz", 200, 0.001);
        a.observe("GET", "/healthz", 503, 0.001);
        assert_eq!(requests(&a, "GET", "/healthz", "200"), 3);
        assert_eq!(requests(&a, "POST", "/oauth/token", "400"), 3);
        assert_eq!(requests(&a, "GET", "/healthz", "503"), 1);
        assert_eq!(requests(&b, "GET", "/healthz", "200"), 3);
        assert_eq!(requests(&b, "other", "/healthz", "200"), 1);
        assert_eq!(requests(&b, "POST", "/oauth/token", "400"), 0);
        let count = a
            .duration
            .with_label_values(&["GET", "/healthz"])
            .get_sample_count();
        assert_eq!(count, 4);
    }

    #[test]
    fn verifications_count_under_their_labels() {
        let m = Metrics::new();
        m.key_verified("forward_auth", "valid");
        m.key_verified("forward_auth", "valid");
        m.key_verified("verify", "rate_limited");
        m.key_verified("verify", "something_new");
        let get = |via: &str, code: &str| m.key_verifications.with_label_values(&[via, code]).get();
        assert_eq!(get("forward_auth", "valid"), 2);
        assert_eq!(get("verify", "rate_limited"), 1);
        assert_eq!(get("verify", "something_new"), 1);
        assert_eq!(get("verify", "valid"), 0);
    }
}
