//! The `tessera` binary: exit codes, one-line errors, `migrate`, `user create`, `serve` and shutdown.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use diesel::prelude::*;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::helpers::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// The binary with a clean environment of our own: no settings leak in from the caller. It binds
/// port 0 unless a test says otherwise: a `serve` that gets past its settings binds before it
/// connects to the database, and the default address (port 8080) may be the developer's own server.
pub(crate) fn tessera(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TESSERA_LOG_LEVEL", "warn")
        .env("TESSERA_BIND", "127.0.0.1:0")
        .env("TESSERA_KEY_FILE", dir.join("tessera.key"));
    cmd
}

pub(crate) fn run(cmd: &mut Command, stdin: Option<&str>) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    if let Some(input) = stdin {
        // The command may exit before reading (a usage error): a broken pipe here is not a failure.
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes());
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("the binary finishes")
}

pub(crate) fn stderr_one_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
    assert_eq!(err.lines().count(), 1, "one line, no backtrace: {err:?}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    err
}

#[test]
fn a_bad_database_url_exits_2_with_one_line_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tmp");
    for url in ["mysql://root@localhost/x", "tessera.db", "sqlite://"] {
        let out = run(
            tessera(dir.path())
                .arg("migrate")
                .env("TESSERA_DATABASE_URL", url),
            None,
        );
        assert_eq!(out.status.code(), Some(2), "{url}");
        let line = stderr_one_line(&out);
        assert!(line.contains("TESSERA_DATABASE_URL"), "{line}");
    }
    let out = run(
        tessera(dir.path())
            .arg("serve")
            .env("TESSERA_DATABASE_URL", "mysql://x"),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_one_line(&out).contains("TESSERA_DATABASE_URL"));
}

#[test]
fn an_unreachable_database_exits_2_without_leaking_the_password() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = run(
        tessera(dir.path())
            .arg("serve")
            .env(
                "TESSERA_DATABASE_URL",
                "postgres://tessera:hunter2@127.0.0.1:1/tessera",
            )
            .env("TESSERA_DATABASE_TIMEOUT", "2s"),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let line = stderr_one_line(&out);
    assert!(
        line.contains("TESSERA_DATABASE_URL") && line.contains("cannot connect"),
        "{line}"
    );
    assert!(
        !line.contains("hunter2"),
        "the password is redacted: {line}"
    );

    let out = run(
        tessera(dir.path())
            .arg("migrate")
            .env("TESSERA_DATABASE_URL", "sqlite:///no/such/dir/tessera.db"),
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_one_line(&out).contains("TESSERA_DATABASE_URL"));
}

#[test]
fn other_bad_settings_exit_2_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases: &[(&str, &str, &str)] = &[
        ("TESSERA_LOG", "xml", "TESSERA_LOG"),
        ("TESSERA_ISSUER", "not a url", "TESSERA_ISSUER"),
        ("TESSERA_BIND", "somewhere", "TESSERA_BIND"),
        ("TESSERA_SECRET_PEPPER", "short", "TESSERA_SECRET_PEPPER"),
        ("TESSERA_CONFIG", "/no/such/tessera.toml", "TESSERA_CONFIG"),
        (
            "TESSERA_SIGNING_KEY_LEAD_TIME",
            "31d",
            "TESSERA_SIGNING_KEY_LEAD_TIME",
        ),
        (
            "TESSERA_SIGNING_KEY_ROTATION",
            "10m",
            "TESSERA_SIGNING_KEY_ROTATION",
        ),
        ("TESSERA_CLOCK_SKEW", "1h", "TESSERA_CLOCK_SKEW"),
        ("TESSERA_PURGE_BATCH_SIZE", "0", "TESSERA_PURGE_BATCH_SIZE"),
        (
            "TESSERA_INTROSPECTION_RATE_LIMIT",
            "lots",
            "TESSERA_INTROSPECTION_RATE_LIMIT",
        ),
    ];
    for (name, value, named) in cases {
        let out = run(tessera(dir.path()).arg("serve").env(name, value), None);
        assert_eq!(out.status.code(), Some(2), "{name}={value}");
        let line = stderr_one_line(&out);
        assert!(line.contains(named), "{line}");
    }
    std::fs::write(
        dir.path().join("tessera.toml"),
        "bind = \"127.0.0.1:0\"\nlog = 7\nnope = 1\n",
    )
    .expect("write config");
    let out = run(tessera(dir.path()).arg("migrate"), None);
    assert_eq!(out.status.code(), Some(2));
    let line = stderr_one_line(&out);
    assert!(line.contains("tessera.toml"), "{line}");
    let out = run(tessera(dir.path()).arg("migrate").arg("--json"), None);
    assert_eq!(out.status.code(), Some(2));
    let body: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json errors are JSON");
    assert_eq!(body["error"], "invalid_configuration");
}

