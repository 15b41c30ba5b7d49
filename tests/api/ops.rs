//! `/healthz`, `/readyz`, `/metrics`, request ids and migrations.

use std::time::Duration;

use crate::helpers::{
    assert_error, create_key, eventually, postgres_only, spawn_app, spawn_app_with,
};

#[actix_web::test]
async fn healthz_answers_with_a_request_id() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    let id = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        id.starts_with("req_") && id.len() == 28,
        "generated id {id}"
    );
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["status"], "ok");
}

#[actix_web::test]
async fn a_sane_caller_request_id_is_kept_and_an_odd_one_replaced() {
    let app = spawn_app().await;
    let kept = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-Id", "gw-1234.abc:9")
        .send()
        .await
        .expect("sent");
    assert_eq!(kept.headers()["x-request-id"], "gw-1234.abc:9");
    let replaced = app
        .client
        .get(app.url("/nope"))
        .header("X-Request-Id", "evil\"<script>")
        .send()
        .await
        .expect("sent");
    let id = replaced.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(id.starts_with("req_"), "{id}");
    let body = assert_error(replaced, 404, "not_found").await;
    assert_eq!(body["request_id"], id.as_str());
}

/// The first `/readyz` answer with the status `want` (within 20 s).
async fn wait_for_status(app: &crate::helpers::TestApp, want: u16) -> reqwest::Response {
    eventually(
        Duration::from_secs(20),
        &format!("/readyz answers {want}"),
        || async {
            let res = app.get("/readyz").await;
            (res.status() == want).then_some(res)
        },
    )
    .await
}

#[actix_web::test]
async fn readyz_follows_the_database_away_and_back_without_a_restart() {
    let app = spawn_app().await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    let backend = if app.db.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(body["database"], backend);

    app.db.take_away();
    let down = wait_for_status(&app, 503).await;
    assert_error(down, 503, "service_unavailable").await;
    // Liveness does not depend on the database.
    assert_eq!(app.get("/healthz").await.status(), 200);

    app.db.bring_back();
    let up = wait_for_status(&app, 200).await;
    assert_eq!(up.status(), 200, "ready again once the database is back");
}

/// A busy connection is handed out again without a ping (`db::TRUSTED_FOR`); one idle for longer is
/// pinged first, so connections the database cut (a restart, a failover) are replaced, not used.
/// PostgreSQL only: nothing outside the process can cut a connection to a SQLite file.
#[actix_web::test]
async fn on_postgresql_connections_the_database_cut_are_replaced_without_failing_requests() {
    if !postgres_only(
        "ops::on_postgresql_connections_the_database_cut_are_replaced_without_failing_requests",
        "nothing outside the process can cut a connection to a SQLite file",
    ) {
        return;
    }
    // The key cache off: every verification reads the database through the pool.
    let app = spawn_app_with(|s| s.api_key_cache_ttl = Duration::ZERO).await;
    let (_, secret) = create_key(
        &app,
        &tessera::config::Settings::default(),
        tessera::apikeys::KeyInput {
            name: "pool".into(),
            key_type: "sk".into(),
            env: "live".into(),
            ..Default::default()
        },
    )
    .expect("key");
    let verify_many = |n: usize| {
        let app = &app;
        let secret = &secret;
        async move {
            let answers = futures_util::future::join_all((0..n).map(|_| async move {
                let res = app
                    .client
                    .post(app.url("/v1/keys/verify"))
                    .json(&serde_json::json!({ "key": secret }))
                    .send()
                    .await
                    .expect("verify");
                let status = res.status().as_u16();
                let body: serde_json::Value = res.json().await.expect("json");
                (status, body["valid"].clone())
            }))
            .await;
            for answer in answers {
                assert_eq!(answer, (200, serde_json::Value::Bool(true)));
            }
        }
    };
    // Several pooled connections, all recently used.
    verify_many(12).await;
    app.db.cut_connections();
    tokio::time::sleep(tessera::db::TRUSTED_FOR + Duration::from_millis(200)).await;
    // Every cut connection is idle past the window: each is pinged, found dead and replaced.
    verify_many(12).await;
    verify_many(12).await;
}

