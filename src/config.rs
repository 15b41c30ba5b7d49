//! Settings: defaults, then an optional `tessera.toml`, then `TESSERA_*` environment variables, validated once at start.

use std::collections::HashMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

/// A setting that failed validation. `Display` is the one line printed before exiting with code 2.
#[derive(Debug, thiserror::Error)]
#[error("invalid {setting}: {message}")]
pub struct ConfigError {
    pub setting: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

/// Bytes that must never be printed. `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([redacted; {}])", self.0.len())
    }
}

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

/// The algorithm of the keys Tessera generates to sign access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    EdDSA,
    ES256,
    RS256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EdDSA" | "eddsa" | "Ed25519" | "ed25519" => Some(Self::EdDSA),
            "ES256" | "es256" => Some(Self::ES256),
            "RS256" | "rs256" => Some(Self::RS256),
            _ => None,
        }
    }
}

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
    pub key_file: PathBuf,
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
    pub signing_alg: SigningAlg,
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
    /// API key types: the built-in `sk` and `rk`, and the operator's own from `[key_types.NAME]`.
    pub key_types: Vec<KeyType>,
    /// Where API keys are accepted: `bearer`, `x-api-key`, `token`, `query`, `body`.
    pub api_key_presentations: Vec<Presentation>,
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
    /// What rate limits do while Redis is unreachable.
    pub redis_failure_policy: crate::ratelimit::FailurePolicy,
    /// A listener of its own for `/metrics` (then the main listener answers 404 for it).
    pub metrics_bind: Option<SocketAddr>,
    /// When set, `/metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<SecretBytes>,
}

/// A kind of API key: its prefix, what it may be allowed, and how long it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyType {
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

impl KeyType {
    pub fn builtin() -> Vec<KeyType> {
        vec![
            KeyType {
                name: "sk".into(),
                prefix: "sk_".into(),
                scopes: None,
                publishable: false,
                default_ttl: None,
                max_ttl: None,
            },
            KeyType {
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

/// A place an API key may be presented in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presentation {
    Bearer,
    XApiKey,
    Token,
    Query,
    Body,
}

impl Presentation {
    pub const ALL: [Presentation; 5] = [
        Presentation::Bearer,
        Presentation::XApiKey,
        Presentation::Token,
        Presentation::Query,
        Presentation::Body,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "bearer",
            Self::XApiKey => "x-api-key",
            Self::Token => "token",
            Self::Query => "query",
            Self::Body => "body",
        }
    }
}

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

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: Url::parse("http://127.0.0.1:8080").expect("static URL is valid"),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: DatabaseUrl::Sqlite(PathBuf::from("tessera.db")),
            database_pool_size: 10,
            database_timeout: Duration::from_secs(5),
            redis_url: None,
            secret_pepper: None,
            master_key: None,
            key_file: PathBuf::from("tessera.key"),
            log_format: LogFormat::Pretty,
            log_level: "info".to_owned(),
            body_limit: 64 * 1024,
            body_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            shutdown_timeout: Duration::from_secs(10),
            workers: None,
            session_ttl: Duration::from_secs(12 * 3600),
            signing_alg: SigningAlg::EdDSA,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 86_400),
            code_ttl: Duration::from_secs(60),
            clock_skew: Duration::from_secs(60),
            signing_key_rotation: Duration::from_secs(30 * 86_400),
            signing_key_lead_time: Duration::from_secs(86_400),
            key_reload_interval: Duration::from_secs(30),
            purge_interval: Duration::from_secs(300),
            purge_batch_size: 1000,
            introspection_rate_limit: 6000,
            key_types: KeyType::builtin(),
            api_key_presentations: Presentation::ALL.to_vec(),
            api_key_rate_limit: 3000,
            ip_rate_limit: 500,
            usage_flush_interval: Duration::from_secs(5),
            api_key_cache_ttl: Duration::from_secs(2),
            auth_rate_limit: 50,
            token_rate_limit: 6000,
            trusted_proxies: Vec::new(),
            redis_failure_policy: crate::ratelimit::FailurePolicy::Local,
            metrics_bind: None,
            metrics_token: None,
        }
    }
}

