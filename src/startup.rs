//! The only wiring point: key material, pool, migrations, listener, and `App::configure(feature::configure)`.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use crate::config::Settings;
use crate::crypto::{Hasher, KeyMaterial, SecretBytes};
use crate::db::{self, Pool};
use crate::error::AppError;
use crate::jwt::Keyring;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::state::AppState;
use crate::{accounts, jwt, oauth, ops, web as pages};

/// How long a client may take to send a request's headers (actix's default, stated here).
const HEADERS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the server could not start. `Display` is the one line printed before exiting with code 2.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("TESSERA_DATABASE_URL: {0}")]
    Database(String),
    #[error("TESSERA_KEY_FILE: {0}")]
    KeyFile(String),
    #[error("TESSERA_MASTER_KEY: {0}")]
    Keys(String),
    /// The key material is not the one the database was created with (one line: which key, from
    /// where, what to do).
    #[error("{0}")]
    KeyMismatch(String),
    #[error("TESSERA_BIND: cannot listen on {addr} ({reason})")]
    Bind { addr: String, reason: String },
}

impl From<crate::db::DbError> for StartupError {
    fn from(e: crate::db::DbError) -> Self {
        Self::Database(e.to_string())
    }
}

/// A bound, migrated, ready-to-run server.
pub struct Application {
    port: u16,
    pool: Pool,
    server: Server,
    state: web::Data<Node>,
    /// The `/metrics` listener of its own (`TESSERA_METRICS_BIND`) and its port.
    metrics: Option<(Server, u16)>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Connects, migrates and binds. Blocking work (connecting, migrating) runs off the async threads.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(settings.bind).map_err(|e| StartupError::Bind {
            addr: settings.bind.to_string(),
            reason: e.to_string(),
        })?;
        Self::build_with_listener(settings, listener).await
    }

    /// As [`Application::build`], on a listener the caller bound (tests bind port 0 first so the
    /// issuer can name the real port).
    pub async fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> Result<Self, StartupError> {
        let pool = open_and_migrate(&settings).await?;
        let keys = {
            let (pool, settings) = (pool.clone(), settings.clone());
            web::block(move || {
                let mut conn = pool
                    .get()
                    .map_err(|e| StartupError::Database(e.to_string()))?;
                resolve_keys(&mut conn, &settings)
            })
            .await
            .map_err(|e| StartupError::Database(e.to_string()))??
        };
        let keyring = prepare(&pool, &settings, keys.master_key.clone()).await?;
        let metrics = Metrics::new();
        metrics.name_purged_tables(crate::janitor::TABLES.iter().map(|t| t.name()));
        let limits = crate::ratelimit::RateLimits::new(&settings)?.counted_in(&metrics);
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let bus = match settings.database_url {
            crate::config::DatabaseUrl::Postgres(_) => crate::invalidate::Bus::new(),
            crate::config::DatabaseUrl::Sqlite(_) => crate::invalidate::Bus::disabled(),
        };
        let core = web::Data::new(AppState {
            hasher: Hasher::new(&keys.pepper),
            master_key: keys.master_key.clone(),
            bus,
            settings: settings.clone(),
            pool: pool.clone(),
            metrics,
        });
        let state = web::Data::new(build_node(core, limits, keyring));
        let limit = settings.body_limit;
        let edge = web::Data::new(crate::request::Edge::new(&settings, &state.metrics));
        let app_state = state.clone();
        // A sign-out (at /logout or /oauth/logout) reaches the back-channels of the clients the
        // session signed in to.
        let on_sign_out = {
            let oauth = state.oauth.clone();
            web::Data::new(accounts::OnSignOut(std::sync::Arc::new(
                move |sid, user_id| {
                    actix_web::rt::spawn(oauth::logout::session_ended(oauth.clone(), sid, user_id));
                },
            )))
        };
        // With a listener of its own, `/metrics` is not routed here (404 like any unknown path).
        let ops_routes: fn(&mut web::ServiceConfig) = match settings.metrics_bind {
            Some(_) => ops::configure_readiness,
            None => ops::configure,
        };
        let mut server = HttpServer::new(move || {
            App::new()
                .configure(|cfg| {
                    state.register(cfg);
                    cfg.app_data(state.clone());
                })
                .app_data(edge.clone())
                .app_data(web::Data::new(accounts::AppOfReturnTo(
                    oauth::app_named_by_return_to,
                )))
                .app_data(on_sign_out.clone())
                // Extractor failures are turned into the JSON error shape by `request::RequestScope`.
                .app_data(web::JsonConfig::default().limit(limit))
                .app_data(web::FormConfig::default().limit(limit))
                .app_data(web::PayloadConfig::new(limit))
                // Hot paths first: routing walks the routes in this order, and each route passed
                // costs a pattern match (a few hundred instructions, static or not). `/healthz`
                // leads: it is the load balancer's probe and the benchmarks' baseline.
                .configure(ops::configure_liveness)
                .configure(crate::gateway::configure)
                .configure(crate::apikeys::configure_verify)
                // OAuth's routes are all static: before the API keys' dynamic admin routes
                // (`/v1/keys/{id}`…), whose patterns the token endpoint would otherwise try first.
                .configure(oauth::configure)
                .configure(ops_routes)
                .configure(crate::apikeys::configure)
                .configure(jwt::configure)
                .configure(accounts::configure)
                .configure(pages::configure)
                .configure(crate::openapi::configure)
                // Last, a resource without routes for every path: actix answers it 405 with `Allow`
                // naming the methods of the resources above whose path matched (a wrong method), or
                // 405 without `Allow` when none did; `request::RequestScope` renders these as JSON 405
                // and 404. The default service answers what that pattern cannot match (`OPTIONS *`).
                .service(web::resource("/{unrouted:.*}"))
                .default_service(web::to(|| async {
                    Err::<actix_web::HttpResponse, _>(AppError::NotFound)
                }))
                // Outermost: request id, language, security headers and the JSON error shape on
                // every response the app gives, errors included.
                .wrap(crate::request::RequestScope)
        })
        // Headers must arrive within this (actix answers 408 and closes); the body has
        // TESSERA_BODY_TIMEOUT, enforced in `request::RequestScope`.
        .client_request_timeout(HEADERS_TIMEOUT)
        .max_connections(settings.max_connections)
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        // Diesel work waits for one of the pool's connections and Argon2 for the password gate (one
        // hash per core) anyway; actix's default of 512 / cores threads per worker only made more
        // threads, each with its own malloc arena and stack, under bursts (issue 12, defect 10).
        .worker_max_blocking_threads(blocking_threads(&settings))
        // Signals are the binary's business (`cli::serve`: SIGINT and SIGTERM stop gracefully, a
        // second SIGINT forces); actix's own handlers made Ctrl-C a forced stop, and in tests they
        // would catch the test runner's signals.
        .disable_signals()
        .listen(listener)
        .map_err(|e| StartupError::Bind {
            addr: settings.bind.to_string(),
            reason: e.to_string(),
        })?;
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let metrics = metrics_server(&settings, &app_state)?;
        Ok(Self {
            port,
            pool,
            server: server.run(),
            state: app_state,
            metrics,
        })
    }

    /// The port of the `/metrics` listener, when `TESSERA_METRICS_BIND` gives it one of its own.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port)| *port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Stops the server: `graceful` stops accepting and lets requests in flight finish (up to
    /// `TESSERA_SHUTDOWN_TIMEOUT`); otherwise open connections are closed at once.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped through [`Application::handle`]; see [`Application::run_until`].
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(std::future::pending()).await.map(|_| ())
    }

    /// Serves until the server is stopped through [`Application::handle`] (it then drains the
    /// requests in flight) or until `force` completes (it then stops waiting for them).
    /// The background jobs (key reload and rotation schedule, janitor) run alongside.
    /// After the server stops, the API-key usage counted in memory is written (nothing is lost on a
    /// graceful stop, nor on a forced one when the database answers).
    pub async fn run_until(
        self,
        force: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<Stopped> {
        use futures_util::future::{Either, select};
        let jobs = crate::janitor::spawn(self.state.clone());
        // Dropped with this future, however it ends: the listener thread stops.
        let _listening = crate::janitor::listen(self.state.clone());
        // The metrics listener runs beside the server and stops when it has stopped.
        let metrics = self.metrics.map(|(server, _)| {
            let handle = server.handle();
            actix_web::rt::spawn(server);
            handle
        });
        let result = match select(self.server, std::pin::pin!(force)).await {
            Either::Left((result, _)) => result.map(|()| Stopped::Gracefully),
            Either::Right(((), _)) => Ok(Stopped::Forced),
        };
        if let Some(handle) = metrics {
            handle
                .stop(result.as_ref().is_ok_and(|s| *s == Stopped::Gracefully))
                .await;
        }
        for job in jobs {
            job.abort();
        }
        crate::janitor::flush_usage(&self.state).await;
        result
    }
}