#[test]
fn client_create_validates_and_prints_the_secret_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = TestDb::fresh();
    let create = |args: &[&str]| {
        let mut cmd = tessera(dir.path());
        cmd.args(["client", "create", "--json"])
            .args(args)
            .env("TESSERA_DATABASE_URL", db.url_string());
        run(&mut cmd, None)
    };
    let out = create(&[
        "--name",
        "Web",
        "--redirect-uri",
        "https://app.example/cb",
        "--scope",
        "read write",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let client: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        client["client_id"]
            .as_str()
            .is_some_and(|c| c.starts_with("cli_"))
    );
    assert_eq!(client["client_secret"].as_str().map(str::len), Some(43));
    assert_eq!(
        client["grant_types"],
        serde_json::json!(["authorization_code"])
    );
    assert_eq!(client["scopes"], serde_json::json!(["read", "write"]));

    let public = create(&[
        "--name",
        "SPA",
        "--public",
        "--redirect-uri",
        "http://localhost:3000/cb",
    ]);
    let public: serde_json::Value = serde_json::from_slice(&public.stdout).expect("json");
    assert!(
        public["client_secret"].is_null(),
        "public clients have no secret"
    );

    let key = tessera::jwt::keys::generate(tessera::jwt::SigningAlg::EdDSA).expect("key");
    let jwks_file = dir.path().join("client-jwks.json");
    std::fs::write(
        &jwks_file,
        serde_json::json!({ "keys": [key.public_jwk] }).to_string(),
    )
    .expect("write JWKS");
    let out = create(&[
        "--name",
        "Signer",
        "--grant-type",
        "client_credentials",
        "--grant-type",
        "jwt-bearer",
        "--auth-method",
        "private_key_jwt",
        "--jwks-file",
        jwks_file.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let signer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(signer["token_endpoint_auth_method"], "private_key_jwt");
    assert!(signer["client_secret"].is_null(), "no secret: {signer}");
    assert_eq!(
        signer["grant_types"],
        serde_json::json!([
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ])
    );
    let out = create(&[
        "--name",
        "HMAC signer",
        "--grant-type",
        "client_credentials",
        "--auth-method",
        "client_secret_jwt",
    ]);
    let hmac: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(hmac["token_endpoint_auth_method"], "client_secret_jwt");
    assert_eq!(hmac["client_secret"].as_str().map(str::len), Some(43));
    let out = create(&[
        "--name",
        "No keys",
        "--grant-type",
        "client_credentials",
        "--auth-method",
        "private_key_jwt",
    ]);
    assert_eq!(out.status.code(), Some(1), "private_key_jwt needs keys");

    let bad = create(&["--name", "Bad", "--redirect-uri", "http://app.example/cb"]);
    assert_eq!(bad.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&bad.stdout).expect("json");
    assert_eq!(err["error"], "invalid_request");
    assert!(
        err["message"].as_str().is_some_and(|m| m.contains("https")),
        "{err}"
    );

    let api = {
        let mut cmd = tessera(dir.path());
        cmd.args([
            "api",
            "create",
            "--audience",
            "https://billing.example",
            "--name",
            "Billing",
            "--json",
        ])
        .env("TESSERA_DATABASE_URL", db.url_string());
        run(&mut cmd, None)
    };
    assert_eq!(api.status.code(), Some(0));
    let scope = {
        let mut cmd = tessera(dir.path());
        cmd.args([
            "scope",
            "create",
            "invoices:read",
            "--description",
            "Read invoices",
            "--api",
            "https://billing.example",
            "--json",
        ])
        .env("TESSERA_DATABASE_URL", db.url_string());
        run(&mut cmd, None)
    };
    assert_eq!(
        scope.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&scope.stdout)
    );
    let scope: serde_json::Value = serde_json::from_slice(&scope.stdout).expect("json");
    assert_eq!(scope["name"], "invoices:read");
    let uses_it = create(&[
        "--name",
        "Billing job",
        "--grant-type",
        "client_credentials",
        "--scope",
        "invoices:read",
    ]);
    assert_eq!(uses_it.status.code(), Some(0));
}

#[test]
fn migrate_applies_from_empty_then_has_nothing_to_do() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = TestDb::fresh();
    let migrate = || {
        run(
            tessera(dir.path())
                .args(["migrate", "--json"])
                .env("TESSERA_DATABASE_URL", db.url_string()),
            None,
        )
    };
    let first = migrate();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let first: serde_json::Value = serde_json::from_slice(&first.stdout).expect("json");
    assert_eq!(
        first["applied"],
        serde_json::json!([
            "20261124000001",
            "20261124000002",
            "20261124000003",
            "20261124000004",
            "20261129000010",
            "20261129000101",
            "20261129000201",
            "20261129000301",
            "20261203000401"
        ])
    );
    assert_eq!(
        first["database"],
        if db.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    );
    let second: serde_json::Value = serde_json::from_slice(&migrate().stdout).expect("json");
    assert_eq!(second["applied"], serde_json::json!([]));
}

