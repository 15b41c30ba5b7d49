//! Settings: defaults, then an optional `tessera.toml`, then `TESSERA_*` environment variables, validated once at start.
//!
//! Every setting is one row of [`SETTINGS`] (name, variable, file key, default, parser, help): the file
//! and environment readers, the validation, the unknown-name check and the README's settings table all
//! come from it. A new setting is one row there and one field of [`Settings`].

use std::collections::HashMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

/// A setting that failed validation. `Display` is the one line printed before exiting with code 2.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.line())]
pub struct ConfigError {
    pub setting: String,
    pub message: String,
    /// The message is the whole line (no "invalid SETTING:" before it).
    whole: bool,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            message: message.into(),
            whole: false,
        }
    }

    /// An error whose message is already a whole line naming `setting` (e.g. an unknown name).
    pub fn whole(setting: impl Into<String>, line: impl Into<String>) -> Self {
        Self {
            whole: true,
            ..Self::new(setting, line)
        }
    }

    fn line(&self) -> String {
        if self.whole {
            self.message.clone()
        } else {
            format!("invalid {}: {}", self.setting, self.message)
        }
    }
}

/// The type of the secret settings (pepper, master key, metrics token), defined with the key material.
pub use crate::crypto::SecretBytes;

/// Which database backs this node, chosen by the URL scheme.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` (relative to the working directory) or `sqlite:///abs/path`.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`, passed to libpq as is.
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let err = |m: String| ConfigError::new("TESSERA_DATABASE_URL", m);
        if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(err(
                    "sqlite:// needs a file path, e.g. sqlite://tessera.db".into()
                ));
            }
            if path.starts_with(":memory:") {
                return Err(err(
                    "an in-memory SQLite database is not shared between connections; use a file"
                        .into(),
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let url = Url::parse(raw).map_err(|e| err(format!("not a valid URL ({e})")))?;
            if url.host_str().is_none_or(str::is_empty)
                && !url.query().unwrap_or("").contains("host=")
            {
                return Err(err("a PostgreSQL URL needs a host".into()));
            }
            return Ok(Self::Postgres(raw.to_owned()));
        }
        let scheme = raw.split_once("://").map(|(s, _)| s).unwrap_or("");
        if scheme.is_empty() {
            Err(err(
                "expected sqlite://PATH or postgres://USER@HOST/DB".to_owned()
            ))
        } else {
            Err(err(format!(
                "unsupported scheme '{scheme}' (expected sqlite://PATH or postgres://USER@HOST/DB)"
            )))
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// Shows the URL with any password replaced, so it is safe to log.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(raw) => match Url::parse(raw) {
                Ok(mut url) => {
                    if url.password().is_some() {
                        let _ = url.set_password(Some("***"));
                    }
                    let redacted: Vec<(String, String)> = url
                        .query_pairs()
                        .map(|(k, v)| {
                            let v = if k == "password" {
                                "***".into()
                            } else {
                                v.into_owned()
                            };
                            (k.into_owned(), v)
                        })
                        .collect();
                    if !redacted.is_empty() {
                        url.query_pairs_mut().clear().extend_pairs(redacted);
                    }
                    write!(f, "{url}")
                }
                Err(_) => f.write_str("postgres://(unparsable)"),
            },
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The algorithms `TESSERA_SIGNING_ALG` accepts, each with the other spellings taken for it;
/// `jwt::SigningAlg` is built from the first name.
pub const SIGNING_ALGS: [(&str, &[&str]); 3] = [
    ("EdDSA", &["eddsa", "Ed25519", "ed25519"]),
    ("ES256", &["es256"]),
    ("RS256", &["rs256"]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Validated settings, passed explicitly to whatever needs them.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Public base URL of this server, without a trailing slash.
    pub issuer: Url,
    pub bind: SocketAddr,
    pub database_url: DatabaseUrl,
    pub database_pool_size: u32,
    /// How long to wait for a database connection before failing a request or readiness check.
    pub database_timeout: Duration,
    pub redis_url: Option<Url>,
    /// The HMAC pepper for high-entropy secrets; `None` means "read or create the key file".
    pub secret_pepper: Option<SecretBytes>,
    /// The AEAD key that encrypts private keys at rest; `None` means "read or create the key file".
    pub master_key: Option<SecretBytes>,
    /// The key file when set (`TESSERA_KEY_FILE`); `None`: see [`Settings::key_file_path`].
    pub key_file: Option<PathBuf>,
    /// Where a PostgreSQL node keeps its files (the key file by default).
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub log_level: String,
    pub body_limit: usize,
    /// How long a request body may take to arrive in full, from the end of its headers (408 beyond).
    pub body_timeout: Duration,
    /// Open connections each worker serves at once; more wait in the listen backlog. With the body
    /// and header timeouts this bounds what slow clients can hold.
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
    pub workers: Option<usize>,
    pub session_ttl: Duration,
    /// The algorithm of the keys Tessera generates to sign access tokens: one of the names of
    /// [`SIGNING_ALGS`] (the typed value is `jwt::SigningAlg::of(settings)`).
    pub signing_alg: &'static str,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub code_ttl: Duration,
    /// Tolerance for clocks of clients that sign their own JWTs (`exp`, `iat`, `nbf`).
    pub clock_skew: Duration,
    /// How often a new signing key takes over (the automatic rotation schedule).
    pub signing_key_rotation: Duration,
    /// How long the next signing key is published in the JWKS before it signs anything.
    pub signing_key_lead_time: Duration,
    /// How often each node re-reads the signing keys and checks the rotation schedule.
    pub key_reload_interval: Duration,
    /// How often the janitor deletes expired rows.
    pub purge_interval: Duration,
    /// Rows the janitor deletes per statement, so a large table is never locked for long.
    pub purge_batch_size: u32,
    /// Introspection requests per minute allowed to one caller.
    pub introspection_rate_limit: u32,
    /// API key types: the built-in `sk` and `rk`, and the operator's own from `[key_types.NAME]` (the
    /// API-key feature builds its `apikeys::KeyType` from these).
    pub key_types: Vec<KeyTypeSetting>,
    /// Where API keys are accepted, each one of [`PRESENTATIONS`] (lowercase, no repeats); the API-key
    /// feature reads them as its `apikeys::Presentation`.
    pub api_key_presentations: Vec<String>,
    /// Requests per 15 minutes one API key may make (verification and forward-auth).
    pub api_key_rate_limit: u32,
    /// Requests per 15 minutes one IP may make to `/v1/keys/verify`.
    pub ip_rate_limit: u32,
    /// How often API-key usage counted in memory is written to the database.
    pub usage_flush_interval: Duration,
    /// How long a node keeps an API-key lookup in memory (0 switches the cache off; at most 5 s, the
    /// longest a revocation may take to reach every node).
    pub api_key_cache_ttl: Duration,
    /// Failed sign-ins, and failed client authentications (token, revocation, introspection), one IP
    /// may make per 15 minutes; successes do not count.
    pub auth_rate_limit: u32,
    /// Token requests per minute one authenticated client may make (a client's `token_rate_limit`
    /// overrides it).
    pub token_rate_limit: u32,
    /// Proxies whose `X-Forwarded-For` is believed; every other peer is the client itself.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// What rate limits do while Redis is unreachable: one of [`FAILURE_POLICIES`] (lowercase); the
    /// rate limiter reads it as its `ratelimit::FailurePolicy`.
    pub redis_failure_policy: String,
    /// A separate listener for `/metrics` (then not served on `bind`).
    pub metrics_bind: Option<SocketAddr>,
    /// A bearer token `/metrics` requires.
    pub metrics_token: Option<SecretBytes>,
}

/// One `[key_types.NAME]` of `tessera.toml` as read and checked at load (prefix, overlap, lifetimes),
/// or a built-in type. What a key type means is the API-key feature's (`apikeys::KeyType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTypeSetting {
    pub name: String,
    /// The text before the environment, e.g. `sk_` (then `live_`/`test_`).
    pub prefix: String,
    /// `None`: full access (every scope). `Some`: keys hold a chosen subset of these (empty = any scope).
    pub scopes: Option<Vec<String>>,
    /// Safe to ship in client code: only the type's listed (public) scopes, never full access.
    pub publishable: bool,
    pub default_ttl: Option<Duration>,
    pub max_ttl: Option<Duration>,
}

impl KeyTypeSetting {
    /// The default of `key_types`: `sk` (full access) and `rk` (restricted to chosen scopes).
    pub fn builtin() -> Vec<KeyTypeSetting> {
        vec![
            KeyTypeSetting {
                name: "sk".into(),
                prefix: "sk_".into(),
                scopes: None,
                publishable: false,
                default_ttl: None,
                max_ttl: None,
            },
            KeyTypeSetting {
                name: "rk".into(),
                prefix: "rk_".into(),
                scopes: Some(Vec::new()),
                publishable: false,
                default_ttl: None,
                max_ttl: None,
            },
        ]
    }
}

/// The values `TESSERA_API_KEY_PRESENTATIONS` takes: the places an API key may be presented in.
pub const PRESENTATIONS: [&str; 5] = ["bearer", "x-api-key", "token", "query", "body"];

/// The values `TESSERA_REDIS_FAILURE_POLICY` takes.
pub const FAILURE_POLICIES: [&str; 3] = ["local", "allow", "deny"];

/// `[key_types.NAME]` in `tessera.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyTypeFile {
    prefix: String,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    publishable: bool,
    default_ttl: Option<String>,
    max_ttl: Option<String>,
}

/// One setting. Every place a setting is read, checked or documented comes from its row in [`SETTINGS`].
pub struct Setting {
    /// The key in `tessera.toml`.
    pub key: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// The default, as it would be written (empty: unset). Parsed by the row's parser for
    /// `Settings::default()` and shown in the README.
    pub default: &'static str,
    /// One line for the README's settings table.
    pub help: &'static str,
    /// Key material or a credential: never shown, never logged.
    pub secret: bool,
    /// Parses a value (named by where it came from, for the error) into its field.
    apply: fn(&mut Settings, &str, &str) -> Result<(), ConfigError>,
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setting")
            .field("key", &self.key)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

/// Builds [`SETTINGS`] and `Settings::default()` from one row per setting:
/// `(field, "TESSERA_VAR", "file_key", "default", parser, public|secret, "help")`.
/// A missing row is a compile error (the `Default` impl would lack the field).
macro_rules! settings {
    ($( ($field:ident, $env:literal, $key:literal, $default:literal, $parse:expr, $vis:ident, $help:literal), )*) => {
        /// Every setting, in the order of the README's table.
        pub static SETTINGS: &[Setting] = &[$(
            Setting {
                key: $key,
                env: $env,
                default: $default,
                help: $help,
                secret: settings!(@secret $vis),
                apply: |s, origin, value| {
                    s.$field = ($parse)(origin, value)?;
                    Ok(())
                },
            },
        )*];

        impl Default for Settings {
            fn default() -> Self {
                Self {
                    $( $field: ($parse)($env, $default)
                        .unwrap_or_else(|e| panic!("the default of {} is invalid: {e}", $env)), )*
                    key_types: KeyTypeSetting::builtin(),
                }
            }
        }
    };
    (@secret public) => { false };
    (@secret secret) => { true };
}

settings! {
    (issuer, "TESSERA_ISSUER", "issuer", "http://127.0.0.1:8080", parse_issuer, public,
        "public base URL; https unless the host is loopback"),
    (bind, "TESSERA_BIND", "bind", "127.0.0.1:8080", parse_bind, public,
        "listen address (`0.0.0.0:8080` in containers)"),
    (database_url, "TESSERA_DATABASE_URL", "database_url", "sqlite://tessera.db", parse_database_url, public,
        "`sqlite://PATH` (relative) or `sqlite:///abs/path`, or `postgres://user:pass@host/db`"),
    (database_pool_size, "TESSERA_DATABASE_POOL_SIZE", "database_pool_size", "10", number::<u32>(1, 1000), public,
        "connections per node (a connection that finished work without error in the last 500 ms is handed out again as is; an older one is pinged first, so connections cut by a database restart are replaced)"),
    (database_timeout, "TESSERA_DATABASE_TIMEOUT", "database_timeout", "5s", duration(millis(100), secs(600)), public,
        "wait for a connection before failing (readiness waits at most 2 s)"),
    (redis_url, "TESSERA_REDIS_URL", "redis_url", "", optional(parse_redis_url), public,
        "`redis://host:6379`: rate-limit counters shared by every node (GCRA in one Lua script on the Redis clock)"),
    (redis_failure_policy, "TESSERA_REDIS_FAILURE_POLICY", "redis_failure_policy", "local", parse_failure_policy, public,
        "while Redis is unreachable: `local` (this node's own counters, logged), `allow` or `deny`. A Redis call gives up after 250 ms, and after a failure a circuit breaker skips Redis (the policy applies at once) for 250 ms doubling up to 5 s while it keeps failing, then one request probes it: a dead or frozen Redis costs requests no waiting"),
    (secret_pepper, "TESSERA_SECRET_PEPPER", "secret_pepper", "", optional(parse_pepper), secret,
        "HMAC key for stored secrets, ≥ 32 characters (`openssl rand -hex 32`); unset: from the key file"),
    (master_key, "TESSERA_MASTER_KEY", "master_key", "", optional(parse_master_key), secret,
        "64 hex characters; encrypts private keys at rest; unset: from the key file"),
    (key_file, "TESSERA_KEY_FILE", "key_file", "", optional(parse_path), public,
        "where generated key material is kept; unset: `tessera.key` beside a SQLite database, `TESSERA_DATA_DIR/tessera.key` with PostgreSQL. The database records a fingerprint of its keys: another key file is refused"),
    (data_dir, "TESSERA_DATA_DIR", "data_dir", ".", parse_path, public,
        "where a PostgreSQL node keeps its files (the key file)"),
    (log_format, "TESSERA_LOG", "log", "pretty", parse_log_format, public,
        "`pretty` or `json` log lines on stdout"),
    (log_level, "TESSERA_LOG_LEVEL", "log_level", "info", parse_log_level, public,
        "`error`, `warn`, `info`, `debug` or `trace`, or a tracing filter such as `info,tessera=debug` (`RUST_LOG` wins when set)"),
    (body_limit, "TESSERA_BODY_LIMIT", "body_limit", "65536", number::<usize>(1024, 64 * 1024 * 1024), public,
        "largest request body in bytes (413 beyond). Bodies are read as sent: one with a `Content-Encoding` (gzip, …) gets 415"),
    (max_connections, "TESSERA_MAX_CONNECTIONS", "max_connections", "10000", number::<usize>(1, 1_000_000), public,
        "open connections each worker serves at once (more wait in the listen backlog); with the header (5 s) and body timeouts, this bounds what slow clients can hold"),
    (body_timeout, "TESSERA_BODY_TIMEOUT", "body_timeout", "10s", duration(secs(1), secs(600)), public,
        "how long a request body may take to arrive in full after its headers (408 and the connection closed beyond)"),
    (shutdown_timeout, "TESSERA_SHUTDOWN_TIMEOUT", "shutdown_timeout", "10s", duration(secs(0), secs(3600)), public,
        "how long SIGTERM/SIGINT waits for in-flight requests"),
    (workers, "TESSERA_WORKERS", "workers", "", optional(number::<usize>(1, 1024)), public,
        "HTTP worker threads; unset: one per core"),
    (session_ttl, "TESSERA_SESSION_TTL", "session_ttl", "12h", duration(secs(60), days(3650)), public,
        "lifetime of a sign-in session"),
    (signing_alg, "TESSERA_SIGNING_ALG", "signing_alg", "EdDSA", parse_signing_alg, public,
        "algorithm of access tokens: `EdDSA`, `ES256` or `RS256` (2048-bit); a key of each is kept for ID tokens"),
    (access_token_ttl, "TESSERA_ACCESS_TOKEN_TTL", "access_token_ttl", "15m", duration(secs(30), days(1)), public,
        "lifetime of access tokens (JWTs), and of ID tokens"),
    (refresh_token_ttl, "TESSERA_REFRESH_TOKEN_TTL", "refresh_token_ttl", "30d", duration(secs(60), days(365)), public,
        "lifetime of a refresh-token family"),
    (code_ttl, "TESSERA_CODE_TTL", "code_ttl", "60s", duration(secs(10), secs(600)), public,
        "lifetime of an authorization code"),
    (signing_key_rotation, "TESSERA_SIGNING_KEY_ROTATION", "signing_key_rotation", "30d", duration(secs(3600), days(365)), public,
        "a new signing key takes over this often"),
    (signing_key_lead_time, "TESSERA_SIGNING_KEY_LEAD_TIME", "signing_key_lead_time", "1d", duration(secs(0), days(30)), public,
        "the next key is in the JWKS this long before it signs (shorter than the rotation)"),
    (key_reload_interval, "TESSERA_KEY_RELOAD_INTERVAL", "key_reload_interval", "30s", duration(secs(1), secs(3600)), public,
        "how often each node re-reads the keys and checks the schedule"),
    (clock_skew, "TESSERA_CLOCK_SKEW", "clock_skew", "60s", duration(secs(0), secs(600)), public,
        "clock tolerance for client-signed JWTs"),
    (purge_interval, "TESSERA_PURGE_INTERVAL", "purge_interval", "5m", duration(secs(1), days(1)), public,
        "how often the janitor deletes expired codes, tokens, replay-cache rows, sessions"),
    (purge_batch_size, "TESSERA_PURGE_BATCH_SIZE", "purge_batch_size", "1000", number::<u32>(1, 100_000), public,
        "rows per delete statement, so a big table is never locked for long"),
    (introspection_rate_limit, "TESSERA_INTROSPECTION_RATE_LIMIT", "introspection_rate_limit", "6000", number::<u32>(1, 10_000_000), public,
        "introspection requests per minute per caller (429 beyond)"),
    (api_key_presentations, "TESSERA_API_KEY_PRESENTATIONS", "api_key_presentations", "bearer,x-api-key,token,query,body", parse_presentations, public,
        "where API keys are accepted (comma-separated)"),
    (api_key_rate_limit, "TESSERA_API_KEY_RATE_LIMIT", "api_key_rate_limit", "3000", number::<u32>(1, 100_000_000), public,
        "requests per 15 minutes per API key (GCRA, no burst at a window edge)"),
    (ip_rate_limit, "TESSERA_IP_RATE_LIMIT", "ip_rate_limit", "500", number::<u32>(1, 100_000_000), public,
        "requests per 15 minutes per IP to `/v1/keys/verify` (an IPv6 client counts by its /64)"),
    (auth_rate_limit, "TESSERA_AUTH_RATE_LIMIT", "auth_rate_limit", "50", number::<u32>(1, 100_000_000), public,
        "**failed** sign-ins, and failed client authentications at `/oauth/token`, `/oauth/revoke` and `/oauth/introspect`, per 15 minutes per IP (an IP past it gets 429 before any password or secret is checked; successes never count). Failed sign-ins also slow down: per IP past a fifth of the limit (at least 10), 1 s doubling up to 30 s; per account after 5, 1 s doubling up to 15 minutes"),
    (token_rate_limit, "TESSERA_TOKEN_RATE_LIMIT", "token_rate_limit", "6000", number::<u32>(1, 100_000_000), public,
        "token requests per minute per authenticated client (`tessera client rate-limit CLIENT_ID --token-rate-limit N` sets one client's own; `--default` removes it)"),
    (trusted_proxies, "TESSERA_TRUSTED_PROXIES", "trusted_proxies", "", parse_trusted_proxies, public,
        "IPs or CIDRs whose `X-Forwarded-For` is believed (e.g. `10.0.0.0/8`)"),
    (usage_flush_interval, "TESSERA_USAGE_FLUSH_INTERVAL", "usage_flush_interval", "5s", duration(secs(1), secs(3600)), public,
        "how often API-key usage counted in memory is written"),
    (api_key_cache_ttl, "TESSERA_API_KEY_CACHE_TTL", "api_key_cache_ttl", "2s", duration(secs(0), secs(5)), public,
        "how long a node trusts an API-key lookup (`0` to `5s`; `0`: no cache)"),
    (metrics_bind, "TESSERA_METRICS_BIND", "metrics_bind", "", optional(parse_bind), public,
        "serve `/metrics` on this separate address (e.g. `127.0.0.1:9090`) instead of on `TESSERA_BIND`"),
    (metrics_token, "TESSERA_METRICS_TOKEN", "metrics_token", "", optional(parse_metrics_token), secret,
        "when set, `/metrics` requires `Authorization: Bearer` with this token (at least 16 characters)"),
}

/// `TESSERA_*` variables that are not settings but are read elsewhere: by [`Settings::load`] itself, by
/// the test suites and by the scripts that run the binary in their own environment
/// (`tests/browser/run.sh`, `tests/twonode/run.sh`, `.ci/run`). Any other `TESSERA_*` is refused.
const NOT_SETTINGS: &[&str] = &[
    "TESSERA_CONFIG",
    "TESSERA_BIN",
    "TESSERA_URL",
    "TESSERA_BLESS",
    "TESSERA_FUZZ_SCALE",
];
/// Prefixes of such variables: `TESSERA_TEST_POSTGRES_URL`, `TESSERA_CI_POSTGRES_URL`, …
const NOT_SETTINGS_PREFIXES: &[&str] = &["TESSERA_TEST_", "TESSERA_CI_"];

/// The row named by a file key.
fn by_key(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// The row named by an environment variable.
fn by_env(env: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.env == env)
}

/// "; did you mean X?" for the valid name nearest to `given`, when one is near enough.
fn did_you_mean<'a>(given: &str, names: impl Iterator<Item = &'a str>) -> String {
    let given = given.to_ascii_lowercase();
    let best = names
        .map(|n| (edit_distance(&given, &n.to_ascii_lowercase()), n))
        .min_by_key(|(d, _)| *d);
    match best {
        // A third of the name may be wrong (a typo, a missing or swapped word part).
        Some((d, name)) if d <= (given.len() / 3).max(2) => format!("; did you mean {name}?"),
        _ => String::new(),
    }
}

/// Levenshtein distance (insertions, deletions, substitutions), over bytes: names are ASCII.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let swap = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + swap).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Where the settings file came from, as the user wrote it: named in every error about the file.
#[derive(Debug, Clone)]
enum FileOrigin {
    /// `./tessera.toml`, read when present.
    Default,
    /// `--config FILE`.
    Flag(PathBuf),
    /// `TESSERA_CONFIG=FILE`.
    Env(PathBuf),
}

impl FileOrigin {
    fn path(&self) -> &Path {
        match self {
            Self::Default => Path::new("tessera.toml"),
            Self::Flag(p) | Self::Env(p) => p,
        }
    }
}

impl fmt::Display for FileOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("tessera.toml"),
            Self::Flag(p) => write!(f, "--config {}", p.display()),
            Self::Env(p) => write!(f, "TESSERA_CONFIG={}", p.display()),
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// The line on which `key` is set at the top of a TOML document (for an unknown key's error).
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .and_then(|rest| rest.trim_start().chars().next())
                .is_some_and(|c| c == '=' || c == '.')
        })
        .map(|i| i + 1)
}

