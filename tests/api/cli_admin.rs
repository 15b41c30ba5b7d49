//! The `tessera` management commands: `client|user|api|scope list/show/…`, usage errors (exit 64),
//! help text, `--json` anywhere, tables, a closed stdout, `healthcheck`, and key types with scopes.

use std::io::{Read as _, Write as _};
use std::process::{Output, Stdio};

use clap::CommandFactory as _;
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::cli::{run, serve, stderr_one_line, tessera};
use crate::helpers::TestDb;

/// A fresh database and a working directory to run the binary in.
struct Cli {
    dir: tempfile::TempDir,
    db: TestDb,
}

impl Cli {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tmp"),
            db: TestDb::fresh(),
        }
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = tessera(self.dir.path());
        cmd.args(args)
            .env("TESSERA_DATABASE_URL", self.db.url_string());
        cmd
    }

    fn out(&self, args: &[&str]) -> Output {
        run(&mut self.cmd(args), None)
    }

    /// Runs `args` (which include `--json` somewhere): the exit code and the JSON printed.
    fn json(&self, args: &[&str]) -> (Option<i32>, Value) {
        let out = self.out(args);
        let body = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?} prints JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code(), body)
    }

    /// Runs `args` without `--json`: exit 0 and the text printed.
    fn text(&self, args: &[&str]) -> String {
        let out = self.out(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn create_user(&self, email: &str, admin: bool) -> String {
        let mut args = vec![
            "user",
            "create",
            "--email",
            email,
            "--password-stdin",
            "--json",
        ];
        if admin {
            args.push("--admin");
        }
        let out = run(&mut self.cmd(&args), Some("a long enough passphrase\n"));
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let user: Value = serde_json::from_slice(&out.stdout).expect("json");
        user["id"].as_str().expect("id").to_owned()
    }

    /// The audit actions recorded on `target_id`, oldest first, with the actor type.
    fn audit(&self, target_id: &str) -> Vec<(String, String)> {
        use tessera::db::schema::audit_events as a;
        let mut conn = tessera::db::connect_one(&self.db.url()).expect("db");
        a::table
            .filter(a::target_id.eq(target_id))
            .order(a::occurred_at.asc())
            .select((a::actor_type, a::action))
            .load(&mut conn)
            .expect("audit")
    }
}

#[test]
fn every_argument_and_command_has_help_text() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            let path = format!("{path} {}", sub.get_name());
            if sub.get_name() != "help" && sub.get_about().is_none() {
                missing.push(format!("{path} (the command)"));
            }
            walk(sub, &path, missing);
        }
    }
    let mut cmd = tessera::cli::Cli::command();
    cmd.build();
    let mut missing = Vec::new();
    walk(&cmd, "tessera", &mut missing);
    assert!(missing.is_empty(), "without help text: {missing:#?}");
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let cli = Cli::new();
    for args in [
        &["--no-such-flag"][..],
        &["user"],
        &["key", "create"],
        &["client", "show"],
        &["client", "list", "--verbose"],
        &["user", "set-role", "usr_x", "--role", "user"],
        &["key", "list", "--limit", "many"],
        &["healthcheck", "extra"],
    ] {
        let out = cli.out(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {out:?}");
        assert!(
            !String::from_utf8_lossy(&out.stderr).is_empty(),
            "{args:?} says why"
        );
    }
    let (code, body) = cli.json(&["--json", "key", "create"]);
    assert_eq!(code, Some(64));
    assert_eq!(body["error"], "invalid_usage", "{body}");
    for args in [
        &["--help"][..],
        &["--version"],
        &["key", "--help"],
        &["user", "set-role", "-h"],
    ] {
        let out = cli.out(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty(), "{args:?} prints to stdout");
    }
    // Bad settings stay 2.
    let out = run(cli.cmd(&["api", "list"]).env("TESSERA_LOG", "xml"), None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn json_is_accepted_before_and_after_the_command() {
    let cli = Cli::new();
    let (code, before) = cli.json(&["--json", "api", "list"]);
    assert_eq!(code, Some(0));
    let (_, middle) = cli.json(&["api", "--json", "list"]);
    let (_, after) = cli.json(&["api", "list", "--json"]);
    assert_eq!(before, after);
    assert_eq!(before, middle);
    let (code, made) = cli.json(&["--json", "key", "create", "--name", "Early"]);
    assert_eq!(code, Some(0), "{made}");
    assert!(
        made["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("sk_live_"))
    );
}

#[test]
fn client_list_show_and_delete() {
    let cli = Cli::new();
    let (code, made) = cli.json(&[
        "client",
        "create",
        "--name",
        "Billing job",
        "--grant-type",
        "client_credentials",
        "--scope",
        "read",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{made}");
    let id = made["client_id"].as_str().expect("client_id").to_owned();
    let (_, web) = cli.json(&[
        "client",
        "create",
        "--name",
        "Web",
        "--redirect-uri",
        "https://app.example/cb",
        "--json",
    ]);
    let web_id = web["client_id"].as_str().expect("client_id").to_owned();
    let (_, key) = cli.json(&[
        "key",
        "create",
        "--name",
        "Job key",
        "--type",
        "rk",
        "--scope",
        "read",
        "--owner-client",
        &id,
        "--json",
    ]);
    let key_id = key["id"].as_str().expect("key id").to_owned();

    let (code, listed) = cli.json(&["client", "list", "--json"]);
    assert_eq!(code, Some(0));
    let names: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["Billing job", "Web"], "by name");
    assert_eq!(listed[0]["client_id"], id.as_str());
    assert_eq!(listed[0]["grant_types"], json!(["client_credentials"]));
    assert_eq!(listed[0]["public"], false);
    assert!(
        listed[0].get("client_secret").is_none(),
        "never a secret: {listed}"
    );
    let table = cli.text(&["client", "list"]);
    let mut lines = table.lines();
    assert!(
        lines.next().is_some_and(|h| h.starts_with("CLIENT_ID")),
        "{table}"
    );
    assert!(lines.next().is_some_and(|l| l.starts_with(&id)), "{table}");

    let (code, shown) = cli.json(&["client", "show", &web_id, "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(shown["redirect_uris"], json!(["https://app.example/cb"]));
    assert_eq!(shown["name"], "Web");
    let text = cli.text(&["client", "show", &web_id]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("redirect URIs") && l.ends_with("https://app.example/cb")),
        "{text}"
    );

    let (code, deleted) = cli.json(&["client", "delete", &id, "--json"]);
    assert_eq!(code, Some(0), "{deleted}");
    assert_eq!(deleted, json!({ "client_id": id, "deleted": true }));
    let (code, gone) = cli.json(&["client", "show", &id, "--json"]);
    assert_eq!((code, gone["error"].as_str()), (Some(1), Some("not_found")));
    let (code, _) = cli.json(&["key", "show", &key_id, "--json"]);
    assert_eq!(code, Some(1), "the client's keys went with it");
    assert!(
        cli.audit(&id)
            .contains(&("cli".to_owned(), "client.delete".to_owned())),
        "{:?}",
        cli.audit(&id)
    );
    let (code, again) = cli.json(&["client", "delete", &id, "--json"]);
    assert_eq!(
        (code, again["error"].as_str()),
        (Some(1), Some("not_found"))
    );
}

#[test]
fn user_list_show_disable_enable_set_role_and_delete() {
    let cli = Cli::new();
    let admin = cli.create_user("admin@example.com", true);
    let dev = cli.create_user("Dev@Example.com", false);

    let (code, listed) = cli.json(&["user", "list", "--json"]);
    assert_eq!(code, Some(0));
    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), 2);
    let of = |id: &str| listed.iter().find(|u| u["id"] == id).expect("listed");
    assert_eq!(of(&admin)["is_admin"], true);
    assert_eq!(of(&dev)["email"], "dev@example.com");
    let table = cli.text(&["user", "list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("dev@example.com") && l.contains("developer")),
        "{table}"
    );

    let (_, by_email) = cli.json(&["user", "show", "DEV@example.com", "--json"]);
    let (_, by_id) = cli.json(&["user", "show", &dev, "--json"]);
    assert_eq!(by_email, by_id);
    assert_eq!(by_id["is_admin"], false);
    let (code, none) = cli.json(&["user", "show", "nobody@example.com", "--json"]);
    assert_eq!((code, none["error"].as_str()), (Some(1), Some("not_found")));

    let (code, disabled) = cli.json(&["user", "disable", "dev@example.com", "--json"]);
    assert_eq!(code, Some(0), "{disabled}");
    assert_eq!(disabled["disabled"], true);
    assert!(cli.text(&["user", "show", &dev]).contains("disabled since"));
    let (_, enabled) = cli.json(&["user", "enable", &dev, "--json"]);
    assert_eq!(enabled["disabled"], false);
    let (_, promoted) = cli.json(&["user", "set-role", &dev, "--role", "admin", "--json"]);
    assert_eq!(promoted["is_admin"], true);
    let (_, demoted) = cli.json(&["user", "set-role", &dev, "--role", "developer", "--json"]);
    assert_eq!(demoted["is_admin"], false);
    let actions: Vec<(String, String)> = cli.audit(&dev);
    let actions: Vec<&str> = actions
        .iter()
        .filter(|(actor, _)| actor == "cli")
        .map(|(_, a)| a.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "user.disable",
            "user.enable",
            "user.make_admin",
            "user.remove_admin"
        ]
    );

    // What the user owns goes with them: an app (with its key) and a key of their own.
    let app = {
        let mut conn = tessera::db::connect_one(&cli.db.url()).expect("db");
        let pepper = tessera::config::SecretBytes::new(vec![7; 32]);
        let (client, _, _) = tessera::oauth::create_client(
            &mut conn,
            &tessera::crypto::Hasher::new(&pepper),
            &tessera::config::SecretBytes::new(vec![9; 32]),
            &tessera::oauth::ClientInput {
                name: "Dev's app".into(),
                redirect_uris: vec!["https://dev.example/cb".into()],
                public: true,
                owner_user_id: Some(dev.clone()),
                ..Default::default()
            },
            tessera::audit::Actor::System,
            tessera::audit::Origin::default(),
        )
        .expect("an app of theirs");
        client.id
    };
    let key = |owner: &str, id: &str| {
        let (code, key) = cli.json(&[
            "key", "create", "--name", "Theirs", "--type", "rk", "--scope", "read", owner, id,
            "--json",
        ]);
        assert_eq!(code, Some(0), "{key}");
        key["id"].as_str().expect("id").to_owned()
    };
    let user_key = key("--owner-user", &dev);
    let app_key = key("--owner-client", &app);

    let (code, deleted) = cli.json(&["user", "delete", "dev@example.com", "--json"]);
    assert_eq!(code, Some(0), "{deleted}");
    assert_eq!(
        deleted,
        json!({ "id": dev, "email": "dev@example.com", "deleted": true, "deleted_clients": [app] })
    );
    let (code, _) = cli.json(&["user", "show", &dev, "--json"]);
    assert_eq!(code, Some(1));
    for (what, args) in [
        ("the app", ["client", "show", app.as_str(), "--json"]),
        (
            "the user's key",
            ["key", "show", user_key.as_str(), "--json"],
        ),
        ("the app's key", ["key", "show", app_key.as_str(), "--json"]),
    ] {
        let (code, body) = cli.json(&args);
        assert_eq!(
            (code, body["error"].as_str()),
            (Some(1), Some("not_found")),
            "{what} is gone"
        );
    }
    assert!(
        cli.audit(&dev)
            .contains(&("cli".to_owned(), "user.delete".to_owned()))
    );
    assert!(
        cli.audit(&app)
            .contains(&("cli".to_owned(), "client.delete".to_owned()))
    );
    let (_, left) = cli.json(&["user", "list", "--json"]);
    assert_eq!(left.as_array().map(Vec::len), Some(1));
}

#[test]
fn api_and_scope_lists() {
    let cli = Cli::new();
    // The default API's audience is the issuer, here the default one.
    let default = tessera::config::Settings::default();
    let issuer = default.issuer_str();
    let (code, apis) = cli.json(&["api", "list", "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(apis.as_array().map(Vec::len), Some(1));
    assert_eq!(apis[0]["audience"], issuer);
    assert_eq!(apis[0]["default"], true);
    let (code, _) = cli.json(&[
        "api",
        "create",
        "--audience",
        "https://billing.example",
        "--name",
        "Billing",
        "--json",
    ]);
    assert_eq!(code, Some(0));
    let (code, _) = cli.json(&[
        "scope",
        "create",
        "invoices:read",
        "--description",
        "Read invoices",
        "--api",
        "https://billing.example",
        "--json",
    ]);
    assert_eq!(code, Some(0));
    let (_, apis) = cli.json(&["api", "list", "--json"]);
    assert_eq!(apis[0]["audience"], issuer);
    assert_eq!(apis[1]["audience"], "https://billing.example");
    assert_eq!(apis[1]["default"], false);
    assert!(cli.text(&["api", "list"]).contains("Billing"));

    let (_, all) = cli.json(&["scope", "list", "--json"]);
    let names: Vec<&str> = all
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        [
            "admin",
            "delete",
            "email",
            "offline_access",
            "openid",
            "profile",
            "read",
            "write",
            "invoices:read"
        ],
        "by API, then name"
    );
    let (_, billing) = cli.json(&[
        "scope",
        "list",
        "--api",
        "https://billing.example",
        "--json",
    ]);
    assert_eq!(billing.as_array().map(Vec::len), Some(1));
    assert_eq!(billing[0]["name"], "invoices:read");
    assert_eq!(billing[0]["description"], "Read invoices");
    assert_eq!(billing[0]["api"], "https://billing.example");
    let text = cli.text(&["scope", "list", "--api", "https://billing.example"]);
    assert_eq!(text.lines().count(), 2, "a header and one row: {text}");
    let (code, unknown) = cli.json(&[
        "scope",
        "list",
        "--api",
        "https://nowhere.example",
        "--json",
    ]);
    assert_eq!(
        (code, unknown["error"].as_str()),
        (Some(1), Some("invalid_request"))
    );
}

#[test]
fn key_show_prints_a_table_unless_json() {
    let cli = Cli::new();
    let (_, made) = cli.json(&[
        "key",
        "create",
        "--name",
        "CI",
        "--type",
        "rk",
        "--scope",
        "read write",
        "--json",
    ]);
    let id = made["id"].as_str().expect("id");
    let text = cli.text(&["key", "show", id]);
    assert!(!text.trim_start().starts_with('{'), "not JSON: {text}");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).filter(|rest| rest.starts_with(' ')))
            .map(str::trim)
            .unwrap_or_else(|| panic!("a '{name}' line: {text}"))
            .to_owned()
    };
    assert_eq!(field("id"), id);
    assert_eq!(field("name"), "CI");
    assert_eq!(field("scopes"), "read write");
    assert_eq!(field("status"), "active");
    assert_eq!(field("apis"), "any");
    let (code, shown) = cli.json(&["key", "show", id, "--json"]);
    assert_eq!(code, Some(0));
    assert_eq!(shown["id"], id);
    let listed = cli.text(&["key", "list"]);
    assert!(listed.starts_with("ID"), "a header: {listed}");
}

/// `tessera … | head -1`: the reader goes away; the command ends without a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    let cli = Cli::new();
    for n in 0..3 {
        let (code, _) = cli.json(&["key", "create", "--name", &format!("k{n}"), "--json"]);
        assert_eq!(code, Some(0));
    }
    for args in [
        &["key", "list"][..],
        &["key", "list", "--json"],
        &["scope", "list"],
        &["--help"],
    ] {
        // The reading end is closed before the binary starts: its first write fails (EPIPE).
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = cli
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("failed printing"),
            "{args:?}: {stderr}"
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "quietly: {stderr}");
    }
}