#[test]
fn user_create_reads_the_password_from_stdin_and_stores_argon2id() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = TestDb::fresh();
    let create = |email: &str, password: &str| {
        run(
            tessera(dir.path())
                .args([
                    "user",
                    "create",
                    "--email",
                    email,
                    "--password-stdin",
                    "--admin",
                    "--json",
                ])
                .env("TESSERA_DATABASE_URL", db.url_string()),
            Some(&format!("{password}\n")),
        )
    };
    let out = create("Admin@Example.com", "a very secret passphrase");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let user: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(user["email"], "admin@example.com");
    assert_eq!(user["is_admin"], true);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("a very secret passphrase"));

    let mut conn = tessera::db::connect_one(&db.url()).expect("conn");
    use tessera::db::schema::users;
    let hash: String = users::table
        .select(users::password_hash)
        .first(&mut conn)
        .expect("row");
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    let dup = create("admin@example.com", "another long passphrase");
    assert_eq!(dup.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&dup.stdout).expect("json");
    assert_eq!(err["error"], "email_taken");
    let weak = create("weak@example.com", "short");
    assert_eq!(weak.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&weak.stdout).expect("json");
    assert_eq!(err["error"], "weak_password");

    let missing_flag = run(
        tessera(dir.path())
            .args(["user", "create", "--email", "x@example.com"])
            .env("TESSERA_DATABASE_URL", db.url_string()),
        Some("whatever\n"),
    );
    assert_eq!(
        missing_flag.status.code(),
        Some(64),
        "passwords never come as arguments (a usage error)"
    );
}

/// The log of a `tessera serve --json` child: the lines read so far, and the rest to come.
pub(crate) type LogLines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// Starts `cmd` (a [`tessera`] command with its settings) as `serve --json` on a free port and waits
/// for "tessera listening": the child, its address, the log lines up to then, and the rest.
pub(crate) async fn serve(
    mut cmd: Command,
) -> (tokio::process::Child, String, Vec<String>, LogLines) {
    cmd.args(["serve", "--json"])
        .env("TESSERA_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped());
    let mut child = tokio::process::Command::from(cmd)
        .spawn()
        .expect("serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut log = Vec::new();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read log") {
            let event: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("--json logs are JSON lines ({e}): {line}"));
            log.push(line);
            if event["message"] == "tessera listening" {
                return event["address"].as_str().expect("address").to_owned();
            }
        }
        panic!("the server never said it was listening");
    })
    .await
    .expect("listening within 30 s");
    (child, address, log, lines)
}

#[actix_web::test]
async fn serve_creates_the_sqlite_file_answers_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cmd = tessera(dir.path());
    cmd.env("TESSERA_LOG_LEVEL", "info")
        .env_remove("TESSERA_DATABASE_URL")
        .stderr(Stdio::piped());
    let (mut child, address, log, mut lines) = serve(cmd).await;
    let warned_about_keys = log.iter().any(|line| {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        event["key_file"].is_string() && event["level"] == "WARN"
    });
    assert!(warned_about_keys, "generating key material is warned about");
    assert!(
        dir.path().join("tessera.db").exists(),
        "the default SQLite file is created"
    );
    assert!(
        dir.path().join("tessera.key").exists(),
        "key material is kept"
    );

    let res = reqwest::get(format!("http://{address}/healthz"))
        .await
        .expect("healthz");
    assert_eq!(res.status(), 200);
    let res = reqwest::get(format!("http://{address}/readyz"))
        .await
        .expect("readyz");
    assert_eq!(res.status(), 200);

    let pid = child.id().expect("pid").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops within 20 s of SIGTERM")
        .expect("exit status");
    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");
    let mut saw_stopped = false;
    while let Ok(Some(line)) = lines.next_line().await {
        saw_stopped |= line.contains("tessera stopped");
    }
    assert!(saw_stopped, "the shutdown is logged");
}