/// The settings file: every key optional, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    issuer: Option<String>,
    bind: Option<String>,
    database_url: Option<String>,
    database_pool_size: Option<toml::Value>,
    database_timeout: Option<toml::Value>,
    redis_url: Option<String>,
    secret_pepper: Option<String>,
    master_key: Option<String>,
    key_file: Option<String>,
    log: Option<String>,
    log_level: Option<String>,
    body_limit: Option<toml::Value>,
    body_timeout: Option<toml::Value>,
    max_connections: Option<toml::Value>,
    shutdown_timeout: Option<toml::Value>,
    workers: Option<toml::Value>,
    session_ttl: Option<toml::Value>,
    signing_alg: Option<String>,
    access_token_ttl: Option<toml::Value>,
    refresh_token_ttl: Option<toml::Value>,
    code_ttl: Option<toml::Value>,
    clock_skew: Option<toml::Value>,
    signing_key_rotation: Option<toml::Value>,
    signing_key_lead_time: Option<toml::Value>,
    key_reload_interval: Option<toml::Value>,
    purge_interval: Option<toml::Value>,
    purge_batch_size: Option<toml::Value>,
    introspection_rate_limit: Option<toml::Value>,
    api_key_presentations: Option<String>,
    api_key_rate_limit: Option<toml::Value>,
    ip_rate_limit: Option<toml::Value>,
    usage_flush_interval: Option<toml::Value>,
    api_key_cache_ttl: Option<toml::Value>,
    auth_rate_limit: Option<toml::Value>,
    token_rate_limit: Option<toml::Value>,
    trusted_proxies: Option<String>,
    redis_failure_policy: Option<String>,
    metrics_bind: Option<String>,
    metrics_token: Option<String>,
    key_types: Option<HashMap<String, KeyTypeFile>>,
}

/// The names a setting is known by, in the file and in the environment.
const KEYS: &[&str] = &[
    "issuer",
    "bind",
    "database_url",
    "database_pool_size",
    "database_timeout",
    "redis_url",
    "secret_pepper",
    "master_key",
    "key_file",
    "log",
    "log_level",
    "body_limit",
    "body_timeout",
    "max_connections",
    "shutdown_timeout",
    "workers",
    "session_ttl",
    "signing_alg",
    "access_token_ttl",
    "refresh_token_ttl",
    "code_ttl",
    "clock_skew",
    "signing_key_rotation",
    "signing_key_lead_time",
    "key_reload_interval",
    "purge_interval",
    "purge_batch_size",
    "introspection_rate_limit",
    "api_key_presentations",
    "api_key_rate_limit",
    "ip_rate_limit",
    "usage_flush_interval",
    "api_key_cache_ttl",
    "auth_rate_limit",
    "token_rate_limit",
    "trusted_proxies",
    "redis_failure_policy",
    "metrics_bind",
    "metrics_token",
];

fn env_name(key: &str) -> String {
    format!("TESSERA_{}", key.to_ascii_uppercase())
}

