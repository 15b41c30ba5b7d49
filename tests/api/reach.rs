//! What a credential may reach: a key manages only its own environment's keys, forward-auth checks
//! the audience, API-key scopes and APIs are registered names, and only resource servers introspect,
//! only their APIs' tokens.

use serde_json::{Value, json};
use tessera::apikeys::KeyInput;
use tessera::audit::Actor;
use tessera::config::{KeyTypeSetting, Settings};

use crate::helpers::{
    Credential, TestApp, assert_error, check_request, create_key, key, service_token, spawn_app,
    spawn_app_with,
};

const BILLING: &str = "https://billing.example/api";

/// Registers the billing API with a `read` scope.
fn billing_api(app: &TestApp) {
    let mut conn = app.conn();
    tessera::oauth::create_api(&mut conn, BILLING, "Billing", Actor::System).expect("api");
    tessera::oauth::create_scope(
        &mut conn,
        &app.address,
        "read",
        "Read invoices",
        Some(BILLING),
        Actor::System,
    )
    .expect("scope");
}

/// A key of `key_type` and `env` for the APIs `apis` (none: any API).
fn key_for(app: &TestApp, key_type: &str, env: &str, scopes: &[&str], apis: &[&str]) -> String {
    let input = KeyInput {
        name: "Reach".into(),
        key_type: key_type.into(),
        env: env.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        apis: apis.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    create_key(app, &Settings::default(), input).expect("key").1
}

/// A client_credentials token of the client `id` for the API `resource`.
async fn token_for(app: &TestApp, id: &str, secret: &str, resource: &str) -> String {
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("resource", resource)])
        .send()
        .await
        .expect("token request");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}