#[test]
fn key_commands_create_list_rotate_and_revoke() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = TestDb::fresh();
    let key = |args: &[&str]| {
        let mut cmd = tessera(dir.path());
        cmd.arg("key")
            .args(args)
            .arg("--json")
            .env("TESSERA_DATABASE_URL", db.url_string());
        let out = run(&mut cmd, None);
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        (out.status.code(), body)
    };
    let (code, created) = key(&[
        "create",
        "--name",
        "CI",
        "--type",
        "rk",
        "--env",
        "test",
        "--scope",
        "read write",
        "--expires-in",
        "90d",
        "--metadata",
        r#"{"team":"billing"}"#,
    ]);
    assert_eq!(code, Some(0), "{created}");
    let secret = created["key"].as_str().expect("the key, once").to_owned();
    assert!(secret.starts_with("rk_test_"));
    assert_eq!(created["scopes"], serde_json::json!(["read", "write"]));
    assert_eq!(created["metadata"]["team"], "billing");
    let id = created["id"].as_str().expect("id").to_owned();

    let (_, listed) = key(&["list"]);
    let text = listed.to_string();
    assert!(!text.contains(&secret), "the key is never listed");
    assert_eq!(
        listed[0]["display"],
        format!("rk_test_…{}", &secret[secret.len() - 4..])
    );
    assert_eq!(listed[0]["status"], "active");

    let (code, rotated) = key(&["rotate", &id, "--grace", "1h"]);
    assert_eq!(code, Some(0), "{rotated}");
    assert_ne!(rotated["key"], secret.as_str());
    let (_, old) = key(&["show", &id]);
    assert_eq!(old["replaced_by"], rotated["id"]);
    assert!(old["expires_at"].as_i64() < rotated["expires_at"].as_i64());

    let (code, revoked) = key(&["revoke", &id]);
    assert_eq!(code, Some(0));
    assert_eq!(revoked["status"], "revoked");
    let (code, again) = key(&["rotate", &id]);
    assert_eq!(code, Some(1), "a revoked key cannot be rotated: {again}");
    let (code, bad) = key(&["create", "--name", "x", "--type", "sk", "--scope", "read"]);
    assert_eq!(code, Some(1));
    assert_eq!(bad["error"], "invalid_request");
}