/// A file value as the text an environment variable would hold.
fn file_value(v: toml::Value) -> Result<String, &'static str> {
    match v {
        toml::Value::String(s) => Ok(s),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        // A list is the comma-separated value: `trusted_proxies = ["10.0.0.0/8", "::1"]`.
        toml::Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                toml::Value::String(s) => Ok(s),
                _ => Err("expected a list of strings"),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(",")),
        _ => Err("expected a string or a number"),
    }
}

/// The values read: file key → (where it came from, text).
type Raw = HashMap<&'static str, (String, String)>;

impl Settings {
    /// Loads settings from `config_file` (`--config`), else `TESSERA_CONFIG`, else `./tessera.toml`
    /// when present, then `env`. Read once: a change needs a restart.
    ///
    /// An explicitly named file that cannot be read is an error; a missing default file is not. An
    /// unknown key in the file or unknown `TESSERA_*` variable is an error naming the nearest valid one.
    pub fn load(
        config_file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let origin = match (config_file, env.get("TESSERA_CONFIG")) {
            (Some(p), _) => FileOrigin::Flag(p.to_path_buf()),
            (None, Some(p)) => FileOrigin::Env(PathBuf::from(p)),
            (None, None) => FileOrigin::Default,
        };
        check_env_names(env)?;
        let mut raw = Raw::new();
        let mut key_types = KeyTypeSetting::builtin();
        match std::fs::read_to_string(origin.path()) {
            Ok(text) => key_types = read_file(&text, &origin, &mut raw)?,
            Err(e)
                if matches!(origin, FileOrigin::Default)
                    && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ConfigError::new(
                    origin.to_string(),
                    format!("cannot read {}: {e}", origin.path().display()),
                ));
            }
        }
        for setting in SETTINGS {
            if let Some(v) = env.get(setting.env) {
                raw.insert(setting.key, (setting.env.to_owned(), v.clone()));
            }
        }
        let mut settings = Self::default();
        for setting in SETTINGS {
            if let Some((origin, value)) = raw.get(setting.key) {
                (setting.apply)(&mut settings, origin, value.trim())?;
            }
        }
        settings.key_types = key_types;
        settings.check_together(&raw)?;
        Ok(settings)
    }

    /// Rules between settings, once each has been read.
    fn check_together(&self, raw: &Raw) -> Result<(), ConfigError> {
        if self.signing_key_lead_time >= self.signing_key_rotation {
            let name = raw
                .get("signing_key_lead_time")
                .or_else(|| raw.get("signing_key_rotation"))
                .map_or("TESSERA_SIGNING_KEY_LEAD_TIME", |(name, _)| name.as_str());
            return Err(ConfigError::new(
                name,
                "the lead time must be shorter than the rotation interval",
            ));
        }
        Ok(())
    }

    /// Where the pepper and master key are kept when not given as settings: `TESSERA_KEY_FILE`;
    /// else `tessera.key` beside a SQLite database; else `TESSERA_DATA_DIR/tessera.key`.
    pub fn key_file_path(&self) -> PathBuf {
        if let Some(path) = &self.key_file {
            return path.clone();
        }
        match &self.database_url {
            DatabaseUrl::Sqlite(db) => match db.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.join("tessera.key"),
                _ => PathBuf::from("tessera.key"),
            },
            DatabaseUrl::Postgres(_) => self.data_dir.join("tessera.key"),
        }
    }

    /// True when cookies must carry `Secure` (the issuer is served over https).
    pub fn secure_cookies(&self) -> bool {
        self.issuer.scheme() == "https"
    }

    /// The issuer as a string without a trailing slash.
    pub fn issuer_str(&self) -> &str {
        self.issuer.as_str().trim_end_matches('/')
    }
}