/// How [`Application::run_until`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every request in flight was answered (or `TESSERA_SHUTDOWN_TIMEOUT` ran out).
    Gracefully,
    /// Told to stop waiting for requests in flight.
    Forced,
}

/// The `/metrics` listener of its own (`TESSERA_METRICS_BIND`): one worker, `/metrics` only (any
/// other path 404s), no signal handling of its own (it stops when the main server has stopped).
fn metrics_server(
    settings: &Settings,
    state: &web::Data<Node>,
) -> Result<Option<(Server, u16)>, StartupError> {
    let Some(addr) = settings.metrics_bind else {
        return Ok(None);
    };
    let failed = |e: std::io::Error| {
        StartupError::Config(crate::config::ConfigError::new(
            "TESSERA_METRICS_BIND",
            format!("cannot listen on {addr} ({e})"),
        ))
    };
    let listener = TcpListener::bind(addr).map_err(failed)?;
    let port = listener.local_addr().map_err(failed)?.port();
    tracing::info!(address = %format!("{}:{port}", addr.ip()), "serving /metrics on its own listener");
    let state = state.clone();
    let edge = web::Data::new(crate::request::Edge::new(settings, &state.metrics));
    let server = HttpServer::new(move || {
        App::new()
            .configure(|cfg| {
                state.register(cfg);
                cfg.app_data(state.clone());
            })
            .app_data(edge.clone())
            .configure(ops::configure_metrics)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(AppError::NotFound)
            }))
            .wrap(crate::request::RequestScope)
    })
    .workers(1)
    .client_request_timeout(HEADERS_TIMEOUT)
    .shutdown_timeout(settings.shutdown_timeout.as_secs())
    .disable_signals()
    .listen(listener)
    .map_err(failed)?
    .run();
    Ok(Some((server, port)))
}

