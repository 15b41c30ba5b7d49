//! Configuration mistakes stop the binary with exit code 2 and one line that says what to fix.

use std::process::Output;

use crate::cli::{run, tessera};

/// The one line a refused start printed, after checking the exit code.
fn refused(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "bad settings exit 2");
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_owned();
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    err
}

#[test]
fn a_misspelt_variable_is_refused_with_the_nearest_name() {
    let dir = tempfile::tempdir().expect("tmp");
    for command in ["serve", "migrate"] {
        let out = run(
            tessera(dir.path())
                .arg(command)
                .env("TESSERA_DATABSE_URL", "sqlite://elsewhere.db"),
            None,
        );
        let line = refused(&out);
        assert!(
            line.starts_with(
                "tessera: unknown setting TESSERA_DATABSE_URL; did you mean TESSERA_DATABASE_URL?"
            ),
            "{line}"
        );
    }
    assert!(
        !dir.path().join("tessera.db").exists(),
        "nothing was started on the default database"
    );
}

#[test]
fn a_log_level_that_is_no_level_is_refused_with_the_list() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = run(
        tessera(dir.path())
            .arg("migrate")
            .env("TESSERA_LOG_LEVEL", "verbose"),
        None,
    );
    let line = refused(&out);
    assert!(line.contains("TESSERA_LOG_LEVEL"), "{line}");
    assert!(
        line.contains("'verbose' is not a log level (expected error, warn, info, debug or trace"),
        "{line}"
    );
}

#[test]
fn a_toml_syntax_error_names_the_file_line_and_column_and_where_the_file_came_from() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = "bind = \"127.0.0.1:0\"\nlog = json\n";
    std::fs::write(dir.path().join("tessera.toml"), text).expect("write");
    std::fs::write(dir.path().join("other.toml"), text).expect("write");

    let line = refused(&run(tessera(dir.path()).arg("migrate"), None));
    assert!(
        line.starts_with("tessera: invalid tessera.toml: line 2, column 7:"),
        "{line}"
    );
    assert!(
        !line.contains("TESSERA_CONFIG"),
        "TESSERA_CONFIG is not set: {line}"
    );

    let line = refused(&run(
        tessera(dir.path()).args(["migrate", "--config", "other.toml"]),
        None,
    ));
    assert!(
        line.starts_with("tessera: invalid --config other.toml: line 2, column 7:"),
        "{line}"
    );
    let line = refused(&run(
        tessera(dir.path())
            .arg("migrate")
            .env("TESSERA_CONFIG", "other.toml"),
        None,
    ));
    assert!(
        line.starts_with("tessera: invalid TESSERA_CONFIG=other.toml: line 2, column 7:"),
        "{line}"
    );
}

#[test]
fn an_unknown_key_in_the_file_is_refused_with_the_nearest_name() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("tessera.toml"),
        "bind = \"127.0.0.1:0\"\n\nrefresh_token_tll = \"1d\"\n",
    )
    .expect("write");
    let line = refused(&run(tessera(dir.path()).arg("migrate"), None));
    assert_eq!(
        line,
        "tessera: unknown setting 'refresh_token_tll' in tessera.toml (line 3); \
         did you mean refresh_token_ttl?"
    );
}