/// Refuses `TESSERA_*` variables that name no setting (a typo would otherwise be ignored).
fn check_env_names(env: &HashMap<String, String>) -> Result<(), ConfigError> {
    let mut names: Vec<&String> = env.keys().collect();
    names.sort();
    for name in names {
        if !name.starts_with("TESSERA_")
            || by_env(name).is_some()
            || NOT_SETTINGS.contains(&name.as_str())
            || NOT_SETTINGS_PREFIXES.iter().any(|p| name.starts_with(p))
        {
            continue;
        }
        let hint = did_you_mean(name, SETTINGS.iter().map(|s| s.env));
        return Err(ConfigError::whole(
            name.clone(),
            format!("unknown setting {name}{hint} (the settings are listed in README.md)"),
        ));
    }
    Ok(())
}

/// Reads the settings file's values into `raw`; returns the key types it declares.
fn read_file(
    text: &str,
    origin: &FileOrigin,
    raw: &mut Raw,
) -> Result<Vec<KeyTypeSetting>, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let (line, column) = line_column(text, span.start);
                format!("line {line}, column {column}: ")
            })
            .unwrap_or_default();
        ConfigError::new(
            origin.to_string(),
            format!("{at}{}", e.message().trim().replace('\n', " ")),
        )
    })?;
    let mut key_types = KeyTypeSetting::builtin();
    for (key, value) in table {
        let name = format!("{key} in {origin}");
        if key == "key_types" {
            let types: HashMap<String, KeyTypeFile> =
                value.try_into().map_err(|e: toml::de::Error| {
                    ConfigError::new(name, e.message().trim().to_owned())
                })?;
            key_types = parse_key_types(types, origin)?;
            continue;
        }
        let Some(setting) = by_key(&key) else {
            let line = key_line(text, &key)
                .map(|l| format!(" (line {l})"))
                .unwrap_or_default();
            let hint = did_you_mean(&key, SETTINGS.iter().map(|s| s.key).chain(["key_types"]));
            return Err(ConfigError::whole(
                origin.to_string(),
                format!("unknown setting '{key}' in {origin}{line}{hint}"),
            ));
        };
        let value = file_value(value).map_err(|m| ConfigError::new(name.clone(), m))?;
        raw.insert(setting.key, (name, value));
    }
    Ok(key_types)
}

