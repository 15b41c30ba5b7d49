//! Stopping `tessera serve`: Ctrl-C (SIGINT) is graceful like SIGTERM, a second Ctrl-C forces.

use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::cli::{LogLines, serve, tessera};
use crate::helpers::eventually;

fn signal(child: &tokio::process::Child, name: &str) {
    let pid = child.id().expect("pid").to_string();
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
}

/// Reads the log until a line containing `needle` (the server's answer to a signal).
async fn wait_for_log(lines: &mut LogLines, needle: &str) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.expect("read log") {
            if line.contains(needle) {
                return;
            }
        }
        panic!("the log ended before {needle:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in the log within 20 s"));
}

/// A connection with a token request in flight: its head was read (the server answered
/// `100 Continue`), its body has not been sent. (A request the server has not started reading is
/// not in flight: a graceful stop closes idle keep-alive connections, as it should.)
async fn request_in_flight(address: &str) -> (TcpStream, &'static [u8]) {
    let mut conn = TcpStream::connect(address).await.expect("connect");
    let body: &'static [u8] =
        b"grant_type=client_credentials&client_id=nobody&client_secret=nothing";
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !seen.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut buf))
            .await
            .expect("100 Continue within 20 s")
            .expect("read");
        assert!(n > 0, "closed before 100 Continue");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        seen.starts_with(b"HTTP/1.1 100 Continue"),
        "{:?}",
        String::from_utf8_lossy(&seen)
    );
    (conn, body)
}

#[actix_web::test]
async fn ctrl_c_lets_requests_in_flight_finish_and_exits_0() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cmd = tessera(dir.path());
    cmd.env("TESSERA_LOG_LEVEL", "info")
        .env("TESSERA_DATABASE_URL", "sqlite://t.db")
        .stderr(Stdio::null());
    let (mut child, address, _, mut lines) = serve(cmd).await;
    let (mut conn, rest) = request_in_flight(&address).await;

    signal(&child, "INT");
    wait_for_log(&mut lines, "shutting down").await;
    // The listener closes: nothing new is accepted (the accept thread stops just after the log line).
    eventually(
        Duration::from_secs(5),
        "new connections are refused after Ctrl-C",
        || async { TcpStream::connect(&address).await.is_err() },
    )
    .await;
    // The request in flight still gets its whole answer.
    conn.write_all(rest).await.expect("the rest of the body");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut answer))
        .await
        .expect("answered within 20 s")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("invalid_client"), "{answer}");

    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops within 20 s of Ctrl-C")
        .expect("exit status");
    assert_eq!(status.code(), Some(0), "a graceful stop exits 0");
    wait_for_log(&mut lines, "tessera stopped").await;
}

#[actix_web::test]
async fn a_second_ctrl_c_stops_without_waiting_and_exits_130() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut cmd = tessera(dir.path());
    cmd.env("TESSERA_LOG_LEVEL", "info")
        .env("TESSERA_DATABASE_URL", "sqlite://t.db")
        // A graceful stop would wait this long for the request that never completes.
        .env("TESSERA_SHUTDOWN_TIMEOUT", "300s")
        .env("TESSERA_BODY_TIMEOUT", "300s")
        .stderr(Stdio::null());
    let (mut child, address, _, mut lines) = serve(cmd).await;
    let (_conn, _) = request_in_flight(&address).await;

    signal(&child, "INT");
    wait_for_log(&mut lines, "shutting down").await;
    signal(&child, "INT");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("a second Ctrl-C stops the server at once, not after 300 s")
        .expect("exit status");
    assert_eq!(status.code(), Some(130));
}