#[test]
fn a_key_type_with_scopes_needs_no_scope_flag() {
    let cli = Cli::new();
    std::fs::write(
        cli.dir.path().join("tessera.toml"),
        "[key_types.pak]\nprefix = \"pak_\"\nscopes = [\"activation:write\", \"activation:read\"]\npublishable = true\n",
    )
    .expect("write config");
    let (code, made) = cli.json(&[
        "key", "create", "--name", "Widget", "--type", "pak", "--json",
    ]);
    assert_eq!(code, Some(0), "{made}");
    assert!(
        made["key"]
            .as_str()
            .is_some_and(|k| k.starts_with("pak_live_"))
    );
    assert_eq!(
        made["scopes"],
        json!(["activation:read", "activation:write"])
    );
    let (code, one) = cli.json(&[
        "key",
        "create",
        "--name",
        "Narrow",
        "--type",
        "pak",
        "--scope",
        "activation:read",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{one}");
    assert_eq!(one["scopes"], json!(["activation:read"]));
    let (code, rk) = cli.json(&["key", "create", "--name", "x", "--type", "rk", "--json"]);
    assert_eq!(code, Some(1), "rk lists no scopes: one is needed: {rk}");
}

/// No test may start the binary on a fixed port (the default one, 8080, may be the developer's own
/// server): `tessera()` binds port 0, every other file that spawns the binary sets port 0 too, and
/// no test sets another port.
#[test]
fn no_test_starts_the_binary_on_a_fixed_port() {
    let cmd = tessera(std::path::Path::new("."));
    let bind = cmd
        .get_envs()
        .find(|(k, _)| *k == "TESSERA_BIND")
        .and_then(|(_, v)| v)
        .and_then(|v| v.to_str())
        .map(str::to_owned);
    assert_eq!(bind.as_deref(), Some("127.0.0.1:0"));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api");
    let bin = ["CARGO_BIN_EXE", "_tessera"].concat();
    let bind_var = ["\"TESSERA_", "BIND\""].concat();
    // Every file of the suite, in its folders too (tests/api/dashboard/, tests/api/helpers/).
    let mut files = Vec::new();
    let mut dirs = vec![dir.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("a folder of tests/api") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 30, "the suite's files: {files:?}");
    for path in files {
        let name = path.strip_prefix(&dir).unwrap_or(&path).display();
        let source = std::fs::read_to_string(&path).expect("read");
        let port_0 = [bind_var.as_str(), ", \"127.0.0.1:0\""].concat();
        assert!(
            !source.contains(&bin) || source.contains(&port_0),
            "{name} spawns the binary without setting TESSERA_BIND to port 0"
        );
        for (at, _) in source.match_indices(&bind_var) {
            let value: String = source[at + bind_var.len()..]
                .chars()
                .skip_while(|c| *c == ',' || c.is_whitespace())
                .take_while(|c| *c != ')')
                .collect();
            let value = value.trim().trim_matches('"');
            assert!(
                value.ends_with(":0") || !value.contains(':'),
                "{name} sets TESSERA_BIND to {value}"
            );
        }
    }
}

#[actix_web::test]
async fn healthcheck_answers_0_for_a_running_server_and_1_otherwise() {
    let cli = Cli::new();
    let mut cmd = cli.cmd(&[]);
    cmd.env("TESSERA_LOG_LEVEL", "info").stderr(Stdio::null());
    let (mut child, address, _, mut lines) = serve(cmd).await;
    actix_web::rt::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let check = |args: &[&str], bind: &str| {
        let mut cmd = tessera(cli.dir.path());
        cmd.arg("healthcheck")
            .args(args)
            .env("TESSERA_BIND", bind)
            // No database needed: a URL nothing could open.
            .env("TESSERA_DATABASE_URL", "sqlite:///no/such/dir/tessera.db");
        run(&mut cmd, None)
    };
    let (done, ready) = {
        let by_bind = check(&[], &address);
        let ready = check(
            &["--url", &format!("http://{address}/readyz")],
            "127.0.0.1:0",
        );
        (by_bind, ready)
    };
    assert_eq!(done.status.code(), Some(0), "{done:?}");
    assert_eq!(ready.status.code(), Some(0), "{ready:?}");
    let port = address.rsplit(':').next().expect("port");
    let wildcard = check(&[], &format!("0.0.0.0:{port}"));
    assert_eq!(wildcard.status.code(), Some(0), "probed on loopback");
    let json = check(&["--json"], &address);
    let body: Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(body["healthy"], true);

    // A server that answers 503, a closed port, a bad URL: 1, one line on stderr.
    let sick = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let sick_addr = sick.local_addr().expect("addr").to_string();
    let answer = std::thread::spawn(move || {
        let (mut conn, _) = sick.accept().expect("accept");
        let mut buf = [0u8; 512];
        let _ = conn.read(&mut buf);
        let _ = conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    });
    let out = check(&[], &sick_addr);
    answer.join().expect("answered");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_one_line(&out).contains("503"));
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let out = check(&["--timeout", "2s"], &closed);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_one_line(&out).contains("cannot connect"));
    let out = check(&["--url", "https://127.0.0.1:1/healthz"], "127.0.0.1:0");
    assert_eq!(out.status.code(), Some(1));
    stderr_one_line(&out);
    let out = check(&[], "127.0.0.1:0");
    assert_eq!(out.status.code(), Some(1), "port 0 cannot be probed");
    assert!(stderr_one_line(&out).contains("--url"));

    let pid = child.id().expect("pid").to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait()).await;
}

