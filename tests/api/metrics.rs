//! `/metrics`: the series operators graph (tokens, verifications, sign-ins, rate limits, caches, queues,
//! `process_*`), each counted exactly once per event, and the two ways to protect the endpoint (a
//! listener of its own, a bearer token).

use std::collections::BTreeMap;

use serde_json::json;
use tessera::startup::Application;

use crate::helpers::{
    Credential, TestApp, TestDb, assert_error, check, client, key, spawn_app_with, test_settings,
};

/// The value of the series `name` with exactly `labels` (in any order) in an exposition; `None` when
/// the series is absent.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let wanted: BTreeMap<&str, &str> = labels.iter().copied().collect();
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (set, number) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        let found: BTreeMap<&str, &str> = set
            .split(',')
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((k, v.trim_matches('"')))
            })
            .collect();
        (found == wanted).then(|| number.trim().parse().ok())?
    })
}

/// As [`value`], panicking when the series is absent.
fn count(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(text, name, labels).unwrap_or_else(|| panic!("{name}{labels:?} in\n{text}"))
}

async fn scrape(app: &TestApp) -> String {
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    res.text().await.expect("metrics text")
}

async fn verify(app: &TestApp, key: &str) -> String {
    let res = app
        .client
        .post(app.url("/v1/keys/verify"))
        .json(&json!({ "key": key }))
        .send()
        .await
        .expect("verify");
    assert_eq!(res.status(), 200, "verify always answers 200");
    let body: serde_json::Value = res.json().await.expect("json");
    body["code"].as_str().expect("code").to_owned()
}

