//! Limits that fit real traffic (issue 12, items 1, 2 and 12): the token endpoint limits each
//! authenticated client and counts only failed client authentications per IP; failed sign-ins count
//! per IP and per account with growing delays; password hashing is bounded; a dead Redis is skipped.

use std::time::Duration;

use tessera::audit::{Actor, Origin};

use crate::helpers::{TestApp, assert_error, client, hidden_field, spawn_app_with};

/// Every test here tells the app who the caller is with `X-Forwarded-For` from a trusted proxy.
fn behind_proxy(s: &mut tessera::config::Settings) {
    s.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")];
}

async fn token(app: &TestApp, id: &str, secret: &str, ip: &str) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .header("X-Forwarded-For", ip)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request")
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} is missing"))
        .to_str()
        .expect("ascii header")
}

#[actix_web::test]
async fn the_token_endpoint_limits_each_client_and_counts_only_failed_authentication_per_ip() {
    let app = spawn_app_with(|s| {
        behind_proxy(s);
        s.auth_rate_limit = 3;
        s.token_rate_limit = 5;
        // Every request reads the client, so a new per-client limit applies at once.
        s.api_key_cache_ttl = Duration::ZERO;
    })
    .await;
    let (id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let secret = secret.expect("secret");
    let (other, other_secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let other_secret = other_secret.expect("secret");

    // Successes from one IP are not limited like sign-ins: the client's own limit (5) applies.
    for i in 0..5u32 {
        let res = token(&app, &id, &secret, "203.0.113.1").await;
        assert_eq!(res.status(), 200, "request {i}");
        assert_eq!(header(&res, "x-ratelimit-limit"), "5");
        assert_eq!(header(&res, "x-ratelimit-remaining"), (4 - i).to_string());
    }
    let res = token(&app, &id, &secret, "203.0.113.1").await;
    assert!(header(&res, "retry-after").parse::<u64>().expect("seconds") >= 1);
    assert_eq!(header(&res, "x-ratelimit-limit"), "5");
    assert_eq!(header(&res, "x-ratelimit-remaining"), "0");
    assert!(header(&res, "x-ratelimit-reset").parse::<i64>().is_ok());
    assert_error(res, 429, "rate_limited").await;
    // Another client behind the same IP has its own budget.
    let res = token(&app, &other, &other_secret, "203.0.113.1").await;
    assert_eq!(res.status(), 200);

    // A client's own limit overrides the default.
    tessera::oauth::set_token_rate_limit(
        &mut app.conn(),
        &tessera::oauth::ClientId::from(other.as_str()),
        Some(1),
        Actor::System,
        Origin::default(),
    )
    .expect("set the client's limit");
    let res = token(&app, &other, &other_secret, "203.0.113.1").await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(&res, "x-ratelimit-limit"), "1");
    assert_error(
        token(&app, &other, &other_secret, "203.0.113.1").await,
        429,
        "rate_limited",
    )
    .await;

    // Failed client authentication counts per IP, at the token, revocation and introspection
    // endpoints alike: after 3, the IP is refused even with the right secret.
    let ip = "203.0.113.2";
    assert_error(token(&app, &id, "wrong", ip).await, 401, "invalid_client").await;
    for path in ["/oauth/revoke", "/oauth/introspect"] {
        let res = app
            .client
            .post(app.url(path))
            .basic_auth(&id, Some("wrong"))
            .header("X-Forwarded-For", ip)
            .form(&[("token", "anything")])
            .send()
            .await
            .expect("request");
        assert_error(res, 401, "invalid_client").await;
    }
    let res = token(&app, &other, &other_secret, ip).await;
    assert!(header(&res, "retry-after").parse::<u64>().expect("seconds") >= 1);
    assert_eq!(header(&res, "x-ratelimit-limit"), "3");
    assert_error(res, 429, "rate_limited").await;
    let res = app
        .client
        .post(app.url("/oauth/introspect"))
        .basic_auth(&other, Some(&other_secret))
        .header("X-Forwarded-For", ip)
        .form(&[("token", "anything")])
        .send()
        .await
        .expect("introspect");
    assert_error(res, 429, "rate_limited").await;
    // Other addresses are not affected.
    tessera::oauth::set_token_rate_limit(
        &mut app.conn(),
        &tessera::oauth::ClientId::from(other.as_str()),
        None,
        Actor::System,
        Origin::default(),
    )
    .expect("back to the default");
    assert_eq!(
        token(&app, &other, &other_secret, "203.0.113.3")
            .await
            .status(),
        200
    );
}

/// One sign-in attempt from `ip` in a fresh browser.
async fn sign_in(app: &TestApp, email: &str, password: &str, ip: &str) -> reqwest::Response {
    app.login_request(&client(), &[("email", email), ("password", password)])
        .await
        .header("X-Forwarded-For", ip)
        .send()
        .await
        .expect("sign-in")
}

const PASSWORD: &str = "correct horse battery staple";

#[actix_web::test]
async fn failed_sign_ins_count_per_ip_and_per_account_and_successes_never_count() {
    let app = spawn_app_with(|s| {
        behind_proxy(s);
        s.auth_rate_limit = 4;
    })
    .await;
    app.create_user("ada@example.com", PASSWORD, false);

    // Successes do not count: more sign-ins than the per-IP limit of failures.
    for _ in 0..6 {
        let res = sign_in(&app, "ada@example.com", PASSWORD, "198.51.100.1").await;
        assert_eq!(res.status(), 303);
    }

    // Per IP: 4 failures (on 4 accounts, so no account is delayed), then even the right password
    // from that IP waits; another IP does not.
    for i in 0..4 {
        let res = sign_in(&app, &format!("u{i}@example.com"), "nope", "198.51.100.2").await;
        assert_eq!(res.status(), 401, "failure {i}");
    }
    let res = sign_in(&app, "ada@example.com", PASSWORD, "198.51.100.2").await;
    assert_eq!(res.status(), 429);
    assert!(header(&res, "retry-after").parse::<u64>().expect("seconds") >= 1);
    assert!(header(&res, "content-type").starts_with("text/html"));
    let page = res.text().await.expect("page");
    assert!(page.contains("Too many failed sign-ins"), "{page}");
    assert!(
        hidden_field(&page, "csrf_token").is_some(),
        "the form is shown again"
    );
    let res = sign_in(&app, "ada@example.com", PASSWORD, "198.51.100.3").await;
    assert_eq!(res.status(), 303);

    // Per account, from a new IP each time: 5 failures cost nothing, then each failure makes the
    // account wait longer (1 s, 2 s, 4 s…), so an attempt soon meets a 429.
    let mut failures = 0;
    let mut refused = None;
    for i in 0..12 {
        let res = sign_in(&app, "ada@example.com", "guess", &format!("192.0.2.{i}")).await;
        match res.status().as_u16() {
            401 => failures += 1,
            429 => {
                refused = Some(res);
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    let refused = refused.expect("the account is delayed after repeated failures");
    assert!(
        failures >= 6,
        "5 free failures and one that starts the delay"
    );
    let wait: u64 = header(&refused, "retry-after").parse().expect("seconds");
    assert!((1..=900).contains(&wait));
    let page = refused.text().await.expect("page");
    assert!(page.contains("Too many failed sign-ins"));
}

#[actix_web::test]
async fn parallel_sign_ins_wait_for_a_bounded_number_of_hashes_or_get_503() {
    let app = spawn_app_with(behind_proxy).await;
    app.create_user("grace@example.com", PASSWORD, false);
    let attempts = (0..48).map(|i| {
        let app = &app;
        async move {
            // Each on its own account and IP, so only the gate can turn one away.
            let ip = format!("10.9.{}.{}", i / 200, i % 200);
            sign_in(app, &format!("p{i}@example.com"), "wrong password", &ip).await
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    for res in answers {
        match res.status().as_u16() {
            401 => {}
            503 => {
                assert_eq!(header(&res, "retry-after"), "1");
                let page = res.text().await.expect("page");
                assert!(page.contains("Try again in a moment"), "{page}");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // (How many are turned away depends on timing; the bound itself is a unit test of the gate,
    // and the memory it keeps is checked on the real binary in cli.rs.) The gate is free again afterwards.
    let res = sign_in(&app, "grace@example.com", PASSWORD, "10.9.9.9").await;
    assert_eq!(res.status(), 303);
}

/// A Redis that accepts connections and never answers (frozen); counts the commands it got.
async fn frozen_redis() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("redis://{}", listener.local_addr().expect("addr"));
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    actix_web::rt::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counted = counted.clone();
            actix_web::rt::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    // Every command is a RESP array: `*<count>\r\n` at its start.
                    let text = String::from_utf8_lossy(&buf[..n]);
                    let commands =
                        usize::from(text.starts_with('*')) + text.matches("\r\n*").count();
                    counted.fetch_add(commands, Ordering::SeqCst);
                }
            });
        }
    });
    (url, calls)
}

#[actix_web::test]
async fn a_frozen_redis_is_skipped_after_a_failure_instead_of_waited_on_by_every_request() {
    let (redis, calls) = frozen_redis().await;
    let app = spawn_app_with(|s| {
        s.redis_url = Some(url::Url::parse(&redis).expect("url"));
        s.redis_failure_policy = tessera::ratelimit::FailurePolicy::Local.as_str().into();
    })
    .await;
    let requests = 40;
    for i in 0..requests {
        let res = app
            .client
            .post(app.url("/v1/keys/verify"))
            .json(&serde_json::json!({ "key": "sk_live_nothing" }))
            .send()
            .await
            .expect("verify");
        assert_eq!(res.status(), 200, "request {i} is answered (local limits)");
        assert!(res.headers().contains_key("x-ratelimit-limit"));
    }
    // Each call that reaches a frozen Redis waits 250 ms; the backoff after each doubles (250 ms up
    // to 5 s), so 40 requests in any plausible time reach it a handful of times, not 40.
    let reached = calls.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=8).contains(&reached),
        "{reached} of {requests} limiter calls reached the frozen Redis"
    );
}

#[actix_web::test]
async fn two_nodes_count_failed_client_authentication_together_in_redis() {
    let Some(redis) = crate::helpers::redis(
        "limits::two_nodes_count_failed_client_authentication_together_in_redis",
    ) else {
        return;
    };
    let shared = |s: &mut tessera::config::Settings| {
        behind_proxy(s);
        s.auth_rate_limit = 2;
        s.redis_url = Some(redis.clone());
    };
    let a = spawn_app_with(shared).await;
    let b = crate::helpers::spawn_second_node(&a, shared).await;
    // An address of this run only: Redis outlives test runs.
    let n = tessera::crypto::random_bytes::<3>();
    let ip = format!("10.{}.{}.{}", n[0], n[1], n[2]);
    let attempt = |node: String| {
        let (client, ip) = (a.client.clone(), ip.clone());
        async move {
            client
                .post(format!("{node}/oauth/token"))
                .basic_auth("cli_nobody", Some("wrong"))
                .header("X-Forwarded-For", ip)
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .expect("token")
                .status()
                .as_u16()
        }
    };
    assert_eq!(attempt(a.address.clone()).await, 401);
    assert_eq!(attempt(b.clone()).await, 401);
    assert_eq!(
        attempt(a.address.clone()).await,
        429,
        "two failures across both nodes"
    );
    assert_eq!(attempt(b).await, 429);
}