/// Threads of each worker's blocking pool: as many as the database pool has connections (at least 2).
fn blocking_threads(settings: &Settings) -> usize {
    (settings.database_pool_size as usize).max(2)
}

/// What a fresh install needs before serving: the default API with its scopes, and a signing key.
async fn prepare(
    pool: &Pool,
    settings: &Settings,
    master: SecretBytes,
) -> Result<Keyring, StartupError> {
    let pool = pool.clone();
    let issuer = settings.issuer_str().to_owned();
    let alg = crate::jwt::SigningAlg::of(settings);
    web::block(move || -> Result<Keyring, StartupError> {
        let mut conn = pool
            .get()
            .map_err(|e| StartupError::Database(e.to_string()))?;
        // Nodes starting together on a fresh database race to create it: the loser's insert conflicts,
        // and its second look finds the winner's rows.
        crate::apis::ensure_default_api(&mut conn, &issuer)
            .or_else(|_| crate::apis::ensure_default_api(&mut conn, &issuer))
            .map_err(|e| StartupError::Database(format!("cannot create the default API: {e}")))?;
        Keyring::load_or_create(&mut conn, master, alg)
            .map_err(|e| StartupError::Keys(e.to_string()))
    })
    .await
    .map_err(|e| StartupError::Database(e.to_string()))?
}

/// Opens the pool and applies pending migrations, off the async threads.
pub async fn open_and_migrate(settings: &Settings) -> Result<Pool, StartupError> {
    let settings = settings.clone();
    web::block(move || connect_and_migrate_blocking(&settings))
        .await
        .map_err(|e| StartupError::Database(e.to_string()))?
}

/// Opens the pool and applies pending migrations (blocking).
pub fn connect_and_migrate_blocking(settings: &Settings) -> Result<Pool, StartupError> {
    let pool = db::connect(
        &settings.database_url,
        settings.database_pool_size,
        settings.database_timeout,
    )
    .map_err(StartupError::from)?;
    let mut conn = pool
        .get()
        .map_err(|e| StartupError::Database(e.to_string()))?;
    let applied = db::migrate(&mut conn).map_err(StartupError::from)?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "database migrated");
    }
    Ok(pool)
}

/// One migrated connection for a management command (no pool, no background threads).
pub fn open_one_and_migrate(settings: &Settings) -> Result<db::DbConn, StartupError> {
    let mut conn = db::connect_one(&settings.database_url).map_err(StartupError::from)?;
    db::migrate(&mut conn).map_err(StartupError::from)?;
    Ok(conn)
}

