//! The `tessera` command line: `serve`, `migrate`, `user`, `client`, `api`, `scope`, `key`,
//! `signing-key`, `purge`, `healthcheck`. Every command takes `--json` (before or after it).

use std::collections::HashMap;
use std::io::{BufRead as _, Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::accounts::{self, Email, Password, User, UserChange, UserView};
use crate::audit::{Actor, Origin};
use crate::config::{LogFormat, Settings};
use crate::crypto::{Hasher, KeyMaterial};
use crate::error::AppError;
use crate::oauth::{self, ClientInput};
use crate::startup::{self, Application, StartupError, Stopped};

/// The exit code of a command line that does not parse (BSD `sysexits.h` `EX_USAGE`): an unknown
/// flag, a missing argument. Bad settings exit 2, a failed command 1.
pub const EX_USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(name = "tessera", version, about = "Tessera authorization server")]
pub struct Cli {
    /// Settings file (default: ./tessera.toml when present). Env: TESSERA_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Machine-readable output: one JSON document on stdout, errors included (for `serve`: JSON log
    /// lines). Accepted before or after the command.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations and serve HTTP until SIGINT/SIGTERM.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
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
    Purge,
    /// Probe a running server (for Docker's HEALTHCHECK): exit 0 when GET /healthz answers 200,
    /// 1 otherwise with one line on stderr. Needs no database.
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The http:// URL to probe (default: /healthz on TESSERA_BIND, a wildcard address probed on
    /// loopback). Use .../readyz to require the database as well.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// How long to wait for the answer, e.g. 3s or 500ms.
    #[arg(long, value_name = "DURATION", default_value = "3s")]
    pub timeout: String,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key; prints it once (only its prefix and last four characters are kept).
    Create {
        /// A name to recognise the key by (1 to 100 characters).
        #[arg(long)]
        name: String,
        /// sk (full access), rk (restricted to --scope), or a type from [key_types] in tessera.toml.
        #[arg(long = "type", default_value = "sk")]
        key_type: String,
        /// live or test.
        #[arg(long, default_value = "live")]
        env: String,
        /// A scope (repeatable, or space-separated). A type that lists its scopes gets all of them
        /// when none is given.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// The audience of a registered API the key is for (repeatable); none: any API.
        #[arg(long = "api", value_name = "AUDIENCE")]
        apis: Vec<String>,
        /// Lifetime, e.g. 90d (default: the type's default; none means no expiry).
        #[arg(long = "expires-in", value_name = "DURATION")]
        expires_in: Option<String>,
        /// Requests per 15 minutes for this key.
        #[arg(long = "rate-limit", value_name = "N")]
        rate_limit: Option<u32>,
        /// A JSON object kept with the key (at most 4 KiB).
        #[arg(long, value_name = "JSON")]
        metadata: Option<String>,
        /// The user who owns the key (a user id).
        #[arg(long = "owner-user", value_name = "USER_ID")]
        owner_user: Option<String>,
        /// The OAuth client that owns the key (a client id).
        #[arg(long = "owner-client", value_name = "CLIENT_ID")]
        owner_client: Option<String>,
    },
    /// List keys, newest first (never the keys themselves).
    List {
        /// At most this many keys (1 to 10000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one key.
    Show {
        /// The key's id (key_…).
        id: String,
    },
    /// Revoke a key at once.
    Revoke {
        /// The key's id (key_…).
        id: String,
    },
    /// Replace a key: prints the new one once; the old one works until the grace period ends.
    Rotate {
        /// The key's id (key_…).
        id: String,
        /// How long the old key keeps working, e.g. 24h.
        #[arg(long, default_value = "24h", value_name = "DURATION")]
        grace: String,
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
    },
    /// List the signing keys: next, current, previous and retired.
    List,
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per run; `create` takes every registration option"
)]
pub enum ClientCommand {
    /// Register a client; prints its client_id and, for confidential clients, its secret (shown only now).
    Create {
        /// The name users see on the consent page (1 to 100 characters).
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
        /// OpenID Connect: `public` (the user id is `sub`, the default) or `pairwise` (a `sub` per
        /// sector, unrelated across sectors).
        #[arg(long = "subject-type", value_name = "TYPE")]
        subject_type: Option<String>,
        /// `pairwise`: the sector (a host name) its subjects are computed for; by default the one
        /// host of its redirect URIs.
        #[arg(long = "sector-identifier", value_name = "HOST")]
        sector_identifier: Option<String>,
        /// OpenID Connect: the algorithm of its ID tokens: RS256 (default), ES256 or EdDSA.
        #[arg(long = "id-token-alg", value_name = "ALG")]
        id_token_alg: Option<String>,
        /// RP-Initiated Logout: where the end-session endpoint may return the user (repeatable;
        /// matched exactly).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// Back-Channel Logout: where logout tokens are POSTed when a session ends.
        #[arg(long = "backchannel-logout-uri", value_name = "URI")]
        backchannel_logout_uri: Option<String>,
    },
    /// List the clients, by name.
    List,
    /// Show one client with its redirect URIs.
    Show {
        /// The client_id (cli_…).
        client_id: String,
    },
    /// Delete a client with its redirect URIs, codes, consents, refresh tokens and the API keys it
    /// owns (audited); its access tokens fail introspection from now on.
    Delete {
        /// The client_id (cli_…).
        client_id: String,
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
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Register an API by the audience its tokens carry.
    Create {
        /// The audience (`aud`) of the API's tokens, e.g. https://api.example.com.
        #[arg(long)]
        audience: String,
        /// A name to recognise the API by.
        #[arg(long)]
        name: String,
    },
    /// List the registered APIs, by audience (the default API's audience is the issuer).
    List,
}

#[derive(Debug, Subcommand)]
pub enum ScopeCommand {
    /// Register a scope on an API (the default API unless --api names an audience).
    Create {
        /// The scope name (printable ASCII without spaces, quotes or backslashes).
        name: String,
        /// What the scope allows, as the consent page shows it.
        #[arg(long)]
        description: String,
        /// The audience of the API the scope belongs to.
        #[arg(long, value_name = "AUDIENCE")]
        api: Option<String>,
    },
    /// List the registered scopes, by API and name.
    List {
        /// Only the scopes of the API with this audience.
        #[arg(long, value_name = "AUDIENCE")]
        api: Option<String>,
    },
}

/// The roles a user can have today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Manages everything: users, every app and key, settings.
    Admin,
    /// Manages their own apps and keys.
    Developer,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from the first line of standard input.
    Create {
        /// The sign-in address (stored lower-cased).
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
    },
    /// List the users, oldest first.
    List {
        /// At most this many users (1 to 10000).
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Show one user.
    Show {
        /// The user's id (usr_…) or email address.
        user: String,
    },
    /// Disable a user: their sessions end at once; their tokens, keys and apps are refused until
    /// they are enabled again (nothing is revoked).
    Disable {
        /// The user's id (usr_…) or email address.
        user: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// The user's id (usr_…) or email address.
        user: String,
    },
    /// Change a user's role.
    SetRole {
        /// The user's id (usr_…) or email address.
        user: String,
        /// admin or developer.
        #[arg(long, value_enum)]
        role: Role,
    },
    /// Delete a user with their sessions, consents, refresh tokens and API keys, and the apps they
    /// own (each with its tokens and keys); audited. Access tokens already issued expire on their own.
    Delete {
        /// The user's id (usr_…) or email address.
        user: String,
    },
}

/// Ends a command line that did not parse: `--help` and `--version` print and exit 0; anything else
/// (an unknown flag, a missing argument) prints clap's message on stderr (and, with `--json`, an
/// error object on stdout) and exits [`EX_USAGE`].
pub fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    // A closed stdout or stderr is no reason to fail differently.
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => {
            if std::env::args_os().any(|a| a == "--json") {
                // clap's message without its usage lines, on one line.
                let rendered = e.render().to_string();
                let message = rendered
                    .lines()
                    .take_while(|l| !l.starts_with("Usage:"))
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                let message = message.trim_start_matches("error: ");
                emit(&json!({ "error": "invalid_usage", "message": message }));
            }
            ExitCode::from(EX_USAGE)
        }
    }
}

