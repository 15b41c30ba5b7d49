//! Rate limits: GCRA per key, in process (governor) or shared by every node in Redis
//! (`TESSERA_REDIS_URL`). When Redis fails, `TESSERA_REDIS_FAILURE_POLICY` decides: `local` (the
//! default: the in-process limiter, logged), `allow` or `deny`; a request never waits on Redis:
//! after a failure a circuit breaker skips Redis for a short backoff.
//!
//! Failed sign-ins and failed client authentications are counted apart, per IP and per account,
//! with growing delays ([`failures`]); successes never count there.

pub mod failures;
pub mod redis;

use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use governor::clock::{Clock as _, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter};

use crate::config::ConfigError;

type Keyed = RateLimiter<
    LimitKey,
    governor::state::keyed::DashMapStateStore<LimitKey, foldhash::fast::RandomState>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// How long a key may be and still be kept inline.
const INLINE: usize = 62;

/// A limiter's key: the bytes of a key id, an IP address or `at:{client}:{subject}`, kept inline up to
/// [`INLINE`] bytes (all of Tessera's), on the heap beyond, so that counting a request allocates
/// nothing. A given key is always the same variant (chosen by its length), so the derived `Eq` and
/// `Hash` are the key's. The map hashes with foldhash under a per-process random seed: keys are
/// chosen by callers (IP addresses), so no fixed-seed hash.
#[derive(Clone, PartialEq, Eq, Hash)]
enum LimitKey {
    Inline(u8, [u8; INLINE]),
    Heap(Box<str>),
}

impl LimitKey {
    /// A network's key: a first byte that no UTF-8 text starts with, so that it differs from every
    /// text key, then the address bytes.
    fn network(network: Network) -> Self {
        let mut inline = [0u8; INLINE];
        inline[0] = 0xff;
        let len = match network {
            Network::V4(octets) => {
                inline[1..5].copy_from_slice(&octets);
                5
            }
            Network::V6(prefix) => {
                inline[1..9].copy_from_slice(&prefix);
                9
            }
            Network::Unknown => 1,
        };
        LimitKey::Inline(len, inline)
    }

    fn of(key: &str) -> Self {
        let bytes = key.as_bytes();
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= INLINE => {
                let mut inline = [0u8; INLINE];
                inline[..bytes.len()].copy_from_slice(bytes);
                LimitKey::Inline(len, inline)
            }
            _ => LimitKey::Heap(key.into()),
        }
    }
}

/// What a per-IP limit counts: an IPv4 address (an IPv4-mapped IPv6 address as IPv4), the /64 of an
/// IPv6 address (one host usually has a whole /64: counting single addresses would give it 2^64
/// budgets), or no known address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    V4([u8; 4]),
    /// The first 64 bits.
    V6([u8; 8]),
    Unknown,
}

impl Network {
    pub fn of(ip: Option<std::net::IpAddr>) -> Self {
        match ip {
            Some(std::net::IpAddr::V4(v4)) => Self::V4(v4.octets()),
            Some(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4.octets()),
                None => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    Self::V6(prefix)
                }
            },
            None => Self::Unknown,
        }
    }
}

/// `192.0.2.1`, `2001:db8:1:2::/64` or `unknown`: the key of the network's failures and of its
/// limits in Redis.
impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::V4(o) => write!(f, "{}.{}.{}.{}", o[0], o[1], o[2], o[3]),
            Self::V6(p) => {
                let s = |i: usize| u16::from_be_bytes([p[2 * i], p[2 * i + 1]]);
                write!(f, "{:x}:{:x}:{:x}:{:x}::/64", s(0), s(1), s(2), s(3))
            }
            Self::Unknown => f.write_str("unknown"),
        }
    }
}

/// What a limit counts: a text key (a key id, a client id), or a network.
#[derive(Debug, Clone, Copy)]
enum Subject<'a> {
    Text(&'a str),
    Network(Network),
}

impl Subject<'_> {
    fn local(self) -> LimitKey {
        match self {
            Self::Text(key) => LimitKey::of(key),
            Self::Network(network) => LimitKey::network(network),
        }
    }
}

impl std::fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(key) => f.write_str(key),
            Self::Network(network) => network.fmt(f),
        }
    }
}