impl Settings {
    /// Loads settings from `config_file` (or `./tessera.toml` when present) and `env`.
    ///
    /// An explicitly named file that cannot be read is an error; a missing default file is not.
    pub fn load(
        config_file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let (path, explicit) = match config_file {
            Some(p) => (Some(p.to_path_buf()), true),
            None => match env.get("TESSERA_CONFIG") {
                Some(p) => (Some(PathBuf::from(p)), true),
                None => (Some(PathBuf::from("tessera.toml")), false),
            },
        };
        let mut raw: HashMap<&'static str, (String, String)> = HashMap::new();
        let mut key_types = KeyType::builtin();
        if let Some(path) = path {
            let setting = "TESSERA_CONFIG";
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let file: FileSettings = toml::from_str(&text).map_err(|e| {
                        ConfigError::new(
                            setting,
                            format!("{}: {}", path.display(), e.message().trim()),
                        )
                    })?;
                    let mut file = file;
                    if let Some(types) = file.key_types.take() {
                        key_types = parse_key_types(types, &path)?;
                    }
                    file.collect_into(&mut raw, &path)?;
                }
                Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ConfigError::new(
                        setting,
                        format!("cannot read {}: {e}", path.display()),
                    ));
                }
            }
        }
        for key in KEYS {
            let name = env_name(key);
            if let Some(v) = env.get(&name) {
                raw.insert(key, (name, v.clone()));
            }
        }
        let mut settings = Self::from_raw(raw)?;
        settings.key_types = key_types;
        Ok(settings)
    }

    fn from_raw(raw: HashMap<&'static str, (String, String)>) -> Result<Self, ConfigError> {
        let mut s = Self::default();
        let get = |key: &str| raw.get(key).map(|(name, v)| (name.as_str(), v.trim()));
        if let Some((name, v)) = get("issuer") {
            s.issuer = parse_issuer(name, v)?;
        }
        if let Some((name, v)) = get("bind") {
            s.bind = parse_bind(name, v)?;
        }
        if let Some((_, v)) = get("database_url") {
            s.database_url = DatabaseUrl::parse(v).map_err(|mut e| {
                e.setting = raw["database_url"].0.clone();
                e
            })?;
        }
        if let Some((name, v)) = get("database_pool_size") {
            s.database_pool_size = parse_number(name, v, 1, 1000)? as u32;
        }
        if let Some((name, v)) = get("database_timeout") {
            s.database_timeout = parse_duration(name, v)?;
        }
        if let Some((name, v)) = get("redis_url")
            && !v.is_empty()
        {
            let url = Url::parse(v)
                .map_err(|e| ConfigError::new(name, format!("not a valid URL ({e})")))?;
            if !matches!(url.scheme(), "redis" | "rediss") {
                return Err(ConfigError::new(
                    name,
                    "expected redis://HOST:PORT or rediss://…",
                ));
            }
            s.redis_url = Some(url);
        }
        if let Some((name, v)) = get("secret_pepper")
            && !v.is_empty()
        {
            if v.len() < 32 {
                return Err(ConfigError::new(
                    name,
                    "must be at least 32 characters of random data (e.g. `openssl rand -hex 32`)",
                ));
            }
            s.secret_pepper = Some(SecretBytes::new(v.as_bytes().to_vec()));
        }
        if let Some((name, v)) = get("master_key")
            && !v.is_empty()
        {
            let key = crate::crypto::unhex(v)
                .filter(|k| k.len() == 32)
                .ok_or_else(|| {
                    ConfigError::new(
                        name,
                        "must be 64 hex characters (e.g. `openssl rand -hex 32`)",
                    )
                })?;
            s.master_key = Some(SecretBytes::new(key));
        }
        if let Some((name, v)) = get("key_file") {
            if v.is_empty() {
                return Err(ConfigError::new(name, "must be a file path"));
            }
            s.key_file = PathBuf::from(v);
        }
        if let Some((name, v)) = get("log") {
            s.log_format = match v.to_ascii_lowercase().as_str() {
                "pretty" | "text" => LogFormat::Pretty,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError::new(
                        name,
                        format!("unknown log format '{other}' (expected pretty or json)"),
                    ));
                }
            };
        }
        if let Some((name, v)) = get("log_level") {
            tracing_subscriber::EnvFilter::try_new(v)
                .map_err(|e| ConfigError::new(name, format!("not a log filter ({e})")))?;
            s.log_level = v.to_owned();
        }
        if let Some((name, v)) = get("body_limit") {
            s.body_limit = parse_number(name, v, 1024, 64 * 1024 * 1024)? as usize;
        }
        if let Some((name, v)) = get("max_connections") {
            s.max_connections = parse_number(name, v, 1, 1_000_000)? as usize;
        }
        if let Some((name, v)) = get("body_timeout") {
            s.body_timeout = parse_duration(name, v)?;
            if s.body_timeout < Duration::from_secs(1) || s.body_timeout > Duration::from_secs(600)
            {
                return Err(ConfigError::new(name, "must be between 1s and 600s"));
            }
        }
        if let Some((name, v)) = get("shutdown_timeout") {
            s.shutdown_timeout = parse_duration(name, v)?;
        }
        if let Some((name, v)) = get("workers") {
            s.workers = Some(parse_number(name, v, 1, 1024)? as usize);
        }
        if let Some((name, v)) = get("session_ttl") {
            s.session_ttl = parse_duration(name, v)?;
            if s.session_ttl < Duration::from_secs(60) {
                return Err(ConfigError::new(name, "must be at least 60s"));
            }
        }
        if let Some((name, v)) = get("signing_alg") {
            s.signing_alg = SigningAlg::parse(v).ok_or_else(|| {
                ConfigError::new(
                    name,
                    format!("unknown algorithm '{v}' (expected EdDSA, ES256 or RS256)"),
                )
            })?;
        }
        for (key, slot, min, max) in [
            ("access_token_ttl", &mut s.access_token_ttl, 30, 86_400),
            (
                "refresh_token_ttl",
                &mut s.refresh_token_ttl,
                60,
                365 * 86_400,
            ),
            ("code_ttl", &mut s.code_ttl, 10, 600),
            ("clock_skew", &mut s.clock_skew, 0, 600),
            (
                "signing_key_rotation",
                &mut s.signing_key_rotation,
                3600,
                365 * 86_400,
            ),
            (
                "signing_key_lead_time",
                &mut s.signing_key_lead_time,
                0,
                30 * 86_400,
            ),
            ("key_reload_interval", &mut s.key_reload_interval, 1, 3600),
            ("purge_interval", &mut s.purge_interval, 1, 86_400),
            ("usage_flush_interval", &mut s.usage_flush_interval, 1, 3600),
            ("api_key_cache_ttl", &mut s.api_key_cache_ttl, 0, 5),
        ] {
            if let Some((name, v)) = get(key) {
                let d = parse_duration(name, v)?;
                if d < Duration::from_secs(min) || d > Duration::from_secs(max) {
                    return Err(ConfigError::new(
                        name,
                        format!("must be between {min}s and {max}s"),
                    ));
                }
                *slot = d;
            }
        }
        if s.signing_key_lead_time >= s.signing_key_rotation {
            let (name, _) = get("signing_key_lead_time")
                .or_else(|| get("signing_key_rotation"))
                .unwrap_or(("TESSERA_SIGNING_KEY_LEAD_TIME", ""));
            return Err(ConfigError::new(
                name,
                "the lead time must be shorter than the rotation interval",
            ));
        }
        if let Some((name, v)) = get("purge_batch_size") {
            s.purge_batch_size = parse_number(name, v, 1, 100_000)? as u32;
        }
        if let Some((name, v)) = get("api_key_presentations") {
            let mut list = Vec::new();
            for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let p = Presentation::ALL
                    .into_iter()
                    .find(|p| p.as_str().eq_ignore_ascii_case(item))
                    .ok_or_else(|| {
                        ConfigError::new(
                            name,
                            format!(
                                "unknown place '{item}' (expected bearer, x-api-key, token, query, body)"
                            ),
                        )
                    })?;
                if !list.contains(&p) {
                    list.push(p);
                }
            }
            s.api_key_presentations = list;
        }
        if let Some((name, v)) = get("redis_failure_policy") {
            use crate::ratelimit::FailurePolicy;
            s.redis_failure_policy = match v.to_ascii_lowercase().as_str() {
                "local" => FailurePolicy::Local,
                "allow" => FailurePolicy::Allow,
                "deny" => FailurePolicy::Deny,
                other => {
                    return Err(ConfigError::new(
                        name,
                        format!("unknown policy '{other}' (expected local, allow or deny)"),
                    ));
                }
            };
        }
        if let Some((name, v)) = get("auth_rate_limit") {
            s.auth_rate_limit = parse_number(name, v, 1, 100_000_000)? as u32;
        }
        if let Some((name, v)) = get("token_rate_limit") {
            s.token_rate_limit = parse_number(name, v, 1, 100_000_000)? as u32;
        }
        if let Some((name, v)) = get("trusted_proxies") {
            let mut nets = Vec::new();
            for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let net = item
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::new(name, format!("'{item}' is not an IP address or CIDR"))
                    })?;
                nets.push(net);
            }
            s.trusted_proxies = nets;
        }
        if let Some((name, v)) = get("api_key_rate_limit") {
            s.api_key_rate_limit = parse_number(name, v, 1, 100_000_000)? as u32;
        }
        if let Some((name, v)) = get("ip_rate_limit") {
            s.ip_rate_limit = parse_number(name, v, 1, 100_000_000)? as u32;
        }
        if let Some((name, v)) = get("introspection_rate_limit") {
            s.introspection_rate_limit = parse_number(name, v, 1, 10_000_000)? as u32;
        }
        if let Some((name, v)) = get("metrics_bind")
            && !v.is_empty()
        {
            s.metrics_bind = Some(parse_bind(name, v)?);
        }
        if let Some((name, v)) = get("metrics_token")
            && !v.is_empty()
        {
            if v.chars().count() < 16 {
                return Err(ConfigError::new(
                    name,
                    "must be at least 16 characters (e.g. `openssl rand -hex 16`)",
                ));
            }
            s.metrics_token = Some(SecretBytes::new(v.as_bytes().to_vec()));
        }
        Ok(s)
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