/// A confidential client_credentials client allowed `read`; a resource server of `introspect`.
fn client(app: &TestApp, introspect: &[&str]) -> (String, String) {
    let (id, secret) = app
        .register_client(tessera::oauth::ClientInput {
            name: "Reach".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["read".into()],
            introspect: introspect.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .expect("client");
    (id, secret.expect("secret"))
}

async fn keys_api(
    app: &TestApp,
    caller: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(caller)
        .header("Accept-Language", "es-ES");
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("keys API")
}

/// Forward-auth of `credential` (a bearer token or key), with the audience it must have in the
/// `query` or in the `X-Required-Audience` header (`("header", …)`).
async fn check(
    app: &TestApp,
    credential: &str,
    audience: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut req = check_request(&app.address, credential);
    match audience {
        Some(("query", a)) => req = req.query(&[("audience", a)]),
        Some((_, a)) => req = req.header("X-Required-Audience", a),
        None => {}
    }
    req.send().await.expect("check")
}

#[actix_web::test]
async fn a_test_key_manages_only_test_keys() {
    // `ak` is an operator's full-access type (no scope list): bound to its environment like `sk`.
    let ak = KeyTypeSetting {
        name: "ak".into(),
        prefix: "ak_".into(),
        scopes: None,
        publishable: false,
        default_ttl: None,
        max_ttl: None,
    };
    let mut settings = Settings::default();
    settings.key_types.push(ak.clone());
    let app = spawn_app_with(|s| s.key_types.push(ak)).await;
    let (live_id, live) = key(&app, "sk", "live", &[]);
    let custom = |env: &str| KeyInput {
        name: "Operator".into(),
        key_type: "ak".into(),
        env: env.into(),
        ..Default::default()
    };
    let (_, ak_test) = create_key(&app, &settings, custom("test")).expect("ak key");
    let (_, sk_test) = key(&app, "sk", "test", &[]);
    for caller in [&sk_test, &ak_test] {
        let res = keys_api(
            &app,
            caller,
            reqwest::Method::POST,
            "/v1/keys",
            Some(json!({ "name": "Escalated", "env": "live" })),
        )
        .await;
        let body = assert_error(res, 403, "wrong_environment").await;
        let message = body["message"].as_str().expect("message");
        assert!(
            message.contains("test") && message.contains("entorno"),
            "{message}"
        );
        let res = keys_api(
            &app,
            caller,
            reqwest::Method::POST,
            "/v1/keys",
            Some(json!({ "name": "Sibling", "env": "test" })),
        )
        .await;
        assert_eq!(res.status(), 201);
        let made: Value = res.json().await.expect("json");
        assert!(
            made["key"]
                .as_str()
                .is_some_and(|k| k.starts_with("sk_test_"))
        );
        // No env given: the caller's own.
        let res = keys_api(
            &app,
            caller,
            reqwest::Method::POST,
            "/v1/keys",
            Some(json!({ "name": "Implicit" })),
        )
        .await;
        assert_eq!(res.status(), 201);
        let made: Value = res.json().await.expect("json");
        assert_eq!(made["env"], "test");

        // Listing shows only test keys; a live key by id is not found, nor revoked, nor rotated.
        let res = keys_api(&app, caller, reqwest::Method::GET, "/v1/keys", None).await;
        let list: Value = res.json().await.expect("json");
        let data = list["data"].as_array().expect("data");
        assert!(
            !data.is_empty() && data.iter().all(|k| k["env"] == "test"),
            "{list}"
        );
        for (method, path) in [
            (reqwest::Method::GET, format!("/v1/keys/{live_id}")),
            (reqwest::Method::POST, format!("/v1/keys/{live_id}/revoke")),
            (reqwest::Method::POST, format!("/v1/keys/{live_id}/rotate")),
        ] {
            let res = keys_api(&app, caller, method, &path, None).await;
            assert_error(res, 404, "not_found").await;
        }
    }
    let res = check(&app, &live, None).await;
    assert_eq!(res.status(), 200, "the live key was left alone");
    // A live key manages live keys as before.
    let res = keys_api(
        &app,
        &live,
        reqwest::Method::POST,
        "/v1/keys",
        Some(json!({ "name": "Live sibling", "env": "live" })),
    )
    .await;
    assert_eq!(res.status(), 201);
}

#[actix_web::test]
async fn forward_auth_requires_the_audience_asked_for() {
    let app = spawn_app().await;
    billing_api(&app);
    let (id, secret) = client(&app, &[]);
    let billing_token = token_for(&app, &id, &secret, BILLING).await;
    let default_token = service_token(&app, &id, &secret).await;
    for how in ["query", "header"] {
        let res = check(&app, &billing_token, Some((how, BILLING))).await;
        assert_eq!(res.status(), 200, "{how}");
        assert_eq!(res.headers()["x-auth-audience"], BILLING);
        let res = check(&app, &billing_token, Some((how, &app.address))).await;
        let www = res.headers().get("www-authenticate").cloned();
        assert_error(res, 403, "invalid_audience").await;
        assert!(www.is_none(), "as the other 403s");
        let res = check(&app, &default_token, Some((how, BILLING))).await;
        assert_error(res, 403, "invalid_audience").await;
    }
    assert_eq!(check(&app, &billing_token, None).await.status(), 200);

    // A key made for the billing API passes only for it; a key made for no API passes for any.
    let billing_key = key_for(&app, "rk", "live", &["read"], &[BILLING]);
    let any_key = key_for(&app, "rk", "live", &["read"], &[]);
    assert_eq!(
        check(&app, &billing_key, Some(("query", BILLING)))
            .await
            .status(),
        200
    );
    let res = check(
        &app,
        &billing_key,
        Some(("header", "https://other.example")),
    )
    .await;
    assert_error(res, 403, "invalid_audience").await;
    assert_eq!(check(&app, &billing_key, None).await.status(), 200);
    for audience in [BILLING, "https://other.example"] {
        assert_eq!(
            check(&app, &any_key, Some(("query", audience)))
                .await
                .status(),
            200
        );
    }
}

#[actix_web::test]
async fn keys_take_only_registered_scopes_and_apis() {
    let app = spawn_app().await;
    billing_api(&app);
    let admin = key(&app, "sk", "live", &[]).1;
    let post = |body: Value| keys_api(&app, &admin, reqwest::Method::POST, "/v1/keys", Some(body));
    let res = post(json!({ "name": "Typo", "type": "rk", "scopes": ["read", "raed"] })).await;
    let body = assert_error(res, 400, "invalid_request").await;
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains("raed") && message.contains("read, write"),
        "the valid names are listed: {message}"
    );
    let res = post(json!({ "name": "Nowhere", "type": "rk", "scopes": ["read"],
                           "apis": ["https://nowhere.example"] }))
    .await;
    let body = assert_error(res, 400, "invalid_request").await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains(BILLING)),
        "{body}"
    );
    let res = post(
        json!({ "name": "Billing", "type": "rk", "scopes": ["read", "introspect"],
                           "apis": [BILLING] }),
    )
    .await;
    assert_eq!(res.status(), 201);
    let made: Value = res.json().await.expect("json");
    assert_eq!(made["apis"], json!([BILLING]));
    assert_eq!(made["scopes"], json!(["introspect", "read"]));
    let typo = KeyInput {
        name: "Typo".into(),
        key_type: "rk".into(),
        env: "live".into(),
        scopes: vec!["anything-at-all".into()],
        ..Default::default()
    };
    assert_eq!(
        create_key(&app, &Settings::default(), typo),
        Err("invalid_request".to_owned()),
        "the CLI and the dashboard create keys through the same function"
    );
}

