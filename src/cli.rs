//! The `tessera` command line: `serve`, `migrate`, `user`, `client`, `api`, `scope`, `signing-key`,
//! `purge`. Every command takes `--json`.

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::accounts::{self, Email, Password, UserView};
use crate::audit::{Actor, Origin};
use crate::config::{LogFormat, Settings};
use crate::crypto::{Hasher, KeyMaterial};
use crate::error::AppError;
use crate::oauth::{self, ClientInput};
use crate::startup::{self, Application, StartupError, Stopped};

#[derive(Debug, Parser)]
#[command(name = "tessera", version, about = "Tessera authorization server")]
pub struct Cli {
    /// Settings file (default: ./tessera.toml when present). Env: TESSERA_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations and serve HTTP until SIGINT/SIGTERM.
    Serve(JsonFlag),
    /// Apply pending database migrations and exit.
    Migrate(JsonFlag),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage APIs (resource servers).
    #[command(subcommand)]
    Api(ApiCommand),
    /// Manage scopes.
    #[command(subcommand)]
    Scope(ScopeCommand),
    /// Manage the keys that sign access tokens.
    #[command(subcommand, name = "signing-key")]
    SigningKey(SigningKeyCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Delete expired codes, refresh tokens, revoked-token records, replay-cache entries and sessions.
    Purge(JsonFlag),
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key; prints it once (only its prefix and last four characters are kept).
    Create {
        #[arg(long)]
        name: String,
        /// sk (full access), rk (restricted to --scope), or a type from [key_types] in tessera.toml.
        #[arg(long = "type", default_value = "sk")]
        key_type: String,
        /// live or test.
        #[arg(long, default_value = "live")]
        env: String,
        /// A registered scope (repeatable, or space-separated).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// The audience of a registered API the key is for (repeatable); none: any API.
        #[arg(long = "api", value_name = "AUDIENCE")]
        apis: Vec<String>,
        /// Lifetime, e.g. 90d (default: the type's default; none means no expiry).
        #[arg(long = "expires-in", value_name = "DURATION")]
        expires_in: Option<String>,
        /// Requests per 15 minutes for this key.
        #[arg(long = "rate-limit")]
        rate_limit: Option<u32>,
        /// A JSON object kept with the key (at most 4 KiB).
        #[arg(long)]
        metadata: Option<String>,
        /// The user who owns the key (a user id).
        #[arg(long = "owner-user")]
        owner_user: Option<String>,
        /// The OAuth client that owns the key (a client id).
        #[arg(long = "owner-client")]
        owner_client: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List keys, newest first (never the keys themselves).
    List {
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Show one key.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key at once.
    Revoke {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Replace a key: prints the new one once; the old one works until the grace period ends.
    Rotate {
        id: String,
        /// How long the old key keeps working, e.g. 24h.
        #[arg(long, default_value = "24h")]
        grace: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SigningKeyCommand {
    /// Start a rotation: the next key is published now and signs after the lead time
    /// (TESSERA_SIGNING_KEY_LEAD_TIME); the current key stays published until its tokens expire.
    Rotate {
        /// EdDSA, ES256 or RS256 (default: TESSERA_SIGNING_ALG).
        #[arg(long)]
        alg: Option<String>,
        /// Sign with the new key at once (no lead time): for a key you no longer trust. Verifiers
        /// that cache the JWKS may refuse new tokens until they refetch it.
        #[arg(long)]
        now: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the signing keys: next, current, previous and retired.
    List(JsonFlag),
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its client_id and, for confidential clients, its secret (shown only now).
    Create {
        #[arg(long)]
        name: String,
        /// An exact redirect URI (repeatable): https, or http on 127.0.0.1, [::1] or localhost.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// authorization_code, client_credentials or refresh_token (repeatable).
        #[arg(long = "grant-type", value_name = "GRANT")]
        grant_types: Vec<String>,
        /// A scope the client may request (repeatable, or space-separated).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// A public client (browser or native app): no secret, PKCE only.
        #[arg(long)]
        public: bool,
        /// client_secret_basic (default), client_secret_post, client_secret_jwt or private_key_jwt.
        #[arg(long = "auth-method", value_name = "METHOD")]
        auth_method: Option<String>,
        /// private_key_jwt: the URL where the client publishes its JWKS.
        #[arg(long = "jwks-uri", value_name = "URL")]
        jwks_uri: Option<String>,
        /// private_key_jwt: a file with the client's public keys (JWKS, JWK or PEM).
        #[arg(long = "jwks-file", value_name = "FILE")]
        jwks_file: Option<PathBuf>,
        /// A resource server: may introspect tokens of the API with this audience (repeatable; bare
        /// --introspect: the default API). Without it the client may not introspect.
        #[arg(long = "introspect", value_name = "AUDIENCE", num_args = 0..=1, default_missing_value = "")]
        introspect: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Set a client's own limit of token requests per minute (over TESSERA_TOKEN_RATE_LIMIT).
    RateLimit {
        /// The client_id.
        client_id: String,
        /// Token requests per minute.
        #[arg(
            long = "token-rate-limit",
            value_name = "N",
            conflicts_with = "default"
        )]
        token_rate_limit: Option<u32>,
        /// Back to TESSERA_TOKEN_RATE_LIMIT.
        #[arg(long, required_unless_present = "token_rate_limit")]
        default: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Register an API by the audience its tokens carry.
    Create {
        #[arg(long)]
        audience: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScopeCommand {
    /// Register a scope on an API (the default API unless --api names an audience).
    Create {
        name: String,
        #[arg(long)]
        description: String,
        /// The audience of the API the scope belongs to.
        #[arg(long)]
        api: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Machine-readable output (for `serve`: JSON log lines).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from the first line of standard input.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        json: bool,
    },
}

/// Exit codes: 0 success, 1 the command failed (e.g. the email is taken), 2 bad settings or no database.
pub fn run(cli: Cli) -> ExitCode {
    let env: HashMap<String, String> = std::env::vars().collect();
    let json = match &cli.command {
        Command::Serve(f)
        | Command::Migrate(f)
        | Command::Purge(f)
        | Command::SigningKey(SigningKeyCommand::List(f)) => f.json,
        Command::SigningKey(SigningKeyCommand::Rotate { json, .. }) => *json,
        Command::Key(
            KeyCommand::Create { json, .. }
            | KeyCommand::List { json, .. }
            | KeyCommand::Show { json, .. }
            | KeyCommand::Revoke { json, .. }
            | KeyCommand::Rotate { json, .. },
        ) => *json,
        Command::User(UserCommand::Create { json, .. })
        | Command::Client(
            ClientCommand::Create { json, .. } | ClientCommand::RateLimit { json, .. },
        )
        | Command::Api(ApiCommand::Create { json, .. })
        | Command::Scope(ScopeCommand::Create { json, .. }) => *json,
    };
    let mut settings = match Settings::load(cli.config.as_deref(), &env) {
        Ok(s) => s,
        Err(e) => return fail(json, 2, "invalid_configuration", &e.to_string()),
    };
    if json && matches!(cli.command, Command::Serve(_)) {
        settings.log_format = LogFormat::Json;
    }
    let serving = matches!(cli.command, Command::Serve(_));
    crate::telemetry::init(settings.log_format, &settings.log_level, serving);
    match cli.command {
        Command::Serve(_) => serve(settings, json),
        Command::Migrate(_) => migrate(settings, json),
        Command::User(UserCommand::Create { email, admin, .. }) => {
            create_user(settings, json, &email, admin)
        }
        Command::Client(ClientCommand::Create {
            name,
            redirect_uris,
            grant_types,
            scopes,
            public,
            auth_method,
            jwks_uri,
            jwks_file,
            introspect,
            ..
        }) => {
            let jwks = match jwks_file.map(std::fs::read_to_string).transpose() {
                Ok(j) => j,
                Err(e) => {
                    return fail(
                        json,
                        1,
                        "invalid_request",
                        &format!("cannot read --jwks-file: {e}"),
                    );
                }
            };
            let input = ClientInput {
                name,
                redirect_uris,
                grant_types,
                scopes,
                public,
                owner_user_id: None,
                auth_method,
                jwks_uri,
                jwks,
                introspect: introspect
                    .into_iter()
                    .map(|a| match a.trim() {
                        "" => settings.issuer_str().to_owned(),
                        a => a.to_owned(),
                    })
                    .collect(),
            };
            with_database(&settings, json, |conn, keys| {
                let hasher = Hasher::new(&keys.pepper);
                let (client, uris, secret) = oauth::create_client(
                    conn,
                    &hasher,
                    &keys.master_key,
                    &input,
                    Actor::Cli,
                    Origin::default(),
                )?;
                let out = json!({
                    "client_id": client.id,
                    "client_secret": secret.as_ref().map(|s| s.0.as_str()),
                    "name": client.name,
                    "public": client.is_public,
                    "token_endpoint_auth_method": client.token_endpoint_auth_method,
                    "grant_types": client.grant_types.split(' ').collect::<Vec<_>>(),
                    "scopes": client.allowed_scopes().collect::<Vec<_>>(),
                    "redirect_uris": uris,
                    "introspect": client.introspect_audiences(),
                });
                let text = match &secret {
                    Some(s) => format!(
                        "client_id:     {}\nclient_secret: {}\n(the secret is shown only now: store it safely)",
                        client.id, s.0
                    ),
                    None => format!("client_id: {} (public client: no secret)", client.id),
                };
                Ok((out, text))
            })
        }
        Command::Client(ClientCommand::RateLimit {
            client_id,
            token_rate_limit,
            ..
        }) => with_database(&settings, json, |conn, _| {
            oauth::set_token_rate_limit(
                conn,
                &client_id,
                token_rate_limit,
                Actor::Cli,
                Origin::default(),
            )?;
            let text = match token_rate_limit {
                Some(n) => format!("{client_id}: {n} token requests per minute"),
                None => format!(
                    "{client_id}: the default of {} token requests per minute",
                    settings.token_rate_limit
                ),
            };
            Ok((
                json!({ "client_id": client_id, "token_rate_limit": token_rate_limit }),
                text,
            ))
        }),
        Command::Api(ApiCommand::Create { audience, name, .. }) => {
            with_database(&settings, json, |conn, _| {
                let api = oauth::create_api(conn, &audience, &name, Actor::Cli)?;
                let text = format!("created API {} ({})", api.id, api.audience);
                Ok((serde_json::to_value(&api).unwrap_or_default(), text))
            })
        }
        Command::SigningKey(SigningKeyCommand::Rotate { alg, now, .. }) => {
            let alg = match alg.as_deref().map(crate::config::SigningAlg::parse) {
                None => settings.signing_alg,
                Some(Some(a)) => a,
                Some(None) => {
                    return fail(
                        json,
                        1,
                        "invalid_request",
                        "--alg must be EdDSA, ES256 or RS256",
                    );
                }
            };
            let lead = if now {
                0
            } else {
                settings.signing_key_lead_time.as_secs() as i64
            };
            let retire = crate::jwt::retire_after(&settings);
            with_database(&settings, json, |conn, keys| {
                let outcome = crate::jwt::rotate(
                    conn,
                    &keys.master_key,
                    alg,
                    lead,
                    retire,
                    Actor::Cli,
                    Origin::default(),
                )
                .map_err(AppError::internal)?;
                let (value, text) = match outcome {
                    crate::jwt::RotateOutcome::Rotated {
                        kid,
                        sign_from,
                        previous,
                    } => (
                        json!({ "kid": kid, "algorithm": alg.as_str(), "sign_from": sign_from,
                                "previous": previous, "already_scheduled": false }),
                        format!(
                            "new signing key {kid} ({}) is published now and signs from {}",
                            alg.as_str(),
                            format_time(sign_from)
                        ),
                    ),
                    crate::jwt::RotateOutcome::AlreadyScheduled { kid, sign_from } => (
                        json!({ "kid": kid, "sign_from": sign_from, "already_scheduled": true }),
                        format!(
                            "a rotation is already scheduled: {kid} signs from {}",
                            format_time(sign_from)
                        ),
                    ),
                };
                Ok((value, text))
            })
        }
        Command::SigningKey(SigningKeyCommand::List(_)) => {
            with_database(&settings, json, |conn, _| {
                let keys = crate::jwt::list_keys(conn)?;
                let text = keys
                    .iter()
                    .map(|k| {
                        format!(
                            "{:<22} {:<6} {:<8} signs from {}",
                            k["kid"].as_str().unwrap_or_default(),
                            k["algorithm"].as_str().unwrap_or_default(),
                            k["state"].as_str().unwrap_or_default(),
                            format_time(k["sign_from"].as_i64().unwrap_or_default())
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                Ok((json!(keys), text))
            })
        }
        Command::Key(command) => key_command(&settings, json, command),
        Command::Purge(_) => {
            let batch = settings.purge_batch_size;
            with_database(&settings, json, |conn, _| {
                let purged = crate::janitor::purge_all(conn, crate::db::now(), batch)?;
                let text = format!("purged {} expired row(s)", purged.total());
                Ok((serde_json::to_value(&purged).unwrap_or_default(), text))
            })
        }
        Command::Scope(ScopeCommand::Create {
            name,
            description,
            api,
            ..
        }) => {
            let issuer = settings.issuer_str().to_owned();
            with_database(&settings, json, |conn, _| {
                let scope = oauth::create_scope(
                    conn,
                    &issuer,
                    &name,
                    &description,
                    api.as_deref(),
                    Actor::Cli,
                )?;
                let text = format!("created scope {}", scope.name);
                Ok((serde_json::to_value(&scope).unwrap_or_default(), text))
            })
        }
    }
}

/// Runs a management command on a migrated database with the server's key material, printing its
/// result as JSON (`--json`) or as text.
fn with_database(
    settings: &Settings,
    json: bool,
    f: impl FnOnce(
        &mut crate::db::DbConn,
        &KeyMaterial,
    ) -> Result<(serde_json::Value, String), AppError>,
) -> ExitCode {
    let keys = match startup::resolve_keys(settings) {
        Ok(k) => k,
        Err(e) => return startup_failure(json, &e),
    };
    let mut conn = match startup::open_one_and_migrate(settings) {
        Ok(c) => c,
        Err(e) => return startup_failure(json, &e),
    };
    let result = oauth::ensure_default_api(&mut conn, settings.issuer_str())
        .and_then(|_| f(&mut conn, &keys));
    match result {
        Ok((value, text)) => {
            if json {
                println!("{value}");
            } else {
                println!("{text}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => app_failure(json, &e),
    }
}

fn key_command(settings: &Settings, json: bool, command: KeyCommand) -> ExitCode {
    use crate::apikeys::{self, KeyInput};
    let duration =
        |flag: &str, v: &str| crate::config::parse_duration(flag, v).map_err(|e| e.to_string());
    let shown = |key: &apikeys::ApiKey| {
        serde_json::to_value(key.view(crate::db::now())).unwrap_or_default()
    };
    let with_secret = |key: &apikeys::ApiKey, secret: &apikeys::KeySecret| {
        let mut v = shown(key);
        v["key"] = json!(secret.0);
        let text = format!(
            "{}  {} ({} {})\n(the key is shown only now: store it safely)",
            secret.0, key.id, key.key_type, key.environment
        );
        (v, text)
    };
    match command {
        KeyCommand::Create {
            name,
            key_type,
            env,
            scopes,
            apis,
            expires_in,
            rate_limit,
            metadata,
            owner_user,
            owner_client,
            ..
        } => {
            let expires_in = match expires_in.map(|v| duration("--expires-in", &v)).transpose() {
                Ok(d) => d,
                Err(e) => return fail(json, 1, "invalid_request", &e),
            };
            let metadata = match metadata.map(|m| serde_json::from_str(&m)).transpose() {
                Ok(m) => m,
                Err(e) => {
                    return fail(
                        json,
                        1,
                        "invalid_request",
                        &format!("--metadata is not JSON: {e}"),
                    );
                }
            };
            let input = KeyInput {
                name,
                key_type,
                env,
                scopes,
                apis,
                expires_in,
                rate_limit,
                metadata,
                owner_user_id: owner_user,
                owner_client_id: owner_client,
            };
            with_database(settings, json, |conn, keys| {
                let hasher = Hasher::new(&keys.pepper);
                let (key, secret) = apikeys::create_key(
                    conn,
                    settings,
                    &hasher,
                    &input,
                    Actor::Cli,
                    Origin::default(),
                )?;
                Ok(with_secret(&key, &secret))
            })
        }
        KeyCommand::List { limit, .. } => with_database(settings, json, |conn, _| {
            let keys = apikeys::list_keys(conn, None, limit.clamp(1, 10_000), 0)?;
            let now = crate::db::now();
            let text = keys
                .iter()
                .map(|k| {
                    format!(
                        "{:<24} {:<22} {:<8} {:<20} {}",
                        k.id,
                        k.display(),
                        k.status(now),
                        k.name,
                        k.view(now).scopes.join(" ")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            Ok((json!(keys.iter().map(shown).collect::<Vec<_>>()), text))
        }),
        KeyCommand::Show { id, .. } => with_database(settings, json, |conn, _| {
            let key = apikeys::find_key(conn, &id)?;
            let v = shown(&key);
            Ok((
                v.clone(),
                serde_json::to_string_pretty(&v).unwrap_or_default(),
            ))
        }),
        KeyCommand::Revoke { id, .. } => with_database(settings, json, |conn, _| {
            let key = apikeys::revoke_key(conn, &id, Actor::Cli, Origin::default())?;
            let text = format!("revoked {} ({})", key.id, key.display());
            Ok((shown(&key), text))
        }),
        KeyCommand::Rotate { id, grace, .. } => {
            let grace = match duration("--grace", &grace) {
                Ok(g) => g,
                Err(e) => return fail(json, 1, "invalid_request", &e),
            };
            with_database(settings, json, |conn, keys| {
                let hasher = Hasher::new(&keys.pepper);
                let (key, secret) = apikeys::rotate_key(
                    conn,
                    settings,
                    &hasher,
                    &id,
                    grace,
                    Actor::Cli,
                    Origin::default(),
                )?;
                Ok(with_secret(&key, &secret))
            })
        }
    }
}

fn format_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| unix.to_string())
}

fn fail(json: bool, code: u8, error: &str, message: &str) -> ExitCode {
    if json {
        println!("{}", json!({ "error": error, "message": message }));
    } else {
        eprintln!("tessera: {message}");
    }
    ExitCode::from(code)
}

fn startup_failure(json: bool, e: &StartupError) -> ExitCode {
    let code = match e {
        StartupError::Config(_) => "invalid_configuration",
        StartupError::Database(_) => "database_unavailable",
        StartupError::KeyFile(_) => "key_file_unusable",
        StartupError::Keys(_) => "signing_keys_unusable",
        StartupError::Bind { .. } => "bind_failed",
    };
    fail(json, 2, code, &e.to_string())
}

fn serve(settings: Settings, json: bool) -> ExitCode {
    let system = actix_web::rt::System::new();
    let result = system.block_on(async move {
        let app = Application::build(settings.clone()).await?;
        let (force, forced) = tokio::sync::oneshot::channel();
        actix_web::rt::spawn(stop_on_signals(app.handle(), force));
        tracing::info!(
            address = %format!("{}:{}", settings.bind.ip(), app.port()),
            issuer = %settings.issuer_str(),
            database = %settings.database_url,
            "tessera listening"
        );
        app.run_until(async move {
            // A dropped sender (no signal task) must not force anything.
            if forced.await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await
        .map_err(|e| StartupError::Bind {
            addr: settings.bind.to_string(),
            reason: e.to_string(),
        })
    });
    match result {
        Ok(Stopped::Gracefully) => {
            tracing::info!("tessera stopped");
            ExitCode::SUCCESS
        }
        Ok(Stopped::Forced) => {
            tracing::warn!("tessera stopped without waiting for the requests in flight");
            // 128 + SIGINT, as a shell reports a program that Ctrl-C ended.
            ExitCode::from(130)
        }
        Err(e) => startup_failure(json, &e),
    }
}

/// SIGINT (Ctrl-C) and SIGTERM stop the server gracefully: no new connections, the requests in
/// flight are answered (up to `TESSERA_SHUTDOWN_TIMEOUT`). A second SIGINT, or SIGQUIT, stops
/// waiting for them.
async fn stop_on_signals(
    server: actix_web::dev::ServerHandle,
    force: tokio::sync::oneshot::Sender<()>,
) {
    use actix_web::rt::signal::unix::{SignalKind, signal};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (kind, name) in [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::quit(), "SIGQUIT"),
    ] {
        match signal(kind) {
            Ok(mut stream) => {
                let tx = tx.clone();
                actix_web::rt::spawn(async move {
                    while stream.recv().await.is_some() {
                        if tx.send(name).is_err() {
                            break;
                        }
                    }
                });
            }
            Err(e) => tracing::warn!(signal = name, error = %e, "cannot listen for the signal"),
        }
    }
    drop(tx);
    let mut stopping = false;
    while let Some(name) = rx.recv().await {
        if name == "SIGQUIT" || (stopping && name == "SIGINT") {
            tracing::warn!(signal = name, "forced shutdown");
            let _ = force.send(());
            return;
        }
        if !stopping {
            stopping = true;
            tracing::info!(
                signal = name,
                "shutting down: finishing the requests in flight (Ctrl-C again to force)"
            );
            // The command is sent now; its completion is the server future ending.
            drop(server.stop(true));
        }
    }
}

fn migrate(settings: Settings, json: bool) -> ExitCode {
    let applied =
        crate::db::connect_one(&settings.database_url).and_then(|mut c| crate::db::migrate(&mut c));
    match applied {
        Ok(applied) => {
            if json {
                println!(
                    "{}",
                    json!({ "applied": applied, "database": settings.database_url.backend_name() })
                );
            } else if applied.is_empty() {
                println!("database is up to date");
            } else {
                println!(
                    "applied {} migration(s): {}",
                    applied.len(),
                    applied.join(", ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => startup_failure(json, &StartupError::Database(e)),
    }
}

fn create_user(settings: Settings, json: bool, email: &str, admin: bool) -> ExitCode {
    let email = match Email::parse(email) {
        Ok(e) => e,
        Err(e) => return app_failure(json, &e),
    };
    let mut line = String::new();
    if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
        return fail(
            json,
            1,
            "invalid_request",
            &format!("cannot read the password from stdin: {e}"),
        );
    }
    let password = match Password::parse(line.trim_end_matches(['\r', '\n']).to_owned()) {
        Ok(p) => p,
        Err(e) => return app_failure(json, &e),
    };
    let mut conn = match startup::open_one_and_migrate(&settings) {
        Ok(c) => c,
        Err(e) => return startup_failure(json, &e),
    };
    let result = accounts::password::hash(password.expose()).and_then(|hash| {
        accounts::create_user(
            &mut conn,
            &email,
            &hash,
            admin,
            Actor::Cli,
            Origin::default(),
        )
    });
    match result {
        Ok(user) => {
            let view = UserView::from(&user);
            if json {
                println!("{}", serde_json::to_string(&view).unwrap_or_default());
            } else {
                println!(
                    "created user {} <{}>{}",
                    view.id,
                    view.email,
                    if view.is_admin { " (admin)" } else { "" }
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => app_failure(json, &e),
    }
}

fn app_failure(json: bool, e: &AppError) -> ExitCode {
    let detail = match e {
        AppError::BadRequest { detail, .. } => detail.clone(),
        _ => None,
    };
    let message = crate::i18n::message(crate::i18n::Lang::En, e.code(), detail.as_deref());
    fail(json, 1, e.code(), &message)
}