/// Writes `text` and a newline to stdout. A closed stdout (`tessera … | head -1`) means the reader
/// has seen enough: the rest is dropped quietly, never with a panic; the command's exit code stands.
fn emit(text: &dyn std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        let _ = writeln!(std::io::stderr(), "tessera: cannot write the output: {e}");
    }
}

/// A one-line message on stderr (never a panic when stderr is closed).
fn emit_err(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Exit codes: 0 success, 1 the command failed (e.g. the email is taken), 2 bad settings or no
/// database, 64 a command line that does not parse (see [`usage_error`]).
pub fn run(cli: Cli) -> ExitCode {
    let env: HashMap<String, String> = std::env::vars().collect();
    let json = cli.json;
    if let Command::Healthcheck(args) = &cli.command {
        return healthcheck(cli.config.as_deref(), &env, json, args);
    }
    let mut settings = match Settings::load(cli.config.as_deref(), &env) {
        Ok(s) => s,
        Err(e) => return fail(json, 2, "invalid_configuration", &e.to_string()),
    };
    let serving = matches!(cli.command, Command::Serve);
    if json && serving {
        settings.log_format = LogFormat::Json;
    }
    crate::telemetry::init(settings.log_format, &settings.log_level, serving);
    match cli.command {
        Command::Serve => serve(settings, json),
        Command::Migrate => migrate(settings, json),
        Command::Healthcheck(_) => unreachable!("handled above"),
        Command::User(UserCommand::Create { email, admin, .. }) => {
            create_user(settings, json, &email, admin)
        }
        Command::User(command) => user_command(&settings, json, command),
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
            subject_type,
            sector_identifier,
            id_token_alg,
            post_logout_redirect_uris,
            backchannel_logout_uri,
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
                subject_type,
                sector_identifier,
                id_token_signed_response_alg: id_token_alg,
                post_logout_redirect_uris,
                backchannel_logout_uri,
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
                let mut out = client_json(&client, Some(&uris));
                out["client_secret"] = json!(secret.as_ref().map(|s| s.0.as_str()));
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
                &oauth::ClientId::from(client_id.as_str()),
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
        Command::Client(command) => client_command(&settings, json, command),
        Command::Api(ApiCommand::Create { audience, name }) => {
            with_database(&settings, json, |conn, _| {
                let api = crate::apis::create_api(conn, &audience, &name, Actor::Cli)?;
                let text = format!("created API {} ({})", api.id, api.audience);
                Ok((serde_json::to_value(&api).unwrap_or_default(), text))
            })
        }
        Command::Api(ApiCommand::List) => {
            let issuer = settings.issuer_str().to_owned();
            with_database(&settings, json, |conn, _| {
                let apis = crate::apis::list_apis(conn)?;
                let rows = apis
                    .iter()
                    .map(|a| {
                        vec![
                            a.id.clone(),
                            a.audience.clone(),
                            a.name.clone(),
                            if a.audience == issuer { "yes" } else { "" }.to_owned(),
                        ]
                    })
                    .collect::<Vec<_>>();
                let out = apis
                    .iter()
                    .map(|a| {
                        json!({ "id": a.id, "audience": a.audience, "name": a.name,
                                "default": a.audience == issuer })
                    })
                    .collect::<Vec<_>>();
                Ok((
                    json!(out),
                    table(&["ID", "AUDIENCE", "NAME", "DEFAULT"], &rows),
                ))
            })
        }
        Command::SigningKey(SigningKeyCommand::Rotate { alg, now }) => {
            let alg = match alg.as_deref().map(crate::jwt::SigningAlg::parse) {
                None => crate::jwt::SigningAlg::of(&settings),
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
        Command::SigningKey(SigningKeyCommand::List) => {
            with_database(&settings, json, |conn, _| {
                let keys = crate::jwt::list_keys(conn)?;
                let rows = keys
                    .iter()
                    .map(|k| {
                        vec![
                            k.kid.clone(),
                            k.algorithm.clone(),
                            k.state.as_str().to_owned(),
                            format_time(k.sign_from),
                        ]
                    })
                    .collect::<Vec<_>>();
                Ok((
                    json!(keys),
                    table(&["KID", "ALGORITHM", "STATE", "SIGNS FROM"], &rows),
                ))
            })
        }
        Command::Key(command) => key_command(&settings, json, command),
        Command::Purge => {
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
        }) => {
            let issuer = settings.issuer_str().to_owned();
            with_database(&settings, json, |conn, _| {
                let scope = crate::apis::create_scope(
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
        Command::Scope(ScopeCommand::List { api }) => with_database(&settings, json, |conn, _| {
            let apis = crate::apis::list_apis(conn)?;
            let only = match api.as_deref() {
                None => None,
                Some(audience) => Some(
                    apis.iter()
                        .find(|a| a.audience == audience)
                        .map(|a| a.id.clone())
                        .ok_or_else(|| {
                            AppError::bad_request(
                                "invalid_request",
                                crate::i18n::Detail::NoApiWithAudience {
                                    audience: audience.to_owned(),
                                },
                            )
                        })?,
                ),
            };
            let audience_of = |id: &str| {
                apis.iter()
                    .find(|a| a.id == id)
                    .map(|a| a.audience.clone())
                    .unwrap_or_default()
            };
            let mut scopes: Vec<_> = crate::apis::list_scopes(conn)?
                .into_iter()
                .filter(|s| only.as_ref().is_none_or(|id| *id == s.resource_server_id))
                .map(|s| (audience_of(&s.resource_server_id), s))
                .collect();
            scopes.sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
            let out = scopes
                .iter()
                .map(|(audience, s)| {
                    json!({ "id": s.id, "resource_server_id": s.resource_server_id,
                            "name": s.name, "description": s.description, "api": audience })
                })
                .collect::<Vec<_>>();
            let rows = scopes
                .iter()
                .map(|(audience, s)| vec![s.name.clone(), audience.clone(), s.description.clone()])
                .collect::<Vec<_>>();
            Ok((json!(out), table(&["NAME", "API", "DESCRIPTION"], &rows)))
        }),
    }
}

/// What `client create|list|show` print of a client (never its secret). `redirect_uris` is left
/// out of lists.
fn client_json(client: &oauth::Client, uris: Option<&[String]>) -> serde_json::Value {
    let mut out = json!({
        "client_id": client.id,
        "name": client.name,
        "public": client.is_public,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": client.grant_types.split(' ').filter(|g| !g.is_empty()).collect::<Vec<_>>(),
        "scopes": client.allowed_scopes().collect::<Vec<_>>(),
        "introspect": client.introspect_audiences(),
        "owner_user_id": client.owner_user_id,
        "disabled": !client.enabled(),
        "token_rate_limit": client.token_rate_limit,
        "subject_type": client.subject_type,
        "sector_identifier": client.sector_identifier,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "post_logout_redirect_uris": client.post_logout_redirect_uris(),
        "backchannel_logout_uri": client.backchannel_logout_uri,
    });
    if let Some(uris) = uris {
        out["redirect_uris"] = json!(uris);
    }
    out
}

fn client_command(settings: &Settings, json: bool, command: ClientCommand) -> ExitCode {
    match command {
        ClientCommand::List => with_database(settings, json, |conn, _| {
            let clients = oauth::list_clients(conn, None)?;
            let rows = clients
                .iter()
                .map(|c| {
                    vec![
                        c.id.to_string(),
                        c.name.clone(),
                        if c.is_public {
                            "public"
                        } else {
                            "confidential"
                        }
                        .to_owned(),
                        c.grant_types.clone(),
                        c.allowed_scopes().collect::<Vec<_>>().join(" "),
                        if c.enabled() { "active" } else { "disabled" }.to_owned(),
                    ]
                })
                .collect::<Vec<_>>();
            let out = clients
                .iter()
                .map(|c| client_json(c, None))
                .collect::<Vec<_>>();
            Ok((
                json!(out),
                table(
                    &["CLIENT_ID", "NAME", "TYPE", "GRANTS", "SCOPES", "STATUS"],
                    &rows,
                ),
            ))
        }),
        ClientCommand::Show { client_id } => with_database(settings, json, |conn, _| {
            let (c, uris) = oauth::find_client(conn, &oauth::ClientId::from(client_id.as_str()))?;
            let none = || "-".to_owned();
            let text = record(&[
                ("client_id", c.id.to_string()),
                ("name", c.name.clone()),
                (
                    "type",
                    if c.is_public {
                        "public"
                    } else {
                        "confidential"
                    }
                    .to_owned(),
                ),
                ("auth method", c.token_endpoint_auth_method.clone()),
                ("grant types", c.grant_types.clone()),
                ("scopes", c.allowed_scopes().collect::<Vec<_>>().join(" ")),
                ("redirect URIs", uris.join(" ")),
                ("introspects", c.introspect_audiences().join(" ")),
                ("owner", c.owner_user_id.clone().unwrap_or_else(none)),
                (
                    "status",
                    if c.enabled() { "active" } else { "disabled" }.to_owned(),
                ),
                (
                    "token rate limit",
                    c.token_rate_limit
                        .map(|n| format!("{n} per minute"))
                        .unwrap_or_else(|| "default".to_owned()),
                ),
            ]);
            Ok((client_json(&c, Some(&uris)), text))
        }),
        ClientCommand::Delete { client_id } => with_database(settings, json, |conn, _| {
            oauth::delete_client(
                conn,
                &oauth::ClientId::from(client_id.as_str()),
                Actor::Cli,
                Origin::default(),
            )?;
            tell_nodes(conn)?;
            Ok((
                json!({ "client_id": client_id, "deleted": true }),
                format!("deleted client {client_id}"),
            ))
        }),
        ClientCommand::Create { .. } | ClientCommand::RateLimit { .. } => {
            unreachable!("handled in run")
        }
    }
}

/// Tells the running nodes to drop the credentials they cache (API keys, access tokens, clients), as
/// the dashboard drops its node's after the same change: on PostgreSQL through `NOTIFY`, delivered
/// when the change commits; SQLite has one node, whose caches expire within
/// TESSERA_API_KEY_CACHE_TTL. CLI changes are rare: everything is dropped.
fn tell_nodes(conn: &mut crate::db::DbConn) -> Result<(), AppError> {
    use crate::invalidate::{Event, Selector};
    use crate::janitor::{CLIENTS, KEYS, TOKENS};
    for cache in [KEYS, TOKENS, CLIENTS] {
        let event = Event::Cache {
            cache: cache.to_owned(),
            selector: Selector::All,
        };
        crate::invalidate::notify(conn, &event)?;
    }
    Ok(())
}

fn role_of(user: &User) -> &'static str {
    if user.is_admin { "admin" } else { "developer" }
}

fn user_row(u: &User) -> Vec<String> {
    vec![
        u.id.to_string(),
        u.email.clone(),
        role_of(u).to_owned(),
        if u.disabled_at.is_some() {
            "disabled"
        } else {
            "active"
        }
        .to_owned(),
        format_time(u.created_at),
    ]
}

const USER_HEADERS: [&str; 5] = ["ID", "EMAIL", "ROLE", "STATUS", "CREATED"];

fn user_json(u: &User) -> serde_json::Value {
    serde_json::to_value(UserView::from(u)).unwrap_or_default()
}

fn user_command(settings: &Settings, json: bool, command: UserCommand) -> ExitCode {
    let shown = |u: &User| (user_json(u), table(&USER_HEADERS, &[user_row(u)]));
    let change = |user: &str, change: UserChange| {
        with_database(settings, json, |conn, _| {
            let found = accounts::lookup_user(conn, user)?;
            let changed =
                accounts::change_user_by(conn, &found.id, change, Actor::Cli, Origin::default())?;
            tell_nodes(conn)?;
            Ok(shown(&changed))
        })
    };
    match command {
        UserCommand::List { limit } => with_database(settings, json, |conn, _| {
            let users = accounts::list_users(conn, limit.clamp(1, 10_000), 0)?;
            let rows = users.iter().map(user_row).collect::<Vec<_>>();
            Ok((
                json!(users.iter().map(user_json).collect::<Vec<_>>()),
                table(&USER_HEADERS, &rows),
            ))
        }),
        UserCommand::Show { user } => with_database(settings, json, |conn, _| {
            let u = accounts::lookup_user(conn, &user)?;
            let text = record(&[
                ("id", u.id.to_string()),
                ("email", u.email.clone()),
                ("role", role_of(&u).to_owned()),
                (
                    "status",
                    match u.disabled_at {
                        Some(t) => format!("disabled since {}", format_time(t)),
                        None => "active".to_owned(),
                    },
                ),
                ("created", format_time(u.created_at)),
            ]);
            Ok((user_json(&u), text))
        }),
        UserCommand::Disable { user } => change(&user, UserChange::Disable),
        UserCommand::Enable { user } => change(&user, UserChange::Enable),
        UserCommand::SetRole { user, role } => change(
            &user,
            match role {
                Role::Admin => UserChange::MakeAdmin,
                Role::Developer => UserChange::RemoveAdmin,
            },
        ),
        UserCommand::Delete { user } => with_database(settings, json, |conn, _| {
            crate::db::transaction(conn, |conn| {
                let found = accounts::lookup_user(conn, &user)?;
                // The apps they own go first, each as the dashboard deletes an app (audited, with
                // its tokens and keys): left behind they would belong to nobody.
                let apps = oauth::list_clients(conn, Some(found.id.as_str()))?;
                for app in &apps {
                    oauth::delete_client(conn, &app.id, Actor::Cli, Origin::default())?;
                }
                let deleted =
                    accounts::delete_user(conn, &found.id, Actor::Cli, Origin::default())?;
                tell_nodes(conn)?;
                let apps: Vec<&str> = apps.iter().map(|a| a.id.as_str()).collect();
                let text = format!(
                    "deleted user {} <{}> and {} app(s) they owned",
                    deleted.id,
                    deleted.email,
                    apps.len()
                );
                Ok((
                    json!({ "id": deleted.id, "email": deleted.email, "deleted": true,
                            "deleted_clients": apps }),
                    text,
                ))
            })
        }),
        UserCommand::Create { .. } => unreachable!("handled in run"),
    }
}

/// Columns padded to their widest cell, a header first. An empty list says so under the header.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![line(headers)];
    for row in rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        out.push(line(&cells));
    }
    if rows.is_empty() {
        out.push("(none)".to_owned());
    }
    out.join("\n")
}

/// One thing as `label  value` lines, the labels aligned; an empty value shows as `-`.
fn record(fields: &[(&str, String)]) -> String {
    let width = fields
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    fields
        .iter()
        .map(|(k, v)| {
            let v = if v.is_empty() { "-" } else { v.as_str() };
            format!("{k:<width$}  {v}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `tessera healthcheck`: one GET over a plain TCP connection (the Docker image has no curl), so
/// it needs neither the database nor the key material. `/healthz` by default: Docker's HEALTHCHECK
/// is about the process (an unhealthy container gets restarted), and restarting Tessera does not
/// bring a database back; `--url …/readyz` asks for the database too.
fn healthcheck(
    config: Option<&std::path::Path>,
    env: &HashMap<String, String>,
    json: bool,
    args: &HealthcheckArgs,
) -> ExitCode {
    let result = (|| {
        let timeout = crate::config::parse_duration("--timeout", &args.timeout)?;
        if timeout.is_zero() {
            return Err(ProbeError::ZeroTimeout);
        }
        let url = match &args.url {
            Some(u) => u.clone(),
            None => {
                let settings = Settings::load(config, env)?;
                let mut bind = settings.bind;
                if bind.port() == 0 {
                    return Err(ProbeError::AnyPort);
                }
                if bind.ip().is_unspecified() {
                    bind.set_ip(match bind {
                        std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                        std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                    });
                }
                format!("http://{bind}/healthz")
            }
        };
        let status = probe(&url, timeout)?;
        Ok((url, status))
    })();
    match result {
        Ok((url, 200)) => {
            if json {
                emit(&json!({ "healthy": true, "url": url, "status": 200 }));
            }
            ExitCode::SUCCESS
        }
        Ok((url, status)) => fail(
            json,
            1,
            "unhealthy",
            &format!("unhealthy: {url} answered {status}"),
        ),
        Err(why) => fail(json, 1, "unhealthy", &format!("unhealthy: {why}")),
    }
}

/// Why `tessera healthcheck` found no healthy server (printed after `unhealthy: `).
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error(transparent)]
    Setting(#[from] crate::config::ConfigError),
    #[error("--timeout must be longer than 0")]
    ZeroTimeout,
    #[error("TESSERA_BIND has port 0 (any free port): pass --url")]
    AnyPort,
    #[error("{url} is not a URL ({source})")]
    NotAUrl {
        url: String,
        source: url::ParseError,
    },
    #[error("{url}: only http:// URLs can be probed (the server's own listener)")]
    NotHttpUrl { url: String },
    #[error("{url} has no host")]
    NoHost { url: String },
    #[error("no answer from {url} within {timeout:?}")]
    NoAnswer { url: String, timeout: Duration },
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("cannot resolve {host}")]
    NoAddress { host: String },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("{url} did not answer HTTP ({line:?})")]
    NotHttp { url: String, line: String },
}

/// The status code `GET url` answers with within `timeout` (HTTP/1.1, `Connection: close`).
fn probe(url: &str, timeout: Duration) -> Result<u16, ProbeError> {
    use std::net::ToSocketAddrs as _;
    let parsed = url::Url::parse(url).map_err(|source| ProbeError::NotAUrl {
        url: url.to_owned(),
        source,
    })?;
    if parsed.scheme() != "http" {
        return Err(ProbeError::NotHttpUrl {
            url: url.to_owned(),
        });
    }
    let host = parsed.host_str().ok_or_else(|| ProbeError::NoHost {
        url: url.to_owned(),
    })?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let deadline = Instant::now() + timeout;
    let no_answer = || ProbeError::NoAnswer {
        url: url.to_owned(),
        timeout,
    };
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(no_answer)
    };
    let addr = (host.trim_start_matches('[').trim_end_matches(']'), port)
        .to_socket_addrs()
        .map_err(|source| ProbeError::Resolve {
            host: host.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| ProbeError::NoAddress {
            host: host.to_owned(),
        })?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, left()?)
        .map_err(|source| ProbeError::Connect { addr, source })?;
    let target = &parsed[url::Position::BeforePath..url::Position::AfterQuery];
    let authority = &parsed[url::Position::BeforeHost..url::Position::AfterPort];
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: tessera-healthcheck\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    let io = |source: std::io::Error| ProbeError::Io {
        url: url.to_owned(),
        source,
    };
    stream.set_write_timeout(Some(left()?)).map_err(io)?;
    stream.write_all(request.as_bytes()).map_err(io)?;
    // Only the status line is needed: read at most 1 KiB.
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
        stream.set_read_timeout(Some(left()?)).map_err(io)?;
        let n = stream.read(&mut buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => no_answer(),
            _ => io(e),
        })?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => Ok(code),
        _ => Err(ProbeError::NotHttp {
            url: url.to_owned(),
            line: line.to_owned(),
        }),
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
    let (mut conn, keys) = match startup::open_for_command(settings) {
        Ok(c) => c,
        Err(e) => return startup_failure(json, &e),
    };
    let result = crate::apis::ensure_default_api(&mut conn, settings.issuer_str())
        .and_then(|_| f(&mut conn, &keys));
    match result {
        Ok((value, text)) => {
            if json {
                emit(&value);
            } else {
                emit(&text);
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
            // A type that lists its scopes (a `pak`) gets all of them when none is asked for.
            let scopes = match apikeys::key_types(settings).find(|t| t.name == key_type.trim()) {
                Some(apikeys::KeyType {
                    access: apikeys::Access::Listed(listed),
                    ..
                }) if scopes.is_empty() => listed,
                _ => scopes,
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
        KeyCommand::List { limit } => with_database(settings, json, |conn, _| {
            let keys = apikeys::list_keys(conn, None, limit.clamp(1, 10_000), 0)?;
            let now = crate::db::now();
            let rows = keys
                .iter()
                .map(|k| {
                    vec![
                        k.id.to_string(),
                        k.display(),
                        k.status(now).as_str().to_owned(),
                        k.name.clone(),
                        k.view(now).scopes.join(" "),
                    ]
                })
                .collect::<Vec<_>>();
            Ok((
                json!(keys.iter().map(shown).collect::<Vec<_>>()),
                table(&["ID", "KEY", "STATUS", "NAME", "SCOPES"], &rows),
            ))
        }),
        KeyCommand::Show { id } => with_database(settings, json, |conn, _| {
            let key = apikeys::find_key(conn, &apikeys::ApiKeyId::from(id.as_str()))?;
            let v = key.view(crate::db::now());
            let when = |t: Option<i64>| t.map(format_time).unwrap_or_default();
            let text = record(&[
                ("id", v.id.clone()),
                ("name", v.name.clone()),
                ("key", v.display.clone()),
                ("type", v.r#type.clone()),
                ("env", v.env.clone()),
                ("status", v.status.as_str().to_owned()),
                ("scopes", v.scopes.join(" ")),
                (
                    "apis",
                    if v.apis.is_empty() {
                        "any".to_owned()
                    } else {
                        v.apis.join(" ")
                    },
                ),
                (
                    "owner",
                    match (&key.owner_user_id, &key.owner_client_id) {
                        (Some(u), _) => format!("user {u}"),
                        (None, Some(c)) => format!("client {c}"),
                        (None, None) => String::new(),
                    },
                ),
                (
                    "rate limit",
                    v.rate_limit
                        .map(|n| format!("{n} per 15 minutes"))
                        .unwrap_or_else(|| "default".to_owned()),
                ),
                (
                    "metadata",
                    match &v.metadata {
                        serde_json::Value::Object(m) if m.is_empty() => String::new(),
                        m => m.to_string(),
                    },
                ),
                ("created", format_time(v.created_at)),
                ("expires", when(v.expires_at)),
                ("last used", when(v.last_used_at)),
                ("revoked", when(v.revoked_at)),
                ("replaced by", v.replaced_by.clone().unwrap_or_default()),
            ]);
            Ok((shown(&key), text))
        }),
        KeyCommand::Revoke { id } => with_database(settings, json, |conn, _| {
            let id = apikeys::ApiKeyId::from(id.as_str());
            let key = apikeys::revoke_key(conn, &id, Actor::Cli, Origin::default())?;
            tell_nodes(conn)?;
            let text = format!("revoked {} ({})", key.id, key.display());
            Ok((shown(&key), text))
        }),
        KeyCommand::Rotate { id, grace } => {
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
                    &apikeys::ApiKeyId::from(id.as_str()),
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
        emit(&json!({ "error": error, "message": message }));
    } else {
        emit_err(&format!("tessera: {message}"));
    }
    ExitCode::from(code)
}

fn startup_failure(json: bool, e: &StartupError) -> ExitCode {
    let code = match e {
        StartupError::Config(_) => "invalid_configuration",
        StartupError::Database(_) => "database_unavailable",
        StartupError::KeyFile(_) => "key_file_unusable",
        StartupError::Keys(_) => "signing_keys_unusable",
        StartupError::KeyMismatch(_) => "key_mismatch",
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
    let applied = crate::db::connect_one(&settings.database_url)
        .map_err(StartupError::from)
        .and_then(|mut c| {
            let applied = crate::db::migrate(&mut c).map_err(StartupError::from)?;
            startup::resolve_keys(&mut c, &settings)?;
            Ok(applied)
        });
    match applied {
        Ok(applied) => {
            if json {
                emit(
                    &json!({ "applied": applied, "database": settings.database_url.backend_name() }),
                );
            } else if applied.is_empty() {
                emit(&"database is up to date");
            } else {
                emit(&format!(
                    "applied {} migration(s): {}",
                    applied.len(),
                    applied.join(", ")
                ));
            }
            ExitCode::SUCCESS
        }
        Err(e) => startup_failure(json, &e),
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
    let mut conn = match startup::open_for_command(&settings) {
        Ok((c, _)) => c,
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
                emit(&serde_json::to_string(&view).unwrap_or_default());
            } else {
                emit(&format!(
                    "created user {} <{}>{}",
                    view.id,
                    view.email,
                    if view.is_admin { " (admin)" } else { "" }
                ));
            }
            ExitCode::SUCCESS
        }
        Err(e) => app_failure(json, &e),
    }
}

fn app_failure(json: bool, e: &AppError) -> ExitCode {
    let message = e.message(crate::i18n::Lang::En);
    fail(json, 1, e.code(), &message)
}
