//! Request-level hardening: repeated OAuth parameters (RFC 6749 §3.1), bodies and headers that never
//! arrive.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::authorize::{PASSWORD, REDIRECT, authorize_url, public_web_app, query_of};
use crate::helpers::{
    TestApp, assert_error, assert_page_error, client, hidden_inputs, location, spawn_app,
    spawn_app_with,
};

/// A well-formed S256 challenge (RFC 7636 appendix B); no test here redeems a code.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCgJIgk4n7U_c-N6hT0Z6Q1Y";

/// Asserts a redirect back to the client with `error=invalid_request` and no code; its query.
fn assert_refused_to_client(
    res: &reqwest::Response,
    app: &TestApp,
    what: &str,
) -> std::collections::HashMap<String, String> {
    assert_eq!(res.status(), 303, "{what}");
    let back = location(res);
    assert!(
        back.starts_with(REDIRECT),
        "{what}: back to the client, not {back}"
    );
    let q = query_of(&back);
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("invalid_request"),
        "{what}: {q:?}"
    );
    assert!(q["error_description"].contains("repeated"), "{what}: {q:?}");
    assert_eq!(q["iss"], app.address, "{what}");
    assert!(!q.contains_key("code"), "{what}: no code");
    q
}

/// Asserts the error page, and no redirect.
async fn assert_error_page(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), 400, "{what}");
    assert!(
        res.headers().get("location").is_none(),
        "{what}: never redirected"
    );
    let page = res.text().await.expect("page");
    assert!(page.contains("not valid"), "{what}: {page}");
}

#[actix_web::test]
async fn repeated_parameters_at_authorize_are_refused_before_anything_is_issued() {
    let (app, id) = public_web_app().await;
    let url = |extra: &[(&str, &str)]| authorize_url(&app, &id, "read", "s", CHALLENGE, extra);
    let wider = [("scope", "write offline_access")];

    // Signed out: refused at once, not sent to sign in first.
    let res = app.client.get(url(&wider)).send().await.expect("sent");
    let q = assert_refused_to_client(&res, &app, "scope twice, signed out");
    assert_eq!(q["state"], "s", "state, sent once, is echoed");

    let browser = client();
    app.sign_in(&browser, "ana@example.com", PASSWORD).await;
    // The attack: a request for `read` with a second `scope` gets no consent page and no code.
    let res = browser.get(url(&wider)).send().await.expect("sent");
    assert_refused_to_client(&res, &app, "scope twice");
    let res = browser
        .get(url(&[("scope", "")]))
        .send()
        .await
        .expect("sent");
    assert_refused_to_client(&res, &app, "scope twice, once empty");
    let res = browser
        .get(url(&[("state", "t")]))
        .send()
        .await
        .expect("sent");
    let q = assert_refused_to_client(&res, &app, "state twice");
    assert!(!q.contains_key("state"), "neither state is echoed: {q:?}");

    // client_id or redirect_uri repeated, or an unknown client: nothing to trust, no redirect.
    let res = browser
        .get(url(&[("client_id", &id)]))
        .send()
        .await
        .expect("sent");
    assert_error_page(res, "client_id twice").await;
    let res = browser
        .get(url(&[("redirect_uri", REDIRECT)]))
        .send()
        .await
        .expect("sent");
    assert_error_page(res, "redirect_uri twice").await;
    let unknown = authorize_url(&app, "cli_nobody", "read", "s", CHALLENGE, &wider);
    let res = browser.get(unknown).send().await.expect("sent");
    assert_error_page(res, "unknown client, scope twice").await;

    // The consent form: an OAuth parameter added, or its own fields repeated.
    let page = browser.get(url(&[])).send().await.expect("sent");
    assert_eq!(page.status(), 200, "the consent page");
    let form = hidden_inputs(&page.text().await.expect("page"));
    let post = |extra: &[(&str, &str)]| {
        let mut form = form.clone();
        form.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        browser.post(app.url("/oauth/authorize")).form(&form).send()
    };
    let res = post(&[wider[0], ("decision", "allow")])
        .await
        .expect("sent");
    assert_refused_to_client(&res, &app, "consent with scope twice");
    let res = post(&[("decision", "allow"), ("decision", "allow")])
        .await
        .expect("sent");
    assert_page_error(res, 400, "invalid_request").await;
    let csrf = form
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .expect("csrf")
        .1
        .clone();
    let res = post(&[("csrf_token", &csrf), ("decision", "allow")])
        .await
        .expect("sent");
    assert_page_error(res, 400, "invalid_request").await;

    use diesel::prelude::*;
    use tessera::db::schema::authorization_codes as codes;
    let issued: i64 = codes::table
        .count()
        .get_result(&mut app.conn())
        .expect("count");
    assert_eq!(issued, 0, "no code was issued");
}