/// The answer for one request: allowed or not, and what the `RateLimit-*` headers should say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until a request is allowed again (0 when allowed now).
    pub retry_after: u64,
    /// Unix time (seconds) at which the full limit is available again.
    pub reset: i64,
}

/// A request counted ([`RateLimits::check`]): decided already by the node's own limiter, or to be
/// decided by the shared one.
pub type Counted<'a> = crate::cache::NowOrLater<'a, Decision>;

/// `limit` requests per `period` per key, as a burst of `limit` refilled evenly over the period
/// (GCRA: no burst at a window edge).
pub struct Limiter {
    limit: u32,
    period: Duration,
    inner: Keyed,
    clock: DefaultClock,
}

impl Decision {
    /// The 429 for a refused request, with its `Retry-After` and `X-RateLimit-*` headers.
    pub fn refused(&self) -> crate::error::AppError {
        crate::error::AppError::RateLimited {
            retry_after: self.retry_after,
            limit: self.limit,
            reset: self.reset,
        }
    }

    /// The `X-RateLimit-*` headers of a limited response. The three numbers are written into one
    /// buffer that the three values share (one allocation, not one per header: this runs on every
    /// limited request).
    pub fn headers(&self) -> [(HeaderName, HeaderValue); 3] {
        let mut digits = itoa::Buffer::new();
        let mut text = actix_web::web::BytesMut::with_capacity(40);
        text.extend_from_slice(digits.format(self.limit).as_bytes());
        let limit_end = text.len();
        text.extend_from_slice(digits.format(self.remaining).as_bytes());
        let remaining_end = text.len();
        text.extend_from_slice(digits.format(self.reset).as_bytes());
        let text = text.freeze();
        [
            (LIMIT, digits_value(&text, 0..limit_end, self.limit.into())),
            (
                REMAINING,
                digits_value(&text, limit_end..remaining_end, self.remaining.into()),
            ),
            (
                RESET,
                digits_value(&text, remaining_end..text.len(), self.reset),
            ),
        ]
    }
}

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The header value of `n`, whose digits are at `range` in `text`, sharing its buffer. One copy of
/// the check for the three headers: every limited response runs it, and code inlined three times
/// takes three times the instruction-cache lines.
#[inline(never)]
fn digits_value(
    text: &actix_web::web::Bytes,
    range: std::ops::Range<usize>,
    n: i64,
) -> HeaderValue {
    HeaderValue::from_maybe_shared(text.slice(range)).unwrap_or_else(|_| number(n))
}

/// Digits are always a header value: this only keeps [`digits_value`] free of a panic.
#[cold]
fn number(n: i64) -> HeaderValue {
    HeaderValue::from(n)
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    pub fn per_minute(limit: u32) -> Self {
        Self::new(limit, Duration::from_secs(60))
    }

    pub fn new(limit: u32, period: Duration) -> Self {
        let n = NonZeroU32::new(limit.max(1)).unwrap_or(NonZeroU32::MIN);
        let period = period.max(Duration::from_millis(1));
        let quota = Quota::with_period(period / n.get())
            .unwrap_or_else(|| Quota::per_second(n))
            .allow_burst(n);
        let clock = DefaultClock::default();
        let inner = RateLimiter::dashmap_with_clock_and_hasher(
            quota,
            clock.clone(),
            foldhash::fast::RandomState::default(),
        )
        .with_middleware::<StateInformationMiddleware>();
        Self {
            limit: n.get(),
            period,
            inner,
            clock,
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    fn reset_in(&self, used: u32) -> u64 {
        let per = self.period.as_secs_f64() / f64::from(self.limit);
        (per * f64::from(used)).ceil() as u64
    }

    /// Counts one request for `key`.
    pub fn check(&self, key: &str) -> Decision {
        self.check_key(&LimitKey::of(key))
    }

    fn check_key(&self, key: &LimitKey) -> Decision {
        match self.inner.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    limit: self.limit,
                    remaining,
                    retry_after: 0,
                    reset: crate::db::now() + self.reset_in(self.limit - remaining) as i64,
                }
            }
            Err(not_until) => {
                let wait: Duration = not_until.wait_time_from(self.clock.now());
                Decision {
                    allowed: false,
                    limit: self.limit,
                    remaining: 0,
                    retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
                    reset: crate::db::now() + self.reset_in(self.limit) as i64,
                }
            }
        }
    }

    /// Forgets keys whose bucket is full again (called by the janitor so memory stays bounded).
    pub fn forget_idle(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}