/// The README's settings table (between `<!-- settings:begin -->` and `<!-- settings:end -->`).
pub fn settings_markdown() -> String {
    let mut out = String::from("| variable | file key | default | meaning |\n|---|---|---|---|\n");
    for s in SETTINGS {
        let default = if s.default.is_empty() {
            "unset".to_owned()
        } else {
            format!("`{}`", s.default)
        };
        let secret = if s.secret {
            " (secret: never logged)"
        } else {
            ""
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {default} | {}{secret} |\n",
            s.env, s.key, s.help
        ));
    }
    out
}

/// Wraps a parser so that an empty value means "unset".
fn optional<T>(
    parse: impl Fn(&str, &str) -> Result<T, ConfigError>,
) -> impl Fn(&str, &str) -> Result<Option<T>, ConfigError> {
    move |name, v| {
        if v.is_empty() {
            Ok(None)
        } else {
            parse(name, v).map(Some)
        }
    }
}

/// A whole number in `min..=max`.
fn number<T: TryFrom<u64>>(min: u64, max: u64) -> impl Fn(&str, &str) -> Result<T, ConfigError> {
    move |name, v| {
        let n = parse_number(name, v, min, max)?;
        T::try_from(n).map_err(|_| ConfigError::new(name, format!("{n} is too large")))
    }
}