/// One migrated connection and the key material for a management command, checked against the
/// database's fingerprint like `serve` does.
pub fn open_for_command(settings: &Settings) -> Result<(db::DbConn, KeyMaterial), StartupError> {
    let mut conn = open_one_and_migrate(settings)?;
    let keys = resolve_keys(&mut conn, settings)?;
    Ok((conn, keys))
}

/// Where each key came from, for messages.
enum KeySource {
    Setting(&'static str),
    File(std::path::PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Setting(name) => write!(f, "from {name}"),
            Self::File(path) => write!(f, "in the key file {}", path.display()),
        }
    }
}

/// The pepper and master key for the database behind `conn`: from settings when given, else from the
/// key file ([`Settings::key_file_path`]). The key file is created only for a database that holds no
/// data yet; the database records the keys' fingerprints the first time and refuses other keys after.
pub fn resolve_keys(
    conn: &mut db::DbConn,
    settings: &Settings,
) -> Result<KeyMaterial, StartupError> {
    let recorded = read_fingerprint(conn)?;
    let in_use = recorded.is_some() || holds_data(conn)?;
    let path = settings.key_file_path();
    // Shown absolute: a relative path means little to someone in another directory.
    let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    let from_file = if settings.secret_pepper.is_some() && settings.master_key.is_some() {
        None
    } else {
        match crate::crypto::read_key_file(&path)
            .map_err(|e| StartupError::KeyFile(e.to_string()))?
        {
            Some(keys) => Some(keys),
            None if in_use => {
                return Err(StartupError::KeyFile(format!(
                    "no key file at {}, but the database already holds data created with other \
                     keys; point TESSERA_KEY_FILE at the original file",
                    shown.display()
                )));
            }
            None => {
                let (keys, created) = crate::crypto::create_key_file(&path)
                    .map_err(|e| StartupError::KeyFile(e.to_string()))?;
                if created {
                    tracing::warn!(
                        key_file = %shown.display(),
                        "generated new key material: back this file up (losing it invalidates \
                         every session, client secret and API key); nodes sharing a database must \
                         share TESSERA_SECRET_PEPPER and TESSERA_MASTER_KEY instead"
                    );
                }
                Some(keys)
            }
        }
    };
    let pick = |given: &Option<SecretBytes>, name: &'static str, file: Option<SecretBytes>| match (
        given, file,
    ) {
        (Some(k), _) => (k.clone(), KeySource::Setting(name)),
        (None, Some(k)) => (k, KeySource::File(shown.clone())),
        (None, None) => unreachable!("the key file is read when a key is not given"),
    };
    let (file_pepper, file_master) = match from_file {
        Some(k) => (Some(k.pepper), Some(k.master_key)),
        None => (None, None),
    };
    let (pepper, pepper_from) = pick(
        &settings.secret_pepper,
        "TESSERA_SECRET_PEPPER",
        file_pepper,
    );
    let (master_key, master_from) = pick(&settings.master_key, "TESSERA_MASTER_KEY", file_master);
    let keys = KeyMaterial { pepper, master_key };
    let recorded = match recorded {
        Some(r) => r,
        None => record_fingerprint(conn, &keys)?,
    };
    let (pepper_print, master_print) = keys.fingerprints();
    let wrong_pepper = recorded.0 != pepper_print;
    let wrong_master = recorded.1 != master_print;
    if !wrong_pepper && !wrong_master {
        return Ok(keys);
    }
    let mut what = Vec::new();
    if wrong_pepper {
        what.push(format!("the secret pepper ({pepper_from})"));
    }
    if wrong_master {
        what.push(format!("the master key ({master_from})"));
    }
    let fix = match (&pepper_from, &master_from) {
        (KeySource::Setting(_), KeySource::Setting(_)) => {
            "set TESSERA_SECRET_PEPPER and TESSERA_MASTER_KEY to the keys the database was created with"
        }
        _ => {
            "point TESSERA_KEY_FILE at the key file the database was created with (or set \
             TESSERA_SECRET_PEPPER and TESSERA_MASTER_KEY to its keys)"
        }
    };
    Err(StartupError::KeyMismatch(format!(
        "{} {} not the one this database was created with; {fix}",
        what.join(" and "),
        if what.len() == 1 { "is" } else { "are" },
    )))
}

/// The recorded fingerprints (pepper, master key), if any.
fn read_fingerprint(conn: &mut db::DbConn) -> Result<Option<(String, String)>, StartupError> {
    use crate::db::schema::key_fingerprint::dsl as kf;
    use diesel::prelude::*;
    kf::key_fingerprint
        .select((kf::pepper, kf::master_key))
        .filter(kf::id.eq(1))
        .get_result::<(String, String)>(conn)
        .optional()
        .map_err(|e| StartupError::Database(format!("cannot read the key fingerprint: {e}")))
}