/// Limiters with the same period and different limits (a per-key override gets its own bucket set).
/// The default limit's limiter is a field of its own: most requests use it, and reaching it takes
/// no lock (a read lock is a write to a cache line that every worker thread shares).
pub struct LimiterSet {
    default_limit: u32,
    period: Duration,
    default: Limiter,
    by_limit: std::sync::RwLock<std::collections::HashMap<u32, std::sync::Arc<Limiter>>>,
}

impl std::fmt::Debug for LimiterSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimiterSet")
            .field("default_limit", &self.default_limit)
            .finish_non_exhaustive()
    }
}

impl LimiterSet {
    pub fn new(default_limit: u32, period: Duration) -> Self {
        let default_limit = default_limit.max(1);
        Self {
            default_limit,
            period,
            default: Limiter::new(default_limit, period),
            by_limit: Default::default(),
        }
    }

    /// Counts one request for `key` under `limit` (the default when `None`).
    pub fn check(&self, key: &str, limit: Option<u32>) -> Decision {
        self.check_key(&LimitKey::of(key), limit)
    }

    fn check_key(&self, key: &LimitKey, limit: Option<u32>) -> Decision {
        let limit = limit.unwrap_or(self.default_limit).max(1);
        if limit == self.default_limit {
            return self.default.check_key(key);
        }
        self.check_override(key, limit)
    }

    /// A key with a limit of its own: its limiter is made on first use and shared after.
    #[cold]
    fn check_override(&self, key: &LimitKey, limit: u32) -> Decision {
        if let Ok(m) = self.by_limit.read()
            && let Some(l) = m.get(&limit)
        {
            return l.check_key(key);
        }
        let Ok(mut m) = self.by_limit.write() else {
            return Limiter::new(limit, self.period).check_key(key);
        };
        m.entry(limit)
            .or_insert_with(|| std::sync::Arc::new(Limiter::new(limit, self.period)))
            .check_key(key)
    }

    /// Forgets idle keys in every limiter.
    pub fn forget_idle(&self) {
        self.default.forget_idle();
        if let Ok(m) = self.by_limit.read() {
            for l in m.values() {
                l.forget_idle();
            }
        }
    }
}

/// Adds the `X-RateLimit-*` headers of `decision` to a response.
pub fn with_headers(
    mut res: actix_web::HttpResponse,
    decision: &Decision,
) -> actix_web::HttpResponse {
    for (name, value) in decision.headers() {
        res.headers_mut().insert(name, value);
    }
    res
}

/// What a limit protects; each bucket has its own counters and default limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Per API key (verification, forward-auth).
    ApiKey,
    /// Per IP at `/v1/keys/verify`.
    Ip,
    /// Per authenticated client at the token endpoint.
    Token,
    /// Per caller at introspection.
    Introspection,
}

/// Every limiter, as the `limiter` label of refusals: the request buckets ([`Bucket`]), then the
/// failed-attempt limits ([`failures::Failure`]).
pub const LIMITERS: [&str; 7] = [
    "api_key",
    "verify_ip",
    "token",
    "introspection",
    "sign_in_ip",
    "sign_in_account",
    "client_auth_ip",
];

impl Bucket {
    /// The `limiter` label of this bucket's refusals (one of [`LIMITERS`]).
    pub fn label(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Ip => "verify_ip",
            Self::Token => "token",
            Self::Introspection => "introspection",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::ApiKey => "key",
            Self::Ip => "ip",
            Self::Token => "token",
            Self::Introspection => "introspect",
        }
    }
}

/// What to do while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Limit with this node's own counters (and log it).
    Local,
    /// Let requests through unlimited.
    Allow,
    /// Refuse with 429.
    Deny,
}

impl FailurePolicy {
    pub const ALL: [FailurePolicy; 3] = [Self::Local, Self::Allow, Self::Deny];

    /// Its name in `TESSERA_REDIS_FAILURE_POLICY`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }

    /// The policy the setting names (checked at load: one of `config::FAILURE_POLICIES`).
    pub fn from_setting(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == value)
    }
}

/// Every limit of a node: per bucket, in process or in Redis.
#[derive(Debug)]
pub struct RateLimits {
    local: [LimiterSet; 4],
    periods: [Duration; 4],
    redis: Option<redis::RedisLimiter>,
    policy: FailurePolicy,
    warned: std::sync::atomic::AtomicI64,
    failures: failures::LocalFailures,
    /// Failed sign-ins or client authentications per IP per 15 minutes (`TESSERA_AUTH_RATE_LIMIT`).
    per_ip_failures: u32,
    /// Refusals per limiter, in the order of [`LIMITERS`] ([`RateLimits::counted_in`]).
    refused: [crate::metrics::Counter; 7],
}

const BUCKETS: [Bucket; 4] = [
    Bucket::ApiKey,
    Bucket::Ip,
    Bucket::Token,
    Bucket::Introspection,
];

impl RateLimits {
    /// The limits of `settings`; a Redis URL the client refuses is an error naming the setting.
    pub fn new(settings: &crate::config::Settings) -> Result<Self, ConfigError> {
        let quarter = Duration::from_secs(15 * 60);
        let minute = Duration::from_secs(60);
        let periods = [quarter, quarter, minute, minute];
        let defaults = [
            settings.api_key_rate_limit,
            settings.ip_rate_limit,
            settings.token_rate_limit,
            settings.introspection_rate_limit,
        ];
        let redis = settings
            .redis_url
            .as_ref()
            .map(|u| redis::RedisLimiter::new(u.as_str()))
            .transpose()
            .map_err(|e| ConfigError::new("TESSERA_REDIS_URL", e.to_string()))?;
        Ok(Self {
            local: [0, 1, 2, 3].map(|i| LimiterSet::new(defaults[i], periods[i])),
            periods,
            redis,
            policy: FailurePolicy::from_setting(&settings.redis_failure_policy).ok_or_else(
                || {
                    ConfigError::new(
                        "TESSERA_REDIS_FAILURE_POLICY",
                        format!(
                            "unknown policy '{}' (expected local, allow or deny)",
                            settings.redis_failure_policy
                        ),
                    )
                },
            )?,
            warned: std::sync::atomic::AtomicI64::new(0),
            failures: Default::default(),
            per_ip_failures: settings.auth_rate_limit,
            refused: LIMITERS.map(|_| crate::metrics::detached()),
        })
    }

    /// These limits, counting their refusals in `metrics` (`tessera_rate_limited_total`).
    pub fn counted_in(self, metrics: &crate::metrics::Metrics) -> Self {
        Self {
            refused: LIMITERS.map(|l| metrics.rate_limit_counter(l)),
            ..self
        }
    }

    fn count_refusal(&self, limiter: &'static str) {
        if let Some(i) = LIMITERS.iter().position(|l| *l == limiter) {
            self.refused[i].inc();
        }
    }

    /// Logs a Redis failure at most every 10 s (a breaker skip is not a new failure).
    fn redis_failed(&self, e: &redis::RedisError) {
        if *e == redis::RedisError::Skipped {
            return;
        }
        let now = crate::db::now();
        let last = self.warned.swap(now, std::sync::atomic::Ordering::Relaxed);
        if now - last >= 10 {
            tracing::warn!(error = %e, policy = ?self.policy, "Redis rate limiter unavailable");
        }
    }

    fn index(bucket: Bucket) -> usize {
        BUCKETS.iter().position(|b| *b == bucket).unwrap_or(0)
    }

    /// Counts one request for `key` in `bucket`, under `limit` or the bucket's default.
    pub fn check<'a>(&'a self, bucket: Bucket, key: &'a str, limit: Option<u32>) -> Counted<'a> {
        self.count(bucket, Subject::Text(key), limit)
    }

