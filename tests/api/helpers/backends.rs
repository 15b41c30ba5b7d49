//! The services a test may need beside the app: PostgreSQL (`TESSERA_TEST_POSTGRES_URL`) and Redis
//! (`TESSERA_TEST_REDIS_URL`). A test that needs one that is not configured does not pass silently:
//! it says on stderr that it did not run (`NOT RUN (needs …)`, printed past the harness's capture,
//! so `cargo test` shows it), and `.ci/run` fails when its PostgreSQL run has any such line or its
//! SQLite run one that needs Redis.

use std::io::{Read as _, Write as _};
use std::time::Duration;

/// Says, on the process's stderr (not captured by the test harness), that `test` did not run.
fn not_run(needs: &str, test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "NOT RUN (needs {needs}) {test}: {why}");
}

/// True when the suite runs on PostgreSQL. On SQLite, says that `test` did not run because of `why`
/// (what it tests that SQLite does not have) and is false: the test returns at once. CI's
/// PostgreSQL run runs it.
pub fn postgres_only(test: &str, why: &str) -> bool {
    if super::postgres_admin_url().is_some() {
        return true;
    }
    not_run(
        "PostgreSQL",
        test,
        &format!("{why}; set TESSERA_TEST_POSTGRES_URL to run it"),
    );
    false
}

/// The Redis to test with: `TESSERA_TEST_REDIS_URL` (CI sets it). Unset: says that `test` did not
/// run and is `None` (the test returns at once). Set but not answering `PING`: the test fails, as a
/// PostgreSQL that cannot be reached does. Tests share it and Redis outlives them: their keys must
/// be of this run only.
pub fn redis(test: &str) -> Option<url::Url> {
    let Some(value) = std::env::var("TESSERA_TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        not_run(
            "Redis",
            test,
            "set TESSERA_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run it",
        );
        return None;
    };
    let url = url::Url::parse(&value).expect("TESSERA_TEST_REDIS_URL is a URL");
    let host = url.host_str().expect("TESSERA_TEST_REDIS_URL has a host");
    let address = format!("{host}:{}", url.port().unwrap_or(6379));
    let answer = std::net::TcpStream::connect(&address).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"PING\r\n")?;
        let mut buf = [0; 64];
        let n = s.read(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    });
    match answer {
        Ok(pong) if pong.starts_with("+PONG") => Some(url),
        other => panic!(
            "TESSERA_TEST_REDIS_URL is set but Redis at {address} does not answer PING: {other:?}"
        ),
    }
}