/// Records the fingerprints of `keys`; returns what the database holds after (another node starting
/// at the same moment may have recorded its own first).
fn record_fingerprint(
    conn: &mut db::DbConn,
    keys: &KeyMaterial,
) -> Result<(String, String), StartupError> {
    use crate::db::schema::key_fingerprint::dsl as kf;
    use diesel::prelude::*;
    let (pepper, master_key) = keys.fingerprints();
    // A conflict means another node won the race: its row is read back below.
    let _ = diesel::insert_into(kf::key_fingerprint)
        .values((
            kf::id.eq(1),
            kf::pepper.eq(&pepper),
            kf::master_key.eq(&master_key),
            kf::recorded_at.eq(db::now()),
        ))
        .execute(conn);
    read_fingerprint(conn)?
        .ok_or_else(|| StartupError::Database("cannot record the key fingerprint".to_owned()))
}

/// True when the database holds anything made with the keys: signing keys (encrypted with the master
/// key), users, clients or API keys (their secrets hashed with the pepper). A database from before
/// fingerprints were recorded is recognised by this.
#[allow(clippy::disallowed_methods)] // any one row of many: LIMIT 1 is the point (run once, at start)
fn holds_data(conn: &mut db::DbConn) -> Result<bool, StartupError> {
    use crate::db::schema::{api_keys, oauth_clients, signing_keys, users};
    use diesel::prelude::*;
    let err =
        |e: diesel::result::Error| StartupError::Database(format!("cannot read the database: {e}"));
    let any = signing_keys::table
        .select(signing_keys::kid)
        .first::<String>(conn)
        .optional()
        .map_err(err)?
        .is_some()
        || users::table
            .select(users::id)
            .first::<String>(conn)
            .optional()
            .map_err(err)?
            .is_some()
        || oauth_clients::table
            .select(oauth_clients::id)
            .first::<String>(conn)
            .optional()
            .map_err(err)?
            .is_some()
        || api_keys::table
            .select(api_keys::id)
            .first::<String>(conn)
            .optional()
            .map_err(err)?
            .is_some();
    Ok(any)
}

/// Every feature's state, each around the shared [`AppState`].
fn build_node(
    core: web::Data<AppState>,
    limits: crate::ratelimit::RateLimits,
    keyring: crate::jwt::Keyring,
) -> Node {
    let settings = &core.settings;
    let (metrics, bus) = (&core.metrics, &core.bus);
    let ttl = settings.api_key_cache_ttl;
    let limits = web::Data::new(limits);
    let keyring = web::Data::new(keyring);
    let accounts = web::Data::new(crate::accounts::Accounts {
        core: core.clone(),
        password_gate: crate::accounts::password::PasswordGate::for_this_machine(),
        limits: limits.clone(),
    });
    let apis = web::Data::new(crate::apis::Apis {
        core: core.clone(),
        api_cache: crate::apis::ApiCache::new(ttl, 1_000)
            .publishing(crate::janitor::APIS, bus)
            .counted_in(metrics),
    });
    let keys = web::Data::new(crate::apikeys::ApiKeys {
        core: core.clone(),
        limits: limits.clone(),
        key_cache: crate::apikeys::cache::KeyCache::new(ttl, crate::apikeys::cache::CAPACITY)
            .publishing(crate::janitor::KEYS, bus)
            .counted_in(metrics),
        usage: Default::default(),
    });
    let oauth = web::Data::new(oauth::OAuth {
        core: core.clone(),
        keyring: keyring.clone(),
        limits: limits.clone(),
        keys: keys.clone(),
        apis: apis.clone(),
        client_cache: oauth::ClientCache::new(ttl, crate::cache::CAPACITY)
            .publishing(crate::janitor::CLIENTS, bus)
            .counted_in(metrics),
        token_cache: crate::jwt::TokenCache::new(ttl, crate::cache::CAPACITY)
            .publishing(crate::janitor::TOKENS, bus)
            .counted_in(metrics),
        jwks_cache: oauth::JwksCache::new().counted_in(metrics),
        usage: crate::apikeys::usage::Usage::new(crate::apikeys::usage::Meter::Clients),
        backchannel: Default::default(),
    });
    Node {
        core,
        limits,
        keyring,
        accounts,
        apis,
        keys,
        oauth,
    }
}