async fn token_request(app: &TestApp, id: &str, secret: &str, grant: &str) -> u16 {
    app.client
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", grant)])
        .send()
        .await
        .expect("token request")
        .status()
        .as_u16()
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> u16 {
    app.log_in(&client(), email, password)
        .await
        .status()
        .as_u16()
}

#[actix_web::test]
async fn each_event_is_counted_once_under_bounded_labels() {
    let app = spawn_app_with(|s| {
        // Two requests per key, then refusals; answers cached long enough to be hits however slow
        // the machine; usage kept in memory for the whole test (the flush queue is read below).
        s.api_key_rate_limit = 2;
        s.api_key_cache_ttl = std::time::Duration::from_secs(5);
        s.usage_flush_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    let (client_id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let secret = secret.expect("a confidential client has a secret");
    let (_, api_key) = key(&app, "sk", "live", &[]);
    app.create_user("ops@example.com", "correct horse battery", false);

    // (On PostgreSQL, spawn_app waited for the invalidation listener, which clears every cache when
    // it connects: it cannot empty a cache in the middle of the counts.)
    let before = scrape(&app).await;
    let issued = [
        ("client_type", "confidential"),
        ("grant", "client_credentials"),
    ];
    let bad_client = [("grant", "client_credentials"), ("error", "invalid_client")];
    let bad_grant = [("grant", "other"), ("error", "unsupported_grant_type")];
    let series = |text: &str| {
        [
            count(text, "tessera_tokens_issued_total", &issued),
            value(text, "tessera_token_failures_total", &bad_client).unwrap_or(0.0),
            value(text, "tessera_token_failures_total", &bad_grant).unwrap_or(0.0),
            count(
                text,
                "tessera_key_verifications_total",
                &[("via", "verify"), ("code", "valid")],
            ),
            count(
                text,
                "tessera_key_verifications_total",
                &[("via", "verify"), ("code", "invalid_api_key")],
            ),
            count(
                text,
                "tessera_key_verifications_total",
                &[("via", "verify"), ("code", "rate_limited")],
            ),
            count(
                text,
                "tessera_key_verifications_total",
                &[("via", "forward_auth"), ("code", "invalid_api_key")],
            ),
            count(
                text,
                "tessera_key_verifications_total",
                &[("via", "forward_auth"), ("code", "missing_api_key")],
            ),
            count(text, "tessera_sign_ins_total", &[]),
            count(
                text,
                "tessera_sign_in_failures_total",
                &[("reason", "wrong_password")],
            ),
            count(
                text,
                "tessera_sign_in_failures_total",
                &[("reason", "unknown_account")],
            ),
            count(
                text,
                "tessera_rate_limited_total",
                &[("limiter", "api_key")],
            ),
            count(text, "tessera_cache_hits_total", &[("cache", "keys")]),
            count(text, "tessera_cache_misses_total", &[("cache", "keys")]),
            count(text, "tessera_cache_hits_total", &[("cache", "clients")]),
            count(text, "tessera_cache_misses_total", &[("cache", "clients")]),
        ]
    };
    let start = series(&before);

    // One token issued, one refused for a wrong secret, one for a grant Tessera does not support
    // (labelled `other`, never by the value sent).
    assert_eq!(
        token_request(&app, &client_id, &secret, "client_credentials").await,
        200
    );
    assert_eq!(
        token_request(&app, &client_id, "wrong", "client_credentials").await,
        401
    );
    assert_eq!(
        token_request(&app, &client_id, &secret, "password").await,
        400
    );
    // A valid key twice (a cache miss, then a hit), then refused by its rate limit (a hit); a
    // malformed key (refused before any lookup, so no cache traffic).
    assert_eq!(verify(&app, &api_key).await, "valid");
    assert_eq!(verify(&app, &api_key).await, "valid");
    assert_eq!(verify(&app, &api_key).await, "rate_limited");
    assert_eq!(verify(&app, "sk_live_not-a-key").await, "invalid_api_key");
    // Forward-auth: a bad key, and no credential at all.
    let res = check(&app.address, Credential::ApiKey("sk_live_not-a-key")).await;
    assert_error(res, 401, "invalid_api_key").await;
    let res = app.get("/v1/auth/check").await;
    assert_error(res, 401, "missing_api_key").await;
    // Sign-ins: one good, one wrong password, one unknown account.
    assert_eq!(
        sign_in(&app, "ops@example.com", "correct horse battery").await,
        303
    );
    assert_eq!(
        sign_in(&app, "ops@example.com", "wrong password").await,
        401
    );
    assert_eq!(sign_in(&app, "nobody@example.com", "whatever").await, 401);

    let after = scrape(&app).await;
    let end = series(&after);
    let increased: Vec<f64> = end.iter().zip(start).map(|(e, s)| e - s).collect();
    assert_eq!(
        increased,
        [
            1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0
        ],
        "increases of tokens issued, token failures (client, grant), verifications (valid, \
         invalid, rate limited, forward-auth invalid, missing), sign-ins, sign-in failures (wrong \
         password, unknown account), rate-limit refusals, key cache hits and misses, client cache \
         hits and misses (the first token request misses once, the second hits)\n{after}"
    );

    // Bounded labels: neither the client id nor the unsupported grant's name is a label value.
    assert!(!after.contains(&client_id), "{after}");
    assert!(!after.contains("\"password\""), "{after}");
    // Gauges sampled at the scrape: the key's and the client's usage wait for the next flush; the
    // verified key is cached.
    assert!(
        count(&after, "tessera_queue_length", &[("queue", "usage_flush")]) >= 2.0,
        "{after}"
    );
    for queue in ["cache_invalidation", "password_hashing"] {
        count(&after, "tessera_queue_length", &[("queue", queue)]);
    }
    assert!(count(&after, "tessera_cache_entries", &[("cache", "keys")]) >= 1.0);
    for cache in ["tokens", "clients", "apis", "jwks"] {
        count(&after, "tessera_cache_hits_total", &[("cache", cache)]);
        count(&after, "tessera_cache_misses_total", &[("cache", cache)]);
    }
    // The standard process series, without the `tessera_` prefix.
    if cfg!(target_os = "linux") {
        // CPU seconds are whole seconds here: present, perhaps still 0.
        count(&after, "process_cpu_seconds_total", &[]);
        for name in [
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(count(&after, name, &[]) > 0.0, "{name} in\n{after}");
        }
    }
}

/// A fresh app with `/metrics` on a listener of its own at port 0; the app and that listener's port.
async fn spawn_with_metrics_listener() -> (TestApp, u16) {
    let db = TestDb::fresh();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let port = listener.local_addr().expect("local address").port();
    let mut settings = test_settings(&db);
    settings.issuer = url::Url::parse(&format!("http://127.0.0.1:{port}")).expect("issuer URL");
    settings.metrics_bind = Some("127.0.0.1:0".parse().expect("static address"));
    let app = Application::build_with_listener(settings, listener)
        .await
        .expect("the app starts");
    let metrics_port = app.metrics_port().expect("a metrics listener");
    assert_ne!(metrics_port, port);
    actix_web::rt::spawn(app.run_until_stopped());
    let app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: client(),
        db,
    };
    (app, metrics_port)
}

#[actix_web::test]
async fn metrics_bind_serves_metrics_only_on_its_own_listener() {
    let (app, metrics_port) = spawn_with_metrics_listener().await;
    assert_error(app.get("/metrics").await, 404, "not_found").await;
    assert_eq!(app.get("/healthz").await.status(), 200);

    let metrics = format!("http://127.0.0.1:{metrics_port}");
    let res = app
        .client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .expect("metrics listener");
    assert_eq!(res.status(), 200);
    let text = res.text().await.expect("body");
    assert!(
        text.contains(
            r#"tessera_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "the metrics listener shows the main listener's traffic:\n{text}"
    );
    let res = app
        .client
        .get(format!("{metrics}/healthz"))
        .send()
        .await
        .expect("metrics listener");
    assert_error(res, 404, "not_found").await;
}

#[actix_web::test]
async fn metrics_token_is_required_when_set() {
    const TOKEN: &str = "scrape-me-0123456789";
    let app = spawn_app_with(|s| {
        s.metrics_token = Some(tessera::config::SecretBytes::new(TOKEN.as_bytes().to_vec()));
    })
    .await;
    let get = |auth: Option<String>| {
        let mut req = app.client.get(app.url("/metrics"));
        if let Some(auth) = auth {
            req = req.header("Authorization", auth);
        }
        req.send()
    };
    for auth in [
        None,
        Some("Bearer wrong-token-0123456789".to_owned()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
    ] {
        let res = get(auth.clone()).await.expect("metrics");
        assert_eq!(
            res.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some(r#"Bearer realm="tessera""#),
            "{auth:?}"
        );
        assert_error(res, 401, "unauthenticated").await;
    }
    let res = get(Some(format!("Bearer {TOKEN}"))).await.expect("metrics");
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .expect("body")
            .contains("tessera_http_requests_total"),
    );
}