/// A duration in `min..=max`.
fn duration(min: Duration, max: Duration) -> impl Fn(&str, &str) -> Result<Duration, ConfigError> {
    move |name, v| {
        let d = parse_duration(name, v)?;
        if d < min || d > max {
            return Err(ConfigError::new(
                name,
                format!(
                    "must be between {} and {}",
                    show_duration(min),
                    show_duration(max)
                ),
            ));
        }
        Ok(d)
    }
}

const fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}
const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
const fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

/// `250ms`, `45s`, `15m`, `12h`, `30d`: the largest unit that divides the duration.
fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    match s {
        0 => "0s".to_owned(),
        s if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        s if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        s if s.is_multiple_of(60) => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn parse_database_url(name: &str, v: &str) -> Result<DatabaseUrl, ConfigError> {
    DatabaseUrl::parse(v).map_err(|mut e| {
        e.setting = name.to_owned();
        e
    })
}

fn parse_redis_url(name: &str, v: &str) -> Result<Url, ConfigError> {
    let url =
        Url::parse(v).map_err(|e| ConfigError::new(name, format!("not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "redis" | "rediss") {
        return Err(ConfigError::new(
            name,
            "expected redis://HOST:PORT or rediss://…",
        ));
    }
    Ok(url)
}

fn parse_failure_policy(name: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.to_ascii_lowercase();
    if FAILURE_POLICIES.contains(&v.as_str()) {
        Ok(v)
    } else {
        Err(ConfigError::new(
            name,
            format!("unknown policy '{v}' (expected local, allow or deny)"),
        ))
    }
}

fn parse_pepper(name: &str, v: &str) -> Result<SecretBytes, ConfigError> {
    if v.len() < 32 {
        return Err(ConfigError::new(
            name,
            "must be at least 32 characters of random data (e.g. `openssl rand -hex 32`)",
        ));
    }
    Ok(SecretBytes::new(v.as_bytes().to_vec()))
}

fn parse_master_key(name: &str, v: &str) -> Result<SecretBytes, ConfigError> {
    crate::crypto::unhex(v)
        .filter(|k| k.len() == 32)
        .map(SecretBytes::new)
        .ok_or_else(|| {
            ConfigError::new(
                name,
                "must be 64 hex characters (e.g. `openssl rand -hex 32`)",
            )
        })
}

fn parse_metrics_token(name: &str, v: &str) -> Result<SecretBytes, ConfigError> {
    if v.chars().count() < 16 {
        return Err(ConfigError::new(
            name,
            "must be at least 16 characters (e.g. `openssl rand -hex 16`)",
        ));
    }
    Ok(SecretBytes::new(v.as_bytes().to_vec()))
}

fn parse_path(name: &str, v: &str) -> Result<PathBuf, ConfigError> {
    if v.is_empty() {
        return Err(ConfigError::new(name, "must be a path"));
    }
    Ok(PathBuf::from(v))
}

fn parse_log_format(name: &str, v: &str) -> Result<LogFormat, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "pretty" | "text" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        other => Err(ConfigError::new(
            name,
            format!("unknown log format '{other}' (expected pretty or json)"),
        )),
    }
}

/// A level, or a tracing filter. A bare word must be a level: tracing would take `verbose` as the
/// name of a log target and then show nothing.
fn parse_log_level(name: &str, v: &str) -> Result<String, ConfigError> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let expected =
        "expected error, warn, info, debug or trace, or a filter such as info,tessera=debug";
    if v.is_empty() {
        return Err(ConfigError::new(name, format!("is empty ({expected})")));
    }
    for directive in v.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = !directive.contains(['=', '[', ':']);
        if bare && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(ConfigError::new(
                name,
                format!("'{directive}' is not a log level ({expected})"),
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(v)
        .map_err(|e| ConfigError::new(name, format!("not a log filter ({e}; {expected})")))?;
    Ok(v.to_owned())
}

fn parse_signing_alg(name: &str, v: &str) -> Result<&'static str, ConfigError> {
    SIGNING_ALGS
        .iter()
        .find(|(canonical, others)| *canonical == v || others.contains(&v))
        .map(|(canonical, _)| *canonical)
        .ok_or_else(|| {
            ConfigError::new(
                name,
                format!("unknown algorithm '{v}' (expected EdDSA, ES256 or RS256)"),
            )
        })
}

fn parse_presentations(name: &str, v: &str) -> Result<Vec<String>, ConfigError> {
    let mut list: Vec<String> = Vec::new();
    for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let p = PRESENTATIONS
            .into_iter()
            .find(|p| p.eq_ignore_ascii_case(item))
            .ok_or_else(|| {
                ConfigError::new(
                    name,
                    format!(
                        "unknown place '{item}' (expected bearer, x-api-key, token, query, body)"
                    ),
                )
            })?;
        if !list.iter().any(|l| l == p) {
            list.push(p.to_owned());
        }
    }
    Ok(list)
}