#[actix_web::test]
async fn usage_is_written_at_shutdown_and_keys_never_reach_the_log() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = TestDb::fresh();
    let created = run(
        tessera(dir.path())
            .args([
                "key", "create", "--name", "Logged", "--type", "rk", "--scope", "read", "--json",
            ])
            .env("TESSERA_DATABASE_URL", db.url_string()),
        None,
    );
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).expect("json");
    let secret = created["key"].as_str().expect("key").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    let mut cmd = tessera(dir.path());
    cmd.env("TESSERA_LOG_LEVEL", "debug")
        .env("TESSERA_USAGE_FLUSH_INTERVAL", "1h")
        .env("TESSERA_DATABASE_URL", db.url_string())
        .stderr(Stdio::piped());
    let (mut child, address, mut log, mut lines) = serve(cmd).await;
    let check = format!("http://{address}/v1/auth/check");
    let http = reqwest::Client::new();
    let allowed = [
        http.get(&check).bearer_auth(&secret),
        http.get(&check).header("X-API-Key", &secret),
        http.get(format!("{check}?api_key={secret}")),
        http.get(&check)
            .header("X-Original-URI", format!("/orders?api_key={secret}")),
        http.post(&check)
            .json(&serde_json::json!({ "api_key": secret })),
    ];
    for req in allowed {
        assert_eq!(req.send().await.expect("check").status(), 200);
    }
    let denied = http
        .get(format!("{check}?scopes=write"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("check");
    assert_eq!(denied.status(), 403);
    let verified = http
        .post(format!("http://{address}/v1/keys/verify"))
        .json(&serde_json::json!({ "key": secret }))
        .send()
        .await
        .expect("verify");
    assert_eq!(verified.status(), 200);

    let pid = child.id().expect("pid").to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops within 20 s")
        .expect("status");
    assert_eq!(status.code(), Some(0));
    while let Ok(Some(line)) = lines.next_line().await {
        log.push(line);
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use tokio::io::AsyncReadExt as _;
        let _ = e.read_to_string(&mut stderr).await;
    }
    let all = format!("{}\n{stderr}", log.join("\n"));
    assert!(
        all.contains("/v1/auth/check") && log.len() > 7,
        "the requests were logged: {all}"
    );
    assert!(
        !all.contains(&secret[8..]),
        "the key is never logged:\n{all}"
    );

    // Counted in memory only (the flush interval is an hour): written by the shutdown.
    use diesel::prelude::*;
    use tessera::db::schema::{api_key_usage, api_keys};
    let mut conn = tessera::db::connect_one(&db.url()).expect("db");
    let (allowed, denied): (i64, i64) = api_key_usage::table
        .filter(api_key_usage::key_id.eq(&id))
        .select((api_key_usage::allowed, api_key_usage::denied))
        .first(&mut conn)
        .expect("a usage row");
    assert_eq!((allowed, denied), (6, 1));
    let last_used: Option<i64> = api_keys::table
        .find(&id)
        .select(api_keys::last_used_at)
        .first(&mut conn)
        .expect("key");
    assert!(
        last_used.is_some(),
        "last_used_at is written with the usage"
    );
}

/// The peak memory (VmHWM) of a process, in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    kib / 1024
}

/// Argon2id takes 19 MiB a hash: unbounded, 48 parallel sign-ins took the server to 931 MB. The
/// real binary, two rounds of 48 at once: every answer is 401 or 503 (+ Retry-After), and the peak
/// memory of the whole process stays under 128 MB.
#[actix_web::test]
async fn parallel_sign_ins_keep_the_server_under_128_mb() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = TestDb::fresh();
    let created = run(
        tessera(dir.path())
            .args([
                "user",
                "create",
                "--email",
                "mem@example.com",
                "--password-stdin",
            ])
            .env("TESSERA_DATABASE_URL", db.url_string()),
        Some("correct horse battery staple\n"),
    );
    assert!(created.status.success());
    let mut cmd = tessera(dir.path());
    cmd.env("TESSERA_LOG_LEVEL", "info")
        .env("TESSERA_AUTH_RATE_LIMIT", "100000")
        .env("TESSERA_DATABASE_URL", db.url_string())
        .stderr(Stdio::null());
    let (mut child, address, _, mut lines) = serve(cmd).await;
    // Keep reading the log so the server never blocks on a full pipe.
    actix_web::rt::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let pid = child.id().expect("pid");
    let base = format!("http://{address}");
    let mut answers = Vec::new();
    for round in 0..2 {
        let attempts = (0..48).map(|i| {
            let base = base.clone();
            async move {
                let browser = crate::helpers::client();
                let page = browser
                    .get(format!("{base}/login"))
                    .send()
                    .await
                    .expect("login page")
                    .text()
                    .await
                    .expect("page");
                let csrf = crate::helpers::hidden_field(&page, "csrf_token").expect("csrf");
                // Each on its own account, so only the password gate can turn one away.
                let email = format!("m{round}x{i}@example.com");
                let res = browser
                    .post(format!("{base}/login"))
                    .form(&[
                        ("email", email.as_str()),
                        ("password", "wrong password"),
                        ("csrf_token", csrf.as_str()),
                    ])
                    .send()
                    .await
                    .expect("sign-in");
                let retry = res.headers().contains_key("retry-after");
                (res.status().as_u16(), retry)
            }
        });
        answers.extend(futures_util::future::join_all(attempts).await);
    }
    let peak = peak_rss_mib(pid);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    for (status, retry) in &answers {
        assert!(
            *status == 401 || (*status == 503 && *retry),
            "{status} (Retry-After: {retry})"
        );
    }
    assert!(peak < 128, "peak RSS {peak} MiB under 96 parallel sign-ins");
    eprintln!(
        "peak RSS {peak} MiB; {} of {} refused with 503",
        answers.iter().filter(|a| a.0 == 503).count(),
        answers.len()
    );
}