#[actix_web::test]
async fn repeated_parameters_at_token_revocation_and_introspection_are_refused() {
    let app = spawn_app().await;
    let (id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let secret = secret.expect("a confidential client");
    let cases = [
        (
            "/oauth/token",
            "grant_type=client_credentials&grant_type=client_credentials".to_owned(),
        ),
        (
            "/oauth/token",
            "grant_type=authorization_code&code=a&code=b".to_owned(),
        ),
        (
            "/oauth/token",
            format!("grant_type=client_credentials&client_id={id}&client_id={id}"),
        ),
        (
            "/oauth/token",
            "grant_type=client_credentials&scope=&scope=read".to_owned(),
        ),
        ("/oauth/revoke", "token=a&token=b".to_owned()),
        (
            "/oauth/revoke",
            format!("token=a&client_id={id}&client_id={id}"),
        ),
        ("/oauth/revoke", "token=&token=a".to_owned()),
        ("/oauth/introspect", "token=a&token=b".to_owned()),
        (
            "/oauth/introspect",
            format!("token=a&client_id={id}&client_id={id}"),
        ),
        ("/oauth/introspect", "token=&token=a".to_owned()),
    ];
    for (path, body) in cases {
        let res = app
            .client
            .post(app.url(path))
            .basic_auth(&id, Some(&secret))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .expect("sent");
        let what = format!("{path} {body}");
        assert_eq!(res.status(), 400, "{what}");
        let err = assert_error(res, 400, "invalid_request").await;
        assert!(
            err["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("repeated")),
            "{what}: {err}"
        );
    }
}

/// Sends `raw` on a new connection, sends nothing more, and reads until the server closes it.
/// `None` when it is still open after 15 s (a generous bound: the test settings say 1 s or 5 s).
async fn send_and_wait_for_close(app: &TestApp, raw: String) -> Option<String> {
    let addr = app.address.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    conn.write_all(raw.as_bytes()).await.expect("write");
    let read = async {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // A reset after the answer counts as closed too.
        while let Ok(n @ 1..) = conn.read(&mut buf).await {
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(15), read)
        .await
        .ok()
}

/// A request whose headers declare a body of 100 bytes, of which 10 are sent.
fn short_body(method_path: &str, content_type: &str, extra: &str) -> String {
    format!(
        "{method_path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n{extra}\
         Content-Length: 100\r\n\r\n0123456789"
    )
}

#[actix_web::test]
async fn a_body_that_never_arrives_gets_408_and_its_connection_is_closed() {
    let app = spawn_app_with(|s| s.body_timeout = Duration::from_secs(1)).await;
    let form = "application/x-www-form-urlencoded";
    let slow = [
        short_body("POST /oauth/token", form, ""),
        short_body("POST /oauth/revoke", form, ""),
        short_body("POST /oauth/introspect", form, ""),
        short_body("POST /oauth/authorize", form, ""),
        short_body("POST /login", form, ""),
        short_body("POST /v1/keys/verify", "application/json", ""),
        short_body(
            "POST /v1/keys/verify",
            "application/json",
            "Accept-Language: es-ES\r\n",
        ),
        // Chunked, one chunk and then nothing.
        format!(
            "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: {form}\r\n\
             Transfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n"
        ),
    ];
    let answers = futures_util::future::join_all(
        slow.iter()
            .map(|raw| send_and_wait_for_close(&app, raw.clone())),
    )
    .await;
    for (raw, answer) in slow.iter().zip(answers) {
        let what = raw.lines().next().unwrap_or_default();
        let answer = answer.unwrap_or_else(|| panic!("{what}: still open after 15 s"));
        assert!(answer.starts_with("HTTP/1.1 408"), "{what}: {answer}");
        assert!(answer.contains("connection: close"), "{what}: {answer}");
        assert!(
            answer.contains("x-content-type-options: nosniff"),
            "{what}: {answer}"
        );
        // The browser's routes answer with a page, the others with JSON.
        let code = if what.contains("/oauth/authorize") || what.contains("/login") {
            r#"data-error="request_timeout""#
        } else {
            r#""error":"request_timeout""#
        };
        assert!(answer.contains(code), "{what}: {answer}");
        let message = if raw.contains("es-ES") {
            "El cuerpo de la solicitud no llegó completo en 1 segundo."
        } else {
            "The request body did not arrive in full within 1 second."
        };
        assert!(answer.contains(message), "{what}: {answer}");
    }

    // A handler that does not read the body answers, and the connection still closes (it is not
    // kept open to read a chunked body that never ends).
    let raw =
        "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n";
    let answer = send_and_wait_for_close(&app, raw.to_owned())
        .await
        .expect("GET /healthz with an endless body: still open after 15 s");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[actix_web::test]
async fn headers_that_never_finish_are_dropped() {
    let app = spawn_app().await;
    let answer = send_and_wait_for_close(&app, "GET /healthz HTTP/1.1\r\nHost: x\r\n".to_owned())
        .await
        .expect("a request whose headers never end: still open after 15 s");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

/// `TESSERA_MAX_CONNECTIONS` bounds what slow clients hold: with one connection per worker (and one
/// worker), a second client is served only after the slow one has had its 408, not beside it.
#[actix_web::test]
async fn slow_clients_hold_at_most_max_connections() {
    let app = spawn_app_with(|s| {
        s.body_timeout = Duration::from_secs(1);
        s.max_connections = 1;
    })
    .await;
    let finished = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (held, holding) = tokio::sync::oneshot::channel::<()>();
    let slow = {
        let (app, finished) = (&app, finished.clone());
        async move {
            let addr = app.address.trim_start_matches("http://");
            let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
            conn.write_all(
                b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n\
                  Content-Type: application/x-www-form-urlencoded\r\n\
                  Expect: 100-continue\r\nContent-Length: 100\r\n\r\n",
            )
            .await
            .expect("write");
            // `100 Continue` means the worker is serving this request: the only place is taken.
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).await.expect("read");
                assert!(n > 0, "closed before 100 Continue");
                seen.extend_from_slice(&buf[..n]);
            }
            assert!(seen.starts_with(b"HTTP/1.1 100"), "{seen:?}");
            conn.write_all(b"0123456789").await.expect("write");
            let _ = held.send(());
            let read = async {
                let mut out = Vec::new();
                while let Ok(n @ 1..) = conn.read(&mut buf).await {
                    out.extend_from_slice(&buf[..n]);
                }
                String::from_utf8_lossy(&out).into_owned()
            };
            let answer = tokio::time::timeout(Duration::from_secs(15), read)
                .await
                .ok();
            finished.lock().expect("lock").push("slow");
            answer
        }
    };
    let other = {
        let (app, finished) = (&app, finished.clone());
        async move {
            // Connect once the slow client holds the only place.
            holding.await.expect("the slow client got its place");
            let raw = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned();
            let answer = send_and_wait_for_close(app, raw).await;
            finished.lock().expect("lock").push("other");
            answer
        }
    };
    let (slow, other) = tokio::join!(slow, other);
    let slow = slow.expect("the slow client's connection is closed");
    assert!(slow.starts_with("HTTP/1.1 408"), "{slow}");
    let other = other.expect("the other client is answered");
    assert!(other.starts_with("HTTP/1.1 200"), "{other}");
    assert_eq!(*finished.lock().expect("lock"), ["slow", "other"]);
}