    /// Counts one request from `network` in `bucket`, under the bucket's default.
    pub fn check_network(&self, bucket: Bucket, network: Network) -> Counted<'_> {
        self.count(bucket, Subject::Network(network), None)
    }

    /// The node's own limiter decides at once; the shared one (Redis) in a boxed future of its own,
    /// so that a local count is not an async state machine inside every caller's future.
    fn count<'a>(&'a self, bucket: Bucket, key: Subject<'a>, limit: Option<u32>) -> Counted<'a> {
        match &self.redis {
            None => {
                let decision = self.local[Self::index(bucket)].check_key(&key.local(), limit);
                crate::cache::now(self.counted(bucket, decision))
            }
            Some(redis) => crate::cache::later(async move {
                let decision = self.shared(redis, bucket, key, limit).await;
                self.counted(bucket, decision)
            }),
        }
    }

    /// `decision`, its refusal counted.
    fn counted(&self, bucket: Bucket, decision: Decision) -> Decision {
        if !decision.allowed {
            self.count_refusal(bucket.label());
        }
        decision
    }

    /// The shared count in Redis, or the failure policy's answer when Redis fails.
    async fn shared(
        &self,
        redis: &redis::RedisLimiter,
        bucket: Bucket,
        key: Subject<'_>,
        limit: Option<u32>,
    ) -> Decision {
        let i = Self::index(bucket);
        let limit_n = limit.unwrap_or(self.local[i].default_limit).max(1);
        let shared_key = format!("{}:{limit_n}:{key}", bucket.name());
        match redis.check(&shared_key, limit_n, self.periods[i]).await {
            Ok(decision) => decision,
            Err(e) => {
                self.redis_failed(&e);
                let now = crate::db::now();
                match self.policy {
                    FailurePolicy::Local => self.local[i].check_key(&key.local(), limit),
                    FailurePolicy::Allow => Decision {
                        allowed: true,
                        limit: limit_n,
                        remaining: limit_n,
                        retry_after: 0,
                        reset: now,
                    },
                    FailurePolicy::Deny => Decision {
                        allowed: false,
                        limit: limit_n,
                        remaining: 0,
                        retry_after: 1,
                        reset: now + 1,
                    },
                }
            }
        }
    }

    /// Whether a key may have failures of `kind` counted: always with Redis (another node may have
    /// counted them), else when this node counts any. When not, [`Self::failure_gate`] lets every
    /// key through, so a caller can skip it and the making of its key.
    pub fn may_have_failures(&self, kind: failures::Failure) -> bool {
        self.redis.is_some() || self.failures.any(kind)
    }

    /// Refuses `key` (429 with `Retry-After`) while its failures of `kind` make it wait; checked
    /// before any password or secret is.
    pub async fn failure_gate(
        &self,
        kind: failures::Failure,
        key: &str,
    ) -> Result<(), crate::error::AppError> {
        let wait_ms = match self.redis.as_ref() {
            Some(redis) => match Box::pin(redis.failure_wait(kind, key)).await {
                Ok(ms) => ms,
                Err(e) => {
                    self.redis_failed(&e);
                    match self.policy {
                        FailurePolicy::Local => self.failures.wait(kind, key, failures::now_ms()),
                        FailurePolicy::Allow => 0,
                        FailurePolicy::Deny => 1_000,
                    }
                }
            },
            None => self.failures.wait(kind, key, failures::now_ms()),
        };
        if wait_ms <= 0 {
            return Ok(());
        }
        self.count_refusal(kind.label());
        let retry_after = ((wait_ms + 999) / 1000) as u64;
        Err(crate::error::AppError::RateLimited {
            retry_after,
            limit: self.failure_rule(kind).limit,
            reset: crate::db::now() + retry_after as i64,
        })
    }

    /// Counts one failure of `key` under `kind`.
    pub async fn record_failure(&self, kind: failures::Failure, key: &str) {
        let rule = self.failure_rule(kind);
        if let Some(redis) = self.redis.as_ref() {
            match Box::pin(redis.record_failure(kind, key, &rule)).await {
                Ok(_) => return,
                Err(e) => self.redis_failed(&e),
            }
        }
        self.failures.record(kind, key, &rule, failures::now_ms());
    }

    /// Forgets the failures of `key` under `kind` (the account signed in).
    pub async fn clear_failures(&self, kind: failures::Failure, key: &str) {
        self.failures.clear(kind, key);
        if let Some(redis) = self.redis.as_ref()
            && let Err(e) = Box::pin(redis.clear_failures(kind, key)).await
        {
            self.redis_failed(&e);
        }
    }

    fn failure_rule(&self, kind: failures::Failure) -> failures::Rule {
        failures::Rule::for_kind(kind, self.per_ip_failures)
    }

    pub fn forget_idle(&self) {
        for set in &self.local {
            set.forget_idle();
        }
        self.failures.forget_expired(failures::now_ms());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_is_an_ipv4_address_or_an_ipv6_64_and_its_key_is_no_text_key() {
        let net = |ip: &str| Network::of(Some(ip.parse().expect("ip")));
        assert_eq!(net("2001:db8:1:2:3:4:5:6"), net("2001:db8:1:2:ffff::1"));
        assert_ne!(net("2001:db8:1:2::1"), net("2001:db8:1:3::1"));
        assert_eq!(net("2001:db8:1:2:3:4:5:6").to_string(), "2001:db8:1:2::/64");
        assert_eq!(net("::ffff:192.0.2.1"), net("192.0.2.1"));
        assert_eq!(net("192.0.2.1").to_string(), "192.0.2.1");
        assert_eq!(Network::of(None).to_string(), "unknown");
        for n in [net("192.0.2.1"), net("2001:db8::1"), Network::of(None)] {
            let text = n.to_string();
            assert!(LimitKey::network(n) != LimitKey::of(&text), "{text}");
        }
        let limiter = Limiter::new(1, Duration::from_secs(60));
        assert!(
            limiter
                .check_key(&LimitKey::network(net("2001:db8:1:2::1")))
                .allowed
        );
        assert!(
            !limiter
                .check_key(&LimitKey::network(net("2001:db8:1:2::2")))
                .allowed
        );
        assert!(
            limiter
                .check_key(&LimitKey::network(net("2001:db8:1:3::1")))
                .allowed
        );
    }

    #[test]
    fn the_headers_carry_each_number() {
        for (limit, remaining, reset) in [
            (0, 0, 0),
            (6000, 5999, 1_764_000_000),
            (u32::MAX, 7, i64::MAX),
        ] {
            let d = Decision {
                allowed: true,
                limit,
                remaining,
                retry_after: 0,
                reset,
            };
            let h = d.headers();
            let text: Vec<(&str, &str)> = h
                .iter()
                .map(|(n, v)| (n.as_str(), v.to_str().expect("text")))
                .collect();
            assert_eq!(
                text,
                [
                    ("x-ratelimit-limit", limit.to_string().as_str()),
                    ("x-ratelimit-remaining", remaining.to_string().as_str()),
                    ("x-ratelimit-reset", reset.to_string().as_str()),
                ]
            );
        }
    }

    #[test]
    fn each_key_has_its_own_bucket_inline_or_not() {
        let limiter = Limiter::per_minute(2);
        let long = "k".repeat(INLINE + 1);
        let edge = "e".repeat(INLINE);
        // Keys that share a prefix, or a length, or differ only past the inline size, are apart.
        let keys = [
            "a".to_owned(),
            "ab".to_owned(),
            "a\0".to_owned(),
            edge.clone(),
            format!("{edge}x"),
            long.clone(),
            format!("{long}y"),
        ];
        for key in &keys {
            assert!(limiter.check(key).allowed, "{key}");
            assert!(limiter.check(key).allowed, "{key}");
            assert!(!limiter.check(key).allowed, "{key}: the third of two");
        }
        assert!(matches!(LimitKey::of(&edge), LimitKey::Inline(..)));
        assert!(matches!(LimitKey::of(&long), LimitKey::Heap(_)));
        assert!(LimitKey::of("a") != LimitKey::of("a\0"));
    }

    #[test]
    fn every_failure_policy_the_settings_accept_is_one() {
        let names: Vec<&str> = FailurePolicy::ALL.map(FailurePolicy::as_str).to_vec();
        assert_eq!(names, crate::config::FAILURE_POLICIES);
        for name in crate::config::FAILURE_POLICIES {
            assert_eq!(
                FailurePolicy::from_setting(name).map(FailurePolicy::as_str),
                Some(name)
            );
        }
        let default = crate::config::Settings::default().redis_failure_policy;
        assert_eq!(
            FailurePolicy::from_setting(&default),
            Some(FailurePolicy::Local)
        );
    }
}
