//! The key file: beside a SQLite database (or in `TESSERA_DATA_DIR` with PostgreSQL), never created anew
//! for a database that holds data, and checked against the fingerprint the database records.

use std::path::Path;
use std::process::{Command, Output};

use diesel::prelude::*;

use crate::cli::{run, serve, tessera};
use crate::helpers::TestDb;

/// A key file of its own, not the one any database here was created with.
fn foreign_key_file(path: &Path) {
    let hex = |b: [u8; 32]| tessera::crypto::hex(&b);
    std::fs::write(
        path,
        format!(
            "secret_pepper = \"{}\"\nmaster_key = \"{}\"\n",
            hex(tessera::crypto::random_bytes::<32>()),
            hex(tessera::crypto::random_bytes::<32>())
        ),
    )
    .expect("write a key file");
}

/// `tessera` in `cwd` on `db_url`, with no key file named (the default location applies).
fn tessera_at(cwd: &Path, db_url: &str) -> Command {
    let mut cmd = tessera(cwd);
    cmd.env_remove("TESSERA_KEY_FILE")
        .env("TESSERA_DATABASE_URL", db_url);
    cmd
}

/// `client create` for a client_credentials client with `--json`.
fn create_client(cmd: &mut Command) -> Output {
    run(
        cmd.args([
            "client",
            "create",
            "--json",
            "--name",
            "Job",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
        ]),
        None,
    )
}

/// The message of a refused command: its one line on stderr, or the `message` of its `--json` error.
fn refusal(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(2),
        "refused with exit code 2: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
        return body["message"].as_str().expect("a message").to_owned();
    }
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    err.strip_prefix("tessera: ")
        .expect("tessera: …")
        .to_owned()
}

#[test]
fn the_key_file_is_created_beside_the_sqlite_database_not_in_the_working_directory() {
    let root = tempfile::tempdir().expect("tmp");
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("dir");
    std::fs::create_dir_all(root.path().join("data")).expect("dir");
    let out = run(
        tessera_at(&elsewhere, "sqlite://../data/x.db").arg("migrate"),
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = root.path().join("data").join("tessera.key");
    assert!(key.exists(), "the key file is beside the database");
    assert!(
        !elsewhere.join("tessera.key").exists(),
        "nothing lands in the working directory"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the owner may read the keys");
    }
}

#[actix_web::test]
async fn a_cli_command_run_from_another_directory_uses_the_servers_keys() {
    let root = tempfile::tempdir().expect("tmp");
    let srv = root.path().join("srv");
    let elsewhere = root.path().join("elsewhere");
    std::fs::create_dir_all(srv.join("data")).expect("dir");
    std::fs::create_dir_all(&elsewhere).expect("dir");

    let mut cmd = tessera_at(&srv, "sqlite://data/t.db");
    cmd.env("TESSERA_LOG_LEVEL", "info"); // "tessera listening" is what `serve` waits for
    let (mut child, address, _, _) = serve(cmd).await;
    let out = create_client(&mut tessera_at(&elsewhere, "sqlite://../srv/data/t.db"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        !elsewhere.join("tessera.key").exists(),
        "no second key file"
    );

    let res = reqwest::Client::new()
        .post(format!("http://{address}/oauth/token"))
        .basic_auth(
            client["client_id"].as_str().expect("id"),
            client["client_secret"].as_str(),
        )
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .await
        .expect("token request");
    let status = res.status();
    let _ = child.kill().await;
    assert_eq!(status, 200, "the secret the CLI printed is accepted");
}

#[actix_web::test]
async fn other_keys_are_refused_at_serve_and_in_the_cli_with_exit_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = TestDb::fresh();
    // The database is made, and holds a client, with dir/tessera.key.
    let made = create_client(tessera(dir.path()).env("TESSERA_DATABASE_URL", db.url_string()));
    assert_eq!(made.status.code(), Some(0));

    let wrong = dir.path().join("wrong.key");
    foreign_key_file(&wrong);
    let with_wrong = || {
        let mut cmd = tessera(dir.path());
        cmd.env("TESSERA_DATABASE_URL", db.url_string())
            .env("TESSERA_KEY_FILE", &wrong);
        cmd
    };
    let line = refusal(&create_client(&mut with_wrong()));
    for part in [
        "the secret pepper",
        "the master key",
        &wrong.display().to_string(),
        "point TESSERA_KEY_FILE at the key file the database was created with",
    ] {
        assert!(line.contains(part), "{part:?} in {line}");
    }
    let out = run(
        with_wrong().arg("serve").env("TESSERA_BIND", "127.0.0.1:0"),
        None,
    );
    assert_eq!(refusal(&out), line, "serve refuses in the same words");
    let out = run(with_wrong().arg("migrate"), None);
    assert_eq!(refusal(&out), line, "and migrate");

    // Only the pepper differs: only the pepper is named, with where it came from.
    let mut cmd = tessera(dir.path());
    cmd.env("TESSERA_DATABASE_URL", db.url_string()).env(
        "TESSERA_SECRET_PEPPER",
        "another-pepper-another-pepper-another-pepper",
    );
    let line = refusal(&create_client(&mut cmd));
    assert!(
        line.starts_with("the secret pepper (from TESSERA_SECRET_PEPPER) is not"),
        "{line}"
    );
    assert!(!line.contains("master key ("), "{line}");
}

#[actix_web::test]
async fn no_new_key_material_is_made_for_a_database_that_holds_data() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = TestDb::fresh();
    let made = create_client(tessera(dir.path()).env("TESSERA_DATABASE_URL", db.url_string()));
    assert_eq!(made.status.code(), Some(0));

    let missing = dir.path().join("elsewhere").join("tessera.key");
    let without = || {
        let mut cmd = tessera(dir.path());
        cmd.env("TESSERA_DATABASE_URL", db.url_string())
            .env("TESSERA_KEY_FILE", &missing);
        cmd
    };
    let line = refusal(&create_client(&mut without()));
    assert_eq!(
        line,
        format!(
            "TESSERA_KEY_FILE: no key file at {}, but the database already holds data \
             created with other keys; point TESSERA_KEY_FILE at the original file",
            missing.display()
        )
    );
    let out = run(
        without().arg("serve").env("TESSERA_BIND", "127.0.0.1:0"),
        None,
    );
    assert_eq!(refusal(&out), line);
    assert!(!missing.exists(), "no key file was written");

    // With the original file everything still works.
    let again = create_client(tessera(dir.path()).env("TESSERA_DATABASE_URL", db.url_string()));
    assert_eq!(again.status.code(), Some(0));
}