/// On PostgreSQL the CLI's changes reach the running nodes at once (`NOTIFY`), as the dashboard's
/// reach its own node: deleting a client, disabling or deleting a user, revoking a key.
#[test]
fn cli_changes_tell_the_running_nodes_on_postgresql() {
    if !crate::helpers::postgres_only(
        "cli_admin::cli_changes_tell_the_running_nodes_on_postgresql",
        "SQLite has no NOTIFY (one node: its caches expire within TESSERA_API_KEY_CACHE_TTL)",
    ) {
        return;
    }
    let cli = Cli::new();
    let (_, made) = cli.json(&[
        "client",
        "create",
        "--name",
        "Job",
        "--grant-type",
        "client_credentials",
        "--json",
    ]);
    let client = made["client_id"].as_str().expect("client_id").to_owned();
    let (_, key) = cli.json(&["key", "create", "--name", "K", "--json"]);
    let key = key["id"].as_str().expect("id").to_owned();
    let user = cli.create_user("gone@example.com", false);
    let mut listener = diesel::PgConnection::establish(&cli.db.url_string()).expect("pg");
    diesel::sql_query(format!("LISTEN {}", tessera::invalidate::CHANNEL))
        .execute(&mut listener)
        .expect("listen");
    for args in [
        ["client", "delete", client.as_str(), "--json"],
        ["key", "revoke", key.as_str(), "--json"],
        ["user", "disable", user.as_str(), "--json"],
        ["user", "delete", user.as_str(), "--json"],
    ] {
        let (code, body) = cli.json(&args);
        assert_eq!(code, Some(0), "{body}");
        // A round trip: the notifications committed meanwhile are read with its answer.
        diesel::sql_query("SELECT 1")
            .execute(&mut listener)
            .expect("select");
        let told: Vec<String> = listener
            .notifications_iter()
            .map(|n| n.expect("notification").payload)
            .collect();
        for cache in ["keys", "tokens", "clients"] {
            assert!(
                told.contains(&format!("- flush {cache}")),
                "{args:?} tells the nodes to drop {cache}: {told:?}"
            );
        }
    }
}