#[actix_web::test]
async fn metrics_count_requests_by_route_and_status_and_show_the_pool() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.get("/healthz").await;
    }
    app.get("/no/such/page").await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    let text = res.text().await.expect("body");
    assert!(
        text.contains(
            r#"tessera_http_requests_total{method="GET",route="/healthz",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"tessera_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
        ),
        "raw paths never become labels: {text}"
    );
    assert!(
        text.contains("tessera_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("tessera_db_pool_max_connections 4"), "{text}");
    assert!(
        text.contains(r#"tessera_db_pool_connections{state="idle"}"#),
        "{text}"
    );
}

#[actix_web::test]
async fn migrations_are_applied_at_start_and_are_idempotent() {
    let app = spawn_app().await;
    let mut conn = app.conn();
    let again = tessera::db::migrate(&mut conn).expect("migrate again");
    assert!(again.is_empty(), "nothing left to apply: {again:?}");
    // Every table of the first schema is there and queryable.
    use diesel::connection::SimpleConnection as _;
    for table in [
        "users",
        "sessions",
        "resource_servers",
        "scopes",
        "oauth_clients",
        "oauth_redirect_uris",
        "authorization_codes",
        "refresh_token_families",
        "refresh_tokens",
        "revoked_access_tokens",
        "used_assertion_jtis",
        "consents",
        "api_keys",
        "signing_keys",
        "audit_events",
    ] {
        conn.batch_execute(&format!("SELECT count(*) FROM {table}"))
            .unwrap_or_else(|e| panic!("table {table}: {e}"));
    }
}

/// A database that cannot serve (PostgreSQL cut the connections: a restart or a failover; SQLite
/// locked by another writer past its busy timeout) is 503 with `Retry-After`, never 500; the same
/// request succeeds once the database is back.
#[actix_web::test]
async fn a_database_that_cannot_serve_answers_503_with_retry_after_never_500() {
    use diesel::connection::SimpleConnection as _;
    let app = spawn_app().await;
    app.create_user("root@example.com", "correct horse battery", true);
    let admin = crate::helpers::client();
    app.sign_in(&admin, "root@example.com", "correct horse battery")
        .await;
    let create = |name: String| {
        let (admin, url) = (admin.clone(), app.url("/v1/keys"));
        async move {
            admin
                .post(url)
                .json(&serde_json::json!({ "name": name, "type": "sk", "env": "test" }))
                .send()
                .await
                .expect("create a key")
        }
    };
    let answers = if app.db.is_postgres() {
        // Recently used connections are handed out without a ping (db::TRUSTED_FOR): the requests
        // right after the cut meet dead connections, as in an outage under load.
        let warm = (0..4).map(|i| create(format!("warm {i}")));
        for res in futures_util::future::join_all(warm).await {
            assert_eq!(res.status(), 201);
        }
        app.db.cut_connections();
        futures_util::future::join_all((0..8).map(|i| create(format!("cut {i}")))).await
    } else {
        let mut writer = app.conn();
        writer.batch_execute("BEGIN EXCLUSIVE").expect("lock");
        let answers = vec![create("locked".into()).await];
        writer.batch_execute("ROLLBACK").expect("unlock");
        assert_eq!(answers[0].status(), 503, "SQLite busy past its timeout");
        answers
    };
    for res in answers {
        match res.status().as_u16() {
            201 => {}
            503 => {
                assert_eq!(res.headers()["retry-after"], "1");
                assert_error(res, 503, "service_unavailable").await;
            }
            other => panic!("{other}: {:?}", res.text().await),
        }
    }
    assert_eq!(create("after".into()).await.status(), 201, "back to normal");
}

/// The `tessera_http_*` series in a `/metrics` text.
fn http_series(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            l.starts_with("tessera_http_requests_total{")
                || l.starts_with("tessera_http_request_duration_seconds_count{")
        })
        .collect()
}

/// Sends requests with the methods, paths and keys `n` picks (values an attacker chooses freely).
async fn garbage(app: &crate::helpers::TestApp, from: usize, to: usize) {
    for n in from..to {
        let method =
            reqwest::Method::from_bytes(format!("FUZZ{n:04}").as_bytes()).expect("a token");
        for path in ["/healthz", &format!("/no/such/page/{n}"), "/v1/auth/check"] {
            let res = app
                .client
                .request(method.clone(), app.url(path))
                .header("Authorization", format!("Bearer sk_live_{n:043}000000"))
                .header("X-Forwarded-For", format!("10.0.{}.{}", n / 256, n % 256))
                .send()
                .await
                .expect("sent");
            assert!(res.status().is_client_error(), "{path}: {}", res.status());
        }
        let res = app
            .client
            .get(app.url("/v1/auth/check"))
            .header("Authorization", format!("Bearer sk_live_{n:043}000000"))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 401);
    }
}

/// Any token is an HTTP method and any path can be asked for: neither may become a label value of
/// its own, or every distinct one adds series that live as long as the process (issue 12, defect 10).
#[actix_web::test]
async fn metric_series_do_not_grow_with_attacker_chosen_methods_paths_or_keys() {
    let app = spawn_app().await;
    app.get("/metrics").await;
    garbage(&app, 0, 5).await;
    let first = app.get("/metrics").await.text().await.expect("body");
    let before = http_series(&first).len();
    garbage(&app, 5, 45).await;
    let text = app.get("/metrics").await.text().await.expect("body");
    let series = http_series(&text);
    assert_eq!(
        series.len(),
        before,
        "40 more distinct methods, paths and keys added series: {series:#?}"
    );
    assert!(
        series.iter().all(|l| !l.contains("FUZZ")),
        "no method label as sent: {series:#?}"
    );
    assert!(
        text.contains(
            r#"tessera_http_requests_total{method="other",route="unmatched",status="404"} 45"#
        ),
        "{text}"
    );
}