#[actix_web::test]
async fn forward_auth_limits_tokens_per_client_and_subject() {
    let app = spawn_app_with(|s| s.api_key_rate_limit = 2).await;
    let (id, secret) = client(&app, &[]);
    let token = service_token(&app, &id, &secret).await;
    for i in 0..2 {
        let res = check(&app, &token, None).await;
        assert_eq!(res.status(), 200, "request {i}");
        assert_eq!(res.headers()["x-ratelimit-limit"], "2");
    }
    let res = check(&app, &token, None).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_error(res, 429, "rate_limited").await;
    // Another client's token has its own budget.
    let (other, other_secret) = client(&app, &[]);
    let other_token = service_token(&app, &other, &other_secret).await;
    assert_eq!(check(&app, &other_token, None).await.status(), 200);
}

#[actix_web::test]
async fn only_resource_servers_introspect_and_only_their_apis_tokens() {
    let app = spawn_app().await;
    billing_api(&app);
    let (id, secret) = client(&app, &[]);
    let default_token = service_token(&app, &id, &secret).await;
    let billing_token = token_for(&app, &id, &secret, BILLING).await;
    let any_key = key_for(&app, "rk", "live", &["read"], &[]);
    let billing_key = key_for(&app, "rk", "live", &["read"], &[BILLING]);

    // A confidential client that is no resource server learns nothing.
    let (plain, plain_secret) = client(&app, &[]);
    for token in [&default_token, &billing_token, &any_key] {
        assert_eq!(
            app.introspect((&plain, &plain_secret), token).await,
            json!({ "active": false })
        );
    }
    // A resource server of the default API: its tokens, and keys for it or for any API.
    let (rs, rs_secret) = client(&app, &[&app.address]);
    let rs = (rs.as_str(), rs_secret.as_str());
    for _ in 0..2 {
        // twice: the second answer comes from the node's token cache
        assert_eq!(app.introspect(rs, &default_token).await["active"], true);
        assert_eq!(
            app.introspect(rs, &billing_token).await,
            json!({ "active": false })
        );
    }
    assert_eq!(app.introspect(rs, &any_key).await["active"], true);
    assert_eq!(app.introspect(rs, &billing_key).await["active"], false);
    // The billing API's resource server sees the billing token and key.
    let (billing_rs, billing_secret) = client(&app, &[BILLING]);
    let billing_rs = (billing_rs.as_str(), billing_secret.as_str());
    let info = app.introspect(billing_rs, &billing_token).await;
    assert_eq!(
        (info["active"].clone(), info["aud"].clone()),
        (json!(true), json!(BILLING))
    );
    assert_eq!(
        app.introspect(billing_rs, &default_token).await["active"],
        false
    );
    let info = app.introspect(billing_rs, &billing_key).await;
    assert_eq!(
        (info["active"].clone(), info["aud"].clone()),
        (json!(true), json!([BILLING]))
    );
}