fn parse_trusted_proxies(name: &str, v: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    v.split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::new(name, format!("'{item}' is not an IP address or CIDR"))
                })
        })
        .collect()
}

/// The operator's key types: added to (or replacing, by name) the built-in `sk` and `rk`.
fn parse_key_types(
    types: HashMap<String, KeyTypeFile>,
    origin: &FileOrigin,
) -> Result<Vec<KeyTypeSetting>, ConfigError> {
    let mut out = KeyTypeSetting::builtin();
    let mut names: Vec<_> = types.into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in names {
        let setting = format!("key_types.{name} in {origin}");
        let err = |m: &str| ConfigError::new(setting.clone(), m.to_owned());
        let valid_prefix = t.prefix.len() >= 2
            && t.prefix.len() <= 16
            && t.prefix.ends_with('_')
            && t.prefix[..t.prefix.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid_prefix {
            return Err(err(
                "prefix must be 1 to 15 lowercase letters or digits followed by '_' (e.g. pak_)",
            ));
        }
        if t.publishable && t.scopes.as_ref().is_none_or(Vec::is_empty) {
            return Err(err("a publishable key type must list its (public) scopes"));
        }
        let ttl = |v: &Option<String>, key: &str| -> Result<Option<Duration>, ConfigError> {
            v.as_deref()
                .map(|d| parse_duration(&format!("key_types.{name}.{key}"), d))
                .transpose()
        };
        let kt = KeyTypeSetting {
            name: name.clone(),
            prefix: t.prefix.clone(),
            scopes: t.scopes.clone(),
            publishable: t.publishable,
            default_ttl: ttl(&t.default_ttl, "default_ttl")?,
            max_ttl: ttl(&t.max_ttl, "max_ttl")?,
        };
        if let (Some(d), Some(m)) = (kt.default_ttl, kt.max_ttl)
            && d > m
        {
            return Err(err("default_ttl is longer than max_ttl"));
        }
        out.retain(|k| k.name != kt.name);
        if out
            .iter()
            .any(|k| k.prefix.starts_with(&kt.prefix) || kt.prefix.starts_with(&k.prefix))
        {
            return Err(err("prefix overlaps another key type's prefix"));
        }
        out.push(kt);
    }
    Ok(out)
}

fn parse_issuer(name: &str, v: &str) -> Result<Url, ConfigError> {
    let url =
        Url::parse(v).map_err(|e| ConfigError::new(name, format!("not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(name, "must be an http:// or https:// URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            name,
            "must not have a query or fragment (RFC 8414)",
        ));
    }
    if url.scheme() == "http" && !is_loopback_host(&url) {
        return Err(ConfigError::new(
            name,
            "must use https unless the host is loopback (127.0.0.1, [::1], localhost)",
        ));
    }
    Ok(url)
}

/// True for `127.0.0.0/8`, `[::1]` and `localhost`.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn parse_bind(name: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(addr) = v.parse() {
        return Ok(addr);
    }
    v.to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| ConfigError::new(name, format!("'{v}' is not HOST:PORT")))
}