/// `user delete` leaves no token of the user working: refresh tokens go with the user (the database
/// cascades), and an access token of a deleted user is inactive at introspection.
#[actix_web::test]
async fn a_deleted_users_access_tokens_are_inactive() {
    let (app, web) = crate::authorize::public_web_app().await;
    let before = crate::authorize::tokens_for(&app, &web).await;
    let after = crate::authorize::tokens_for(&app, &web).await;
    let (rs, secret) = app.create_client(&["client_credentials"], &[], &[], false);
    let caller = (rs.as_str(), secret.as_deref().expect("secret"));
    app.allow_introspection(&rs);
    let token = |t: &Value| t["access_token"].as_str().expect("access token").to_owned();
    assert_eq!(
        app.introspect(caller, &token(&before)).await["active"],
        true
    );

    let user = tessera::accounts::lookup_user(&mut app.conn(), "ana@example.com").expect("ana");
    tessera::accounts::delete_user(
        &mut app.conn(),
        &user.id,
        tessera::audit::Actor::Cli,
        tessera::audit::Origin::default(),
    )
    .expect("deleted");
    // A token this node has not cached yet: its answer comes from the database.
    assert_eq!(
        app.introspect(caller, &token(&after)).await["active"],
        false
    );
    let refreshed = crate::authorize::exchange(
        &app,
        &[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                after["refresh_token"].as_str().expect("refresh"),
            ),
            ("client_id", &web),
        ],
        None,
    )
    .await;
    assert_eq!(
        refreshed.status(),
        400,
        "the refresh token went with the user"
    );
}