impl FileSettings {
    fn collect_into(
        self,
        raw: &mut HashMap<&'static str, (String, String)>,
        path: &Path,
    ) -> Result<(), ConfigError> {
        let scalar = |key: &str, v: toml::Value| -> Result<String, ConfigError> {
            match v {
                toml::Value::String(s) => Ok(s),
                toml::Value::Integer(i) => Ok(i.to_string()),
                other => Err(ConfigError::new(
                    format!("{key} in {}", path.display()),
                    format!("expected a number or a string, found {}", other.type_str()),
                )),
            }
        };
        let origin = |key: &str| format!("{key} in {}", path.display());
        let mut put = |key: &'static str, v: Option<String>| {
            if let Some(v) = v {
                raw.insert(key, (origin(key), v));
            }
        };
        put("issuer", self.issuer);
        put("bind", self.bind);
        put("database_url", self.database_url);
        put("redis_url", self.redis_url);
        put("secret_pepper", self.secret_pepper);
        put("master_key", self.master_key);
        put("key_file", self.key_file);
        put("log", self.log);
        put("log_level", self.log_level);
        put("signing_alg", self.signing_alg);
        put("api_key_presentations", self.api_key_presentations);
        put("trusted_proxies", self.trusted_proxies);
        put("redis_failure_policy", self.redis_failure_policy);
        put("metrics_bind", self.metrics_bind);
        put("metrics_token", self.metrics_token);
        for (key, v) in [
            ("database_pool_size", self.database_pool_size),
            ("database_timeout", self.database_timeout),
            ("body_limit", self.body_limit),
            ("body_timeout", self.body_timeout),
            ("max_connections", self.max_connections),
            ("shutdown_timeout", self.shutdown_timeout),
            ("workers", self.workers),
            ("session_ttl", self.session_ttl),
            ("access_token_ttl", self.access_token_ttl),
            ("refresh_token_ttl", self.refresh_token_ttl),
            ("code_ttl", self.code_ttl),
            ("clock_skew", self.clock_skew),
            ("signing_key_rotation", self.signing_key_rotation),
            ("signing_key_lead_time", self.signing_key_lead_time),
            ("key_reload_interval", self.key_reload_interval),
            ("purge_interval", self.purge_interval),
            ("purge_batch_size", self.purge_batch_size),
            ("introspection_rate_limit", self.introspection_rate_limit),
            ("api_key_rate_limit", self.api_key_rate_limit),
            ("ip_rate_limit", self.ip_rate_limit),
            ("usage_flush_interval", self.usage_flush_interval),
            ("api_key_cache_ttl", self.api_key_cache_ttl),
            ("auth_rate_limit", self.auth_rate_limit),
            ("token_rate_limit", self.token_rate_limit),
        ] {
            if let Some(v) = v {
                raw.insert(key, (origin(key), scalar(key, v)?));
            }
        }
        Ok(())
    }
}

/// The operator's key types: added to (or replacing, by name) the built-in `sk` and `rk`.
fn parse_key_types(
    types: HashMap<String, KeyTypeFile>,
    path: &Path,
) -> Result<Vec<KeyType>, ConfigError> {
    let mut out = KeyType::builtin();
    let mut names: Vec<_> = types.into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in names {
        let setting = format!("key_types.{name} in {}", path.display());
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
        let kt = KeyType {
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