fn parse_number(name: &str, v: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    let n: u64 = v
        .parse()
        .map_err(|_| ConfigError::new(name, format!("'{v}' is not a whole number")))?;
    if n < min || n > max {
        return Err(ConfigError::new(
            name,
            format!("{n} is outside {min}..={max}"),
        ));
    }
    Ok(n)
}

/// Parses `90d`, `12h`, `30m`, `45s`, `250ms` or a bare number of seconds.
pub fn parse_duration(name: &str, v: &str) -> Result<Duration, ConfigError> {
    let bad = || {
        ConfigError::new(
            name,
            format!("'{v}' is not a duration (e.g. 30s, 15m, 12h, 90d)"),
        )
    };
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
        "d" => Duration::from_secs(n.checked_mul(86_400).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_design() {
        let s = Settings::load(Some(Path::new("/dev/null")), &env(&[])).expect("defaults load");
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.issuer_str(), "http://127.0.0.1:8080");
        assert_eq!(s.database_url, DatabaseUrl::Sqlite("tessera.db".into()));
        assert_eq!(s.body_limit, 65536);
        assert_eq!(s.body_timeout, Duration::from_secs(10));
        assert_eq!(s.max_connections, 10_000);
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (k, v) in [
            ("TESSERA_DATABASE_URL", "mysql://x"),
            ("TESSERA_LOG", "xml"),
            ("TESSERA_BIND", "nope"),
            ("TESSERA_ISSUER", "http://example.com"),
            ("TESSERA_BODY_LIMIT", "lots"),
            ("TESSERA_MAX_CONNECTIONS", "0"),
            ("TESSERA_BODY_TIMEOUT", "soon"),
            ("TESSERA_BODY_TIMEOUT", "0s"),
            ("TESSERA_METRICS_BIND", "nope"),
            ("TESSERA_METRICS_TOKEN", "too-short"),
        ] {
            let e = Settings::load(Some(Path::new("/dev/null")), &env(&[(k, v)]))
                .expect_err("bad value rejected");
            assert_eq!(e.setting, k);
            assert!(!e.to_string().contains('\n'));
        }
    }

    fn load_file(origin_flag: bool, text: &str) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("my.toml");
        std::fs::write(&path, text).expect("write");
        if origin_flag {
            Settings::load(Some(&path), &env(&[]))
        } else {
            let p = path.to_string_lossy().into_owned();
            Settings::load(None, &env(&[("TESSERA_CONFIG", &p)]))
        }
    }

    #[test]
    fn the_table_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for s in SETTINGS {
            assert_eq!(s.env, format!("TESSERA_{}", s.key.to_ascii_uppercase()));
            assert!(seen.insert(s.key), "{} twice", s.key);
            assert!(!s.help.is_empty() && !s.help.contains('|'), "{}", s.key);
            // Every default parses (Settings::default() panics otherwise), and from the table too.
            let mut t = Settings::default();
            (s.apply)(&mut t, s.env, s.default).expect("the default parses");
        }
        let s = Settings::default();
        assert_eq!(s.metrics_bind, None);
        assert!(s.metrics_token.is_none() && s.key_file.is_none());
        assert_eq!(s.data_dir, PathBuf::from("."));
        assert_eq!(s.api_key_presentations, PRESENTATIONS.map(String::from));
    }

    #[test]
    fn an_unknown_variable_is_refused_with_the_nearest_name() {
        let e = Settings::load(
            Some(Path::new("/dev/null")),
            &env(&[("TESSERA_DATABSE_URL", "sqlite://x.db")]),
        )
        .expect_err("a typo is refused");
        let line = e.to_string();
        assert!(
            line.starts_with(
                "unknown setting TESSERA_DATABSE_URL; did you mean TESSERA_DATABASE_URL?"
            ),
            "{line}"
        );
        let e = Settings::load(
            Some(Path::new("/dev/null")),
            &env(&[("TESSERA_COMPLETELY_DIFFERENT", "1")]),
        )
        .expect_err("refused");
        assert!(!e.to_string().contains("did you mean"), "{e}");
        // Variables read elsewhere (the tests, the scripts) are no settings but are not refused.
        Settings::load(
            Some(Path::new("/dev/null")),
            &env(&[
                ("TESSERA_TEST_POSTGRES_URL", "postgres://x@y/z"),
                ("TESSERA_CI_POSTGRES_URL", "postgres://x@y/z"),
                ("TESSERA_FUZZ_SCALE", "2"),
                ("TESSERA_BIN", "x"),
                ("TESSERA_URL", "x"),
                ("TESSERA_BLESS", "1"),
                ("OTHER_TESSERA_X", "1"),
            ]),
        )
        .expect("allowed");
    }

    #[test]
    fn the_log_level_is_a_level_or_a_filter() {
        for ok in [
            "info",
            "DEBUG",
            "warn,tessera=debug",
            "tessera::db=trace",
            "off",
        ] {
            let s = Settings::load(
                Some(Path::new("/dev/null")),
                &env(&[("TESSERA_LOG_LEVEL", ok)]),
            )
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(s.log_level, ok);
        }
        for bad in ["verbose", "info,loud", "", "tessera=[{"] {
            let e = Settings::load(
                Some(Path::new("/dev/null")),
                &env(&[("TESSERA_LOG_LEVEL", bad)]),
            )
            .expect_err(bad);
            let line = e.to_string();
            assert!(line.starts_with("invalid TESSERA_LOG_LEVEL:"), "{line}");
            assert!(line.contains("error, warn, info, debug or trace"), "{line}");
        }
    }

    #[test]
    fn a_toml_syntax_error_names_the_file_line_and_column() {
        let text = "bind = \"127.0.0.1:0\"\nissuer = \"http://127.0.0.1\nlog = \"json\"\n";
        let e = load_file(true, text).expect_err("syntax error");
        let line = e.to_string();
        assert!(line.starts_with("invalid --config "), "{line}");
        assert!(line.contains("my.toml"), "{line}");
        assert!(line.contains(": line 2, column 27: "), "{line}");
        assert!(!line.contains('\n'), "{line}");
        let e = load_file(false, text).expect_err("syntax error");
        assert!(e.to_string().starts_with("invalid TESSERA_CONFIG="), "{e}");
    }

    #[test]
    fn an_unknown_file_key_is_refused_with_the_nearest_name() {
        let e = load_file(
            true,
            "bind = \"127.0.0.1:0\"\ndatabse_url = \"sqlite://x.db\"\n",
        )
        .expect_err("unknown key");
        let line = e.to_string();
        assert!(line.contains("unknown setting 'databse_url'"), "{line}");
        assert!(line.contains("(line 2)"), "{line}");
        assert!(line.contains("did you mean database_url?"), "{line}");
        let s = load_file(
            true,
            "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nworkers = 2\nmetrics_bind = \"127.0.0.1:9100\"\n",
        )
        .expect("lists and numbers");
        assert_eq!(s.trusted_proxies.len(), 2);
        assert_eq!(s.workers, Some(2));
        assert_eq!(
            s.metrics_bind,
            Some("127.0.0.1:9100".parse().expect("addr"))
        );
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "workers = 2\ncode_ttl = \"30s\"\n").expect("write");
        let s = Settings::load(Some(&path), &env(&[("TESSERA_WORKERS", "3")])).expect("loads");
        assert_eq!(s.workers, Some(3));
        assert_eq!(s.code_ttl, Duration::from_secs(30));
        let e =
            Settings::load(Some(&path), &env(&[("TESSERA_CODE_TTL", "1h")])).expect_err("bounds");
        assert_eq!(
            e.to_string(),
            "invalid TESSERA_CODE_TTL: must be between 10s and 10m"
        );
    }

    #[test]
    fn metrics_settings() {
        let load =
            |pairs: &[(&str, &str)]| Settings::load(Some(Path::new("/dev/null")), &env(pairs));
        let e = load(&[("TESSERA_METRICS_TOKEN", "short")]).expect_err("too short");
        assert!(
            !e.to_string().contains("short"),
            "the value is never shown: {e}"
        );
        let s = load(&[
            ("TESSERA_METRICS_TOKEN", "0123456789abcdef"),
            ("TESSERA_METRICS_BIND", ""),
        ])
        .expect("loads");
        assert_eq!(s.metrics_token.as_ref().map(|t| t.expose().len()), Some(16));
        assert_eq!(s.metrics_bind, None);
        assert!(load(&[("TESSERA_METRICS_BIND", "nowhere")]).is_err());
    }

    #[test]
    fn the_key_file_lives_beside_the_database() {
        let load = |pairs: &[(&str, &str)]| {
            Settings::load(Some(Path::new("/dev/null")), &env(pairs))
                .expect("loads")
                .key_file_path()
        };
        assert_eq!(load(&[]), PathBuf::from("tessera.key"));
        assert_eq!(
            load(&[("TESSERA_DATABASE_URL", "sqlite://data/x.db")]),
            PathBuf::from("data/tessera.key")
        );
        assert_eq!(
            load(&[("TESSERA_DATABASE_URL", "sqlite:///var/lib/t/x.db")]),
            PathBuf::from("/var/lib/t/tessera.key")
        );
        let pg = ("TESSERA_DATABASE_URL", "postgres://u@db/x");
        assert_eq!(load(&[pg]), PathBuf::from("./tessera.key"));
        assert_eq!(
            load(&[pg, ("TESSERA_DATA_DIR", "/srv/t")]),
            PathBuf::from("/srv/t/tessera.key")
        );
        assert_eq!(
            load(&[pg, ("TESSERA_KEY_FILE", "/k/my.key")]),
            PathBuf::from("/k/my.key")
        );
    }

    /// The README's settings table is generated from [`SETTINGS`]. To update it after changing a row:
    /// `TESSERA_BLESS=1 cargo test --lib readme_settings_table`.
    #[test]
    fn readme_settings_table_is_generated() {
        const BEGIN: &str = "<!-- settings:begin -->\n";
        const END: &str = "<!-- settings:end -->";
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(&path).expect("README.md");
        let start = readme
            .find(BEGIN)
            .expect("the README has <!-- settings:begin -->")
            + BEGIN.len();
        let end = start
            + readme[start..]
                .find(END)
                .expect("and <!-- settings:end -->");
        let table = settings_markdown();
        if readme[start..end] == table {
            return;
        }
        if std::env::var_os("TESSERA_BLESS").is_some() {
            let updated = format!("{}{table}{}", &readme[..start], &readme[end..]);
            std::fs::write(&path, updated).expect("write README.md");
            return;
        }
        panic!(
            "the README's settings table differs from the settings in src/config.rs; \
             regenerate it with `TESSERA_BLESS=1 cargo test --lib readme_settings_table`"
        );
    }

    #[test]
    fn postgres_password_is_redacted() {
        let u = DatabaseUrl::parse("postgres://u:hunter2@db/x?password=hunter3").expect("valid");
        let shown = u.to_string();
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("x", "90d").ok(),
            Some(Duration::from_secs(90 * 86400))
        );
        assert_eq!(
            parse_duration("x", "15").ok(),
            Some(Duration::from_secs(15))
        );
        assert!(parse_duration("x", "1w").is_err());
    }
}