#[test]
fn a_database_from_before_fingerprints_records_the_key_in_use() {
    use tessera::db::schema::key_fingerprint::dsl as kf;
    let dir = tempfile::tempdir().expect("tmp");
    let db = TestDb::fresh();
    let made = create_client(tessera(dir.path()).env("TESSERA_DATABASE_URL", db.url_string()));
    assert_eq!(made.status.code(), Some(0));
    // As a database that was made before this change: data, no fingerprint.
    let mut conn = tessera::db::connect_one(&db.url()).expect("conn");
    diesel::delete(kf::key_fingerprint)
        .execute(&mut conn)
        .expect("forget the fingerprint");

    let out = create_client(tessera(dir.path()).env("TESSERA_DATABASE_URL", db.url_string()));
    assert_eq!(
        out.status.code(),
        Some(0),
        "the key file in use is the right one"
    );
    let recorded: i64 = kf::key_fingerprint
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(recorded, 1, "recorded on first start");

    let wrong = dir.path().join("wrong.key");
    foreign_key_file(&wrong);
    let out = create_client(
        tessera(dir.path())
            .env("TESSERA_DATABASE_URL", db.url_string())
            .env("TESSERA_KEY_FILE", &wrong),
    );
    assert!(refusal(&out).contains("not the one this database was created with"));
}

#[test]
fn with_postgresql_the_key_file_is_in_the_data_directory() {
    if !crate::helpers::postgres_only(
        "keyfile::with_postgresql_the_key_file_is_in_the_data_directory",
        "with SQLite the key file sits beside the database file (tested above)",
    ) {
        return;
    }
    let db = TestDb::fresh();
    let root = tempfile::tempdir().expect("tmp");
    let data = root.path().join("data");
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    std::fs::create_dir_all(&a).expect("dir");
    std::fs::create_dir_all(&b).expect("dir");

    let out = create_client(tessera_at(&a, &db.url_string()).env("TESSERA_DATA_DIR", &data));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data.join("tessera.key").exists(), "in TESSERA_DATA_DIR");
    assert!(!a.join("tessera.key").exists());

    // Another directory, the same data directory: the same keys.
    let out = create_client(tessera_at(&b, &db.url_string()).env("TESSERA_DATA_DIR", &data));
    assert_eq!(out.status.code(), Some(0));
    // Without it, the default (the working directory) has no key file: refused, nothing created.
    let line = refusal(&create_client(&mut tessera_at(&b, &db.url_string())));
    assert!(line.contains("no key file at"), "{line}");
    assert!(!b.join("tessera.key").exists());
}