#[actix_web::test]
async fn introspecting_keys_see_their_environment_and_apis() {
    let app = spawn_app().await;
    billing_api(&app);
    let (id, secret) = client(&app, &[]);
    let default_token = service_token(&app, &id, &secret).await;
    let billing_token = token_for(&app, &id, &secret, BILLING).await;
    let live_key = key_for(&app, "rk", "live", &["read"], &[]);
    let test_key = key_for(&app, "rk", "test", &["read"], &[]);

    let test_caller = key_for(&app, "rk", "test", &["introspect"], &[]);
    assert_eq!(
        app.introspect(Credential::ApiKey(&test_caller), &test_key)
            .await["active"],
        true
    );
    assert_eq!(
        app.introspect(Credential::ApiKey(&test_caller), &live_key)
            .await,
        json!({ "active": false })
    );
    assert_eq!(
        app.introspect(Credential::ApiKey(&test_caller), &default_token)
            .await["active"],
        true
    );

    // A caller made for the billing API sees that API's tokens only.
    let billing_caller = key_for(&app, "rk", "live", &["introspect"], &[BILLING]);
    assert_eq!(
        app.introspect(Credential::ApiKey(&billing_caller), &billing_token)
            .await["active"],
        true
    );
    assert_eq!(
        app.introspect(Credential::ApiKey(&billing_caller), &default_token)
            .await["active"],
        false
    );
    assert_eq!(
        app.introspect(Credential::ApiKey(&billing_caller), &live_key)
            .await["active"],
        true
    );
}

#[test]
fn the_cli_marks_resource_servers_and_makes_keys_for_named_apis() {
    use crate::cli::{run, tessera};
    let dir = tempfile::tempdir().expect("tmp");
    let db = crate::helpers::TestDb::fresh();
    let cli = |args: &[&str]| {
        let out = run(
            tessera(dir.path())
                .args(args)
                .arg("--json")
                .env("TESSERA_ISSUER", "https://auth.example")
                .env("TESSERA_DATABASE_URL", db.url_string()),
            None,
        );
        let body: Value = serde_json::from_slice(&out.stdout).expect("json");
        (out.status.code(), body)
    };
    let (code, _) = cli(&["api", "create", "--audience", BILLING, "--name", "Billing"]);
    assert_eq!(code, Some(0));
    let client = [
        "client",
        "create",
        "--name",
        "RS",
        "--grant-type",
        "client_credentials",
    ];
    let (code, made) = cli(&[&client[..], &["--introspect"]].concat());
    assert_eq!(code, Some(0), "{made}");
    assert_eq!(
        made["introspect"],
        json!(["https://auth.example"]),
        "bare: the default API"
    );
    let (_, made) = cli(&[&client[..], &["--introspect", BILLING]].concat());
    assert_eq!(made["introspect"], json!([BILLING]));
    let (_, made) = cli(&client);
    assert_eq!(made["introspect"], json!([]), "not a resource server");
    let (code, refused) =
        cli(&[&client[..], &["--introspect", "https://nowhere.example"]].concat());
    assert_eq!(
        (code, refused["error"].clone()),
        (Some(1), json!("invalid_request"))
    );

    let key = [
        "key", "create", "--name", "K", "--type", "rk", "--scope", "read",
    ];
    let (code, made) = cli(&[&key[..], &["--api", BILLING]].concat());
    assert_eq!(code, Some(0), "{made}");
    assert_eq!(made["apis"], json!([BILLING]));
    let (code, refused) = cli(&[
        "key", "create", "--name", "K", "--type", "rk", "--scope", "raed",
    ]);
    assert_eq!(code, Some(1));
    let message = refused["message"].as_str().expect("message");
    assert!(
        message.contains("raed") && message.contains("offline_access, openid"),
        "{message}"
    );
}
