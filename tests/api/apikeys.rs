//! API keys: format, storage, verification, forward-auth, rotation, limits.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera::apikeys::Presentation;
use tessera::apikeys::{self, KeyInput};
use tessera::audit::{Actor, Origin};
use tessera::config::{KeyTypeSetting, SecretBytes, Settings};

use crate::helpers::{
    Credential, TEST_PEPPER, TestApp, assert_error, check, create_key, eventually, key, redis,
    spawn_app, spawn_app_with, spawn_second_node,
};

async fn verify(app: &TestApp, body: Value) -> Value {
    let res = app
        .client
        .post(app.url("/v1/keys/verify"))
        .json(&body)
        .send()
        .await
        .expect("verify");
    assert_eq!(res.status(), 200);
    res.json().await.expect("json")
}

async fn lookups(app: &TestApp) -> u64 {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix("tessera_api_key_lookups_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the lookup counter")
}

#[actix_web::test]
async fn keys_are_shown_once_and_stored_only_as_hashes() {
    let app = spawn_app().await;
    let (id, secret) = key(&app, "sk", "live", &[]);
    assert!(secret.starts_with("sk_live_"), "{secret}");
    assert_eq!(secret.len(), "sk_live_".len() + 43 + 6);
    let (_, restricted) = key(&app, "rk", "test", &["read"]);
    assert!(restricted.starts_with("rk_test_"));

    use diesel::prelude::*;
    use tessera::db::schema::api_keys;
    let mut conn = app.conn();
    let (hash, prefix, last_four, scopes): (String, String, String, String) = api_keys::table
        .find(&id)
        .select((
            api_keys::key_hash,
            api_keys::display_prefix,
            api_keys::last_four,
            api_keys::scopes,
        ))
        .first(&mut conn)
        .expect("row");
    assert_eq!(hash.len(), 64, "HMAC-SHA256 hex");
    assert_eq!(prefix, "sk_live_");
    assert_eq!(last_four, secret[secret.len() - 4..]);
    assert_eq!(scopes, "*", "sk keys have full access");
    let dump: Vec<(String, String, String)> = api_keys::table
        .select((api_keys::key_hash, api_keys::name, api_keys::metadata))
        .load(&mut conn)
        .expect("rows");
    assert!(
        dump.iter().all(|(h, n, m)| !h.contains(&secret[8..20])
            && !n.contains(&secret[8..20])
            && !m.contains(&secret[8..20])),
        "no part of the key body is stored"
    );

    let info = verify(&app, json!({ "key": secret })).await;
    assert_eq!(info["valid"], true, "{info}");
    assert_eq!(info["code"], "valid");
    assert_eq!(info["key_id"], id.as_str());
    assert_eq!(info["type"], "sk");
    assert_eq!(info["env"], "live");
    assert_eq!(info["scopes"], json!(["*"]));
    assert_eq!(info["ratelimit"]["limit"], 3000);
    assert!(info["ratelimit"]["remaining"].as_u64() < Some(3000));
    assert!(info["ratelimit"]["reset"].as_i64() > Some(0));
}

#[actix_web::test]
async fn verify_answers_every_code_and_malformed_keys_never_reach_the_database() {
    let app = spawn_app().await;
    let (_, live) = key(&app, "sk", "live", &[]);
    let (rk_id, restricted) = key(&app, "rk", "live", &["read", "write"]);
    let (revoked_id, revoked) = key(&app, "rk", "live", &["read"]);
    let (expired_id, expired) = key(&app, "rk", "test", &["read"]);
    {
        let mut conn = app.conn();
        apikeys::revoke_key(
            &mut conn,
            &revoked_id.as_str().into(),
            Actor::Cli,
            Origin::default(),
        )
        .expect("revoke");
        use diesel::connection::SimpleConnection as _;
        conn.batch_execute(&format!(
            "UPDATE api_keys SET expires_at = 1000 WHERE id = '{expired_id}'"
        ))
        .expect("expire");
    }
    let code = |v: &Value| v["code"].as_str().expect("code").to_owned();
    let ok = verify(
        &app,
        json!({ "key": restricted, "required_scopes": ["read"] }),
    )
    .await;
    assert_eq!(code(&ok), "valid");
    assert_eq!(ok["key_id"], rk_id.as_str());
    assert_eq!(ok["scopes"], json!(["read", "write"]));
    let cases = [
        (
            json!({ "key": restricted, "required_scopes": "read delete" }),
            "insufficient_permissions",
        ),
        (json!({ "key": revoked }), "revoked_api_key"),
        (json!({ "key": expired }), "expired_api_key"),
        (
            json!({ "key": live, "required_env": "test" }),
            "invalid_api_key",
        ),
        (
            json!({ "key": expired.replacen("_test_", "_live_", 1) }),
            "invalid_api_key",
        ),
    ];
    for (body, expected) in cases {
        let info = verify(&app, body.clone()).await;
        assert_eq!(code(&info), expected, "{body}");
        assert_eq!(info["valid"], false);
    }
    assert_eq!(
        code(&verify(&app, json!({ "key": live, "required_env": "live" })).await),
        "valid"
    );

    // A well-formed key nobody issued: invalid, and nothing else is said about it.
    const INVALID_KEY: &str = "The API key or access token is not valid.";
    let unknown = tessera::apikeys::format::generate("sk_", "live");
    let info = verify(&app, json!({ "key": unknown })).await;
    assert_eq!(
        info,
        json!({ "valid": false, "code": "invalid_api_key", "message": INVALID_KEY })
    );

    // Typos in the body, the checksum or the prefix are refused without a lookup.
    let before = lookups(&app).await;
    let mut typo = live.clone().into_bytes();
    typo[12] = if typo[12] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).expect("ascii");
    let malformed = [
        typo,
        with_last_char_changed(&live),
        live.replacen("sk_", "xk_", 1),
        live[..live.len() - 2].to_owned(),
        format!("{live}0"),
        "sk_live_".to_owned(),
        "".to_owned(),
    ];
    for bad in &malformed {
        let info = verify(&app, json!({ "key": bad })).await;
        assert_eq!(
            info,
            json!({ "valid": false, "code": "invalid_api_key", "message": INVALID_KEY }),
            "{bad}"
        );
    }
    assert_eq!(
        lookups(&app).await,
        before,
        "no database lookup for malformed keys"
    );
    let _ = verify(&app, json!({ "key": live })).await;
    assert_eq!(
        lookups(&app).await,
        before + 1,
        "a well-formed key is looked up once"
    );
}

#[actix_web::test]
async fn forward_auth_takes_the_key_from_every_accepted_place() {
    let app = spawn_app().await;
    let (id, secret) = key(&app, "rk", "live", &["read"]);
    let url = app.url("/v1/auth/check");
    let c = &app.client;
    let requests = [
        ("bearer", c.get(&url).bearer_auth(&secret)),
        ("x-api-key", c.get(&url).header("X-API-Key", &secret)),
        (
            "token",
            c.get(&url)
                .header("Authorization", format!("Token {secret}")),
        ),
        ("query", c.get(format!("{url}?api_key={secret}"))),
        (
            "original uri",
            c.get(&url)
                .header("X-Original-URI", format!("/things?x=1&api_key={secret}")),
        ),
        (
            "json body",
            c.post(&url).json(&json!({ "api_key": secret })),
        ),
    ];
    for (place, req) in requests {
        let res = req.send().await.expect("check");
        assert_eq!(res.status(), 200, "{place}");
        assert_eq!(res.headers()["x-auth-key-id"], id.as_str(), "{place}");
        assert_eq!(res.headers()["x-auth-scopes"], "read");
        assert_eq!(
            res.headers()["x-auth-subject"],
            id.as_str(),
            "no owner: the key is the subject"
        );
        for h in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            assert!(res.headers().contains_key(h), "{place}: {h}");
        }
    }

    let res = c.get(&url).send().await.expect("check");
    let www = res.headers().get("www-authenticate").cloned();
    assert_error(res, 401, "missing_api_key").await;
    assert!(www.is_some(), "WWW-Authenticate on 401");
    let res = c
        .get(format!("{url}?scopes=write"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("check");
    assert_error(res, 403, "insufficient_permissions").await;
    let res = c
        .get(&url)
        .header("X-Required-Scopes", "read,write")
        .header("X-API-Key", &secret)
        .header("Accept-Language", "es-ES")
        .send()
        .await
        .expect("check");
    let body = assert_error(res, 403, "insufficient_permissions").await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("alcance")),
        "{body}"
    );
    let res = c
        .get(&url)
        .bearer_auth(with_last_char_changed(&secret))
        .send()
        .await
        .expect("check");
    assert_error(res, 401, "invalid_api_key").await;
    let res = c
        .get(format!("{url}?env=test"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("check");
    assert_error(res, 401, "invalid_api_key").await;
}

async fn metric(address: &str, name: &str) -> u64 {
    let text = crate::helpers::client()
        .get(format!("{address}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("tessera_{name} ")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in the metrics"))
}

/// Forward-auth's status for the key `secret` (in `X-API-Key`) on `node`.
async fn check_status(node: &str, secret: &str) -> u16 {
    check(node, Credential::ApiKey(secret))
        .await
        .status()
        .as_u16()
}

#[actix_web::test]
async fn a_revoked_key_is_refused_at_once_by_its_node_and_within_5s_by_the_others() {
    let a = spawn_app().await;
    let b = spawn_second_node(&a, |_| {}).await;
    let (_, admin_key) = key(&a, "sk", "live", &[]);
    let (id, secret) = key(&a, "rk", "live", &["read"]);
    // Both nodes answer from their caches once they have seen the key.
    for node in [a.address.as_str(), b.as_str()] {
        let hits = metric(node, "api_key_cache_hits_total").await;
        assert_eq!(check_status(node, &secret).await, 200);
        assert_eq!(check_status(node, &secret).await, 200);
        assert_eq!(
            metric(node, "api_key_cache_hits_total").await,
            hits + 1,
            "the second check is answered by the cache"
        );
    }

    let res = a
        .client
        .post(a.url(&format!("/v1/keys/{id}/revoke")))
        .bearer_auth(&admin_key)
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), 200);
    let res = check(&a.address, &secret).await;
    assert_error(res, 401, "revoked_api_key").await;

    // The other node holds the key for at most TESSERA_API_KEY_CACHE_TTL (2 s by default).
    eventually(
        Duration::from_secs(5),
        "node B refuses the revoked key",
        || async { check_status(&b, &secret).await != 200 },
    )
    .await;
    assert_eq!(check_status(&b, &secret).await, 401);

    // With the cache off, a revocation made anywhere is seen on the next request.
    let c = spawn_second_node(&a, |s| s.api_key_cache_ttl = Duration::ZERO).await;
    let (id, secret) = key(&a, "rk", "live", &["read"]);
    assert_eq!(check_status(&c, &secret).await, 200);
    {
        let mut conn = a.conn();
        apikeys::revoke_key(
            &mut conn,
            &id.as_str().into(),
            Actor::Cli,
            Origin::default(),
        )
        .expect("revoke");
    }
    assert_eq!(check_status(&c, &secret).await, 401);
    assert_eq!(metric(&c, "api_key_cache_hits_total").await, 0);
}

#[actix_web::test]
async fn forward_auth_accepts_tessera_access_tokens_until_they_are_revoked() {
    let app = spawn_app().await;
    let (id, secret, token) = access_token(&app).await;
    let url = app.url("/v1/auth/check");
    let res = check(&app.address, &token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-auth-client-id"], id.as_str());
    assert_eq!(res.headers()["x-auth-subject"], id.as_str());
    assert_eq!(res.headers()["x-auth-scopes"], "read");
    let res = app
        .client
        .get(format!("{url}?scopes=write"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("check");
    assert_error(res, 403, "insufficient_permissions").await;
    assert_eq!(app.revoke(&id, &secret, &token).await, 200);
    let res = check(&app.address, &token).await;
    assert_error(res, 401, "invalid_api_key").await;
}

/// A client_credentials access token of a new client on `app`: (client id, secret, token).
/// A client (a resource server of the default API too) and a client_credentials token of its own.
async fn access_token(app: &TestApp) -> (String, String, String) {
    let (id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    app.allow_introspection(&id);
    let secret = secret.expect("secret");
    let token = crate::helpers::service_token(app, &id, &secret).await;
    (id, secret, token)
}

#[actix_web::test]
async fn a_cached_access_token_is_refused_at_once_by_the_revoking_node_and_within_5s_by_the_others()
{
    let a = spawn_app().await;
    let b = spawn_second_node(&a, |_| {}).await;
    let (id, secret, token) = access_token(&a).await;
    // Both nodes verify it, then answer from their caches.
    for node in [&a.address, &b, &a.address, &b] {
        assert_eq!(check(node, &token).await.status(), 200);
    }
    assert_eq!(a.revoke(&id, &secret, &token).await, 200);
    assert_eq!(
        check(&a.address, &token).await.status(),
        401,
        "the revoking node drops its cached answer at once"
    );
    eventually(
        Duration::from_secs(5),
        "the other node refuses the revoked token",
        || async {
            let status = check(&b, &token).await.status();
            assert!(status == 200 || status == 401, "{status}");
            status == 401
        },
    )
    .await;
    // A disabled client's tokens are refused too (once the cached answer is gone).
    let (id, _, token) = access_token(&a).await;
    assert_eq!(check(&b, &token).await.status(), 200);
    {
        use diesel::RunQueryDsl as _;
        let mut conn = a.conn();
        diesel::sql_query(format!(
            "UPDATE oauth_clients SET disabled_at = 1 WHERE id = '{id}'"
        ))
        .execute(&mut conn)
        .expect("disable the client");
    }
    eventually(
        Duration::from_secs(5),
        "the disabled client's token is refused",
        || async { check(&b, &token).await.status() == 401 },
    )
    .await;
}

#[actix_web::test]
async fn cached_clients_and_tokens_follow_revocation_and_disabling() {
    let a = spawn_app().await;
    let (id, secret, token) = access_token(&a).await;
    // Introspected twice: the second answer comes from the node's caches, and is the same.
    let first = a.introspect((id.as_str(), secret.as_str()), &token).await;
    assert_eq!(first["active"], true);
    assert_eq!(
        a.introspect((id.as_str(), secret.as_str()), &token).await,
        first
    );
    let res = a.introspection((id.as_str(), "wrong-secret"), &token).await;
    assert_eq!(res.status(), 401, "a cached client still checks the secret");
    // Revoked through this node: inactive on the very next introspection.
    assert_eq!(a.revoke(&id, &secret, &token).await, 200);
    assert_eq!(
        a.introspect((id.as_str(), secret.as_str()), &token).await,
        json!({ "active": false })
    );
    // Disabled elsewhere (another node, or the database directly): its credentials stop working
    // here within 5 s.
    let token_request = || {
        a.client
            .post(a.url("/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(token_request().await.expect("token").status(), 200);
    {
        use diesel::RunQueryDsl as _;
        let mut conn = a.conn();
        diesel::sql_query(format!(
            "UPDATE oauth_clients SET disabled_at = 1 WHERE id = '{id}'"
        ))
        .execute(&mut conn)
        .expect("disable the client");
    }
    let refused = eventually(
        Duration::from_secs(5),
        "the disabled client gets no more tokens",
        || async {
            let res = token_request().await.expect("token");
            if res.status() != 401 {
                assert_eq!(res.status(), 200);
            }
            (res.status() == 401).then_some(res)
        },
    )
    .await;
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"], "invalid_client");
}

#[actix_web::test]
async fn switched_off_places_are_not_looked_at() {
    let app =
        spawn_app_with(|s| s.api_key_presentations = vec![Presentation::XApiKey.as_str().into()])
            .await;
    let (_, secret) = key(&app, "sk", "live", &[]);
    let url = app.url("/v1/auth/check");
    let res = check(&app.address, Credential::ApiKey(&secret)).await;
    assert_eq!(res.status(), 200);
    for req in [
        app.client.get(&url).bearer_auth(&secret),
        app.client.get(format!("{url}?api_key={secret}")),
        app.client.post(&url).json(&json!({ "api_key": secret })),
    ] {
        let res = req.send().await.expect("check");
        assert_error(res, 401, "missing_api_key").await;
    }
}

/// A credential header with a byte no key or token has (UTF-8 or Latin-1, as a client that mangles a
/// pasted key sends it) was presented: it is answered as a wrong credential, not as a missing one.
/// Another scheme's unreadable `Authorization` (a browser's Basic) is not a credential here.
#[actix_web::test]
async fn a_credential_that_is_not_ascii_is_wrong_not_missing() {
    use reqwest::header::HeaderValue;
    let app = spawn_app().await;
    let (_, secret) = key(&app, "sk", "live", &[]);
    let url = app.url("/v1/auth/check");
    let res = app
        .client
        .get(&url)
        .bearer_auth(&secret)
        .send()
        .await
        .expect("check");
    assert_eq!(res.status(), 200, "the same key, readable");
    for tail in [&b"\xc3\xa9"[..], b"\xe9", b"\xff"] {
        let value = |prefix: &str| {
            let mut v = prefix.as_bytes().to_vec();
            v.extend_from_slice(secret.as_bytes());
            v.extend_from_slice(tail);
            HeaderValue::from_bytes(&v).expect("obs-text is a valid header value")
        };
        for (name, value) in [
            ("authorization", value("Bearer ")),
            ("authorization", value("bearer ")),
            ("authorization", value("Token ")),
            ("x-api-key", value("")),
        ] {
            let res = app
                .client
                .get(&url)
                .header(name, value.clone())
                .send()
                .await
                .expect("check");
            let www = res.headers().contains_key("www-authenticate");
            assert_error(res, 401, "invalid_api_key").await;
            assert!(www, "{name}: {value:?}: WWW-Authenticate on 401");
        }
        let res = app
            .client
            .get(&url)
            .header("authorization", value("Basic "))
            .send()
            .await
            .expect("check");
        assert_error(res, 401, "missing_api_key").await;
        let res = app
            .client
            .get(&url)
            .header("authorization", value("Basic "))
            .header("x-api-key", &secret)
            .send()
            .await
            .expect("check");
        assert_eq!(
            res.status(),
            200,
            "an unreadable Basic header is not the credential"
        );
    }
}

#[actix_web::test]
async fn operator_key_types_limit_scopes_and_lifetimes() {
    let pak = KeyTypeSetting {
        name: "pak".into(),
        prefix: "pak_".into(),
        scopes: Some(vec!["activation:write".into(), "activation:read".into()]),
        publishable: true,
        default_ttl: Some(Duration::from_secs(3600)),
        max_ttl: Some(Duration::from_secs(86_400)),
    };
    let mut settings = Settings::default();
    settings.key_types.push(pak.clone());
    let app = spawn_app_with(|s| s.key_types.push(pak)).await;
    let input = |scopes: &[&str], ttl: Option<u64>| KeyInput {
        name: "Activation".into(),
        key_type: "pak".into(),
        env: "live".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        expires_in: ttl.map(Duration::from_secs),
        ..Default::default()
    };
    let (_, pak_key) =
        create_key(&app, &settings, input(&["activation:write"], None)).expect("pak key");
    assert!(pak_key.starts_with("pak_live_"));
    let info = verify(&app, json!({ "key": pak_key })).await;
    assert_eq!(info["type"], "pak");
    assert!(
        info["expires_at"].as_i64().is_some(),
        "the type's default lifetime"
    );
    for (scopes, ttl) in [
        (&["admin"][..], None),
        (&[][..], None),
        (&["activation:read"][..], Some(2 * 86_400)),
    ] {
        assert_eq!(
            create_key(&app, &settings, input(scopes, ttl)),
            Err("invalid_request".to_owned()),
            "{scopes:?} {ttl:?}"
        );
    }
    let full_with_scopes = KeyInput {
        name: "x".into(),
        key_type: "sk".into(),
        env: "live".into(),
        scopes: vec!["read".into()],
        ..Default::default()
    };
    assert_eq!(
        create_key(&app, &settings, full_with_scopes),
        Err("invalid_request".to_owned())
    );
    let unknown_type = KeyInput {
        name: "x".into(),
        key_type: "zz".into(),
        env: "live".into(),
        ..Default::default()
    };
    assert_eq!(
        create_key(&app, &settings, unknown_type),
        Err("invalid_request".to_owned())
    );
}

#[actix_web::test]
async fn a_rotated_key_keeps_working_through_its_grace_then_expires() {
    let app = spawn_app().await;
    let (old_id, old) = key(&app, "rk", "live", &["read"]);
    let hasher = tessera::crypto::Hasher::new(&SecretBytes::new(TEST_PEPPER.to_vec()));
    let (new_key, new) = {
        let mut conn = app.conn();
        apikeys::rotate_key(
            &mut conn,
            &Settings::default(),
            &hasher,
            &old_id.as_str().into(),
            Duration::from_secs(2),
            Actor::Cli,
            Origin::default(),
        )
        .expect("rotate")
    };
    assert_ne!(new.0, old);
    assert_eq!(new_key.scopes, "read");
    assert_eq!(verify(&app, json!({ "key": old })).await["code"], "valid");
    assert_eq!(verify(&app, json!({ "key": new.0 })).await["code"], "valid");
    eventually(Duration::from_secs(10), "the grace ends", || async {
        verify(&app, json!({ "key": old })).await["code"] != "valid"
    })
    .await;
    assert_eq!(
        verify(&app, json!({ "key": old })).await["code"],
        "expired_api_key"
    );
    assert_eq!(verify(&app, json!({ "key": new.0 })).await["code"], "valid");
}

#[actix_web::test]
async fn keys_and_ips_are_rate_limited_with_headers() {
    let app = spawn_app_with(|s| {
        s.api_key_rate_limit = 2;
        s.ip_rate_limit = 5;
    })
    .await;
    let (_, secret) = key(&app, "sk", "live", &[]);
    for i in 0..2 {
        let res = check(&app.address, &secret).await;
        assert_eq!(res.status(), 200, "request {i}");
        assert_eq!(res.headers()["x-ratelimit-limit"], "2");
    }
    let res = check(&app.address, &secret).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_error(res, 429, "rate_limited").await;
    let info = verify(&app, json!({ "key": secret })).await;
    assert_eq!(info["code"], "rate_limited", "{info}");
    assert_eq!(info["valid"], false);
    // Per IP: the verify endpoint allows 5 per window (one was used just above).
    for _ in 0..4 {
        verify(&app, json!({ "key": "nope" })).await;
    }
    let res = app
        .client
        .post(app.url("/v1/keys/verify"))
        .json(&json!({ "key": "nope" }))
        .send()
        .await
        .expect("verify");
    assert_error(res, 429, "rate_limited").await;
}

#[actix_web::test]
async fn verify_limits_an_ipv6_client_by_its_64_and_an_ipv4_client_by_its_address() {
    let app = spawn_app_with(|s| {
        s.ip_rate_limit = 2;
        s.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")];
    })
    .await;
    let from = |ip: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/keys/verify"))
                .header("X-Forwarded-For", ip)
                .json(&json!({ "key": "nope" }))
                .send()
                .await
                .expect("verify")
                .status()
                .as_u16()
        }
    };
    // Two addresses of one /64 share its budget: a host that owns the /64 cannot spread over it.
    assert_eq!(from("2001:db8:1:2::1").await, 200);
    assert_eq!(from("2001:db8:1:2:ffff::7").await, 200);
    assert_eq!(from("2001:db8:1:2::3").await, 429);
    assert_eq!(from("2001:db8:1:3::1").await, 200, "another /64");
    // IPv4 counts per address, and an IPv4-mapped IPv6 address is its IPv4 address.
    assert_eq!(from("192.0.2.1").await, 200);
    assert_eq!(from("::ffff:192.0.2.1").await, 200);
    assert_eq!(from("192.0.2.1").await, 429);
    assert_eq!(from("192.0.2.2").await, 200);
}

#[actix_web::test]
async fn api_keys_can_be_introspected_and_revoked_by_their_owning_client() {
    let app = spawn_app().await;
    let (rs, rs_secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let rs_secret = rs_secret.expect("secret");
    app.allow_introspection(&rs);
    let (key_id, secret) = create_key(
        &app,
        &Settings::default(),
        KeyInput {
            name: "Owned".into(),
            key_type: "rk".into(),
            env: "test".into(),
            scopes: vec!["read".into()],
            owner_client_id: Some(rs.clone()),
            ..Default::default()
        },
    )
    .expect("key");
    let introspect = |token: String| {
        let (app, rs, rs_secret) = (&app, rs.clone(), rs_secret.clone());
        async move {
            let res = app
                .client
                .post(app.url("/oauth/introspect"))
                .basic_auth(&rs, Some(&rs_secret))
                .form(&[("token", token.as_str()), ("token_type_hint", "api_key")])
                .send()
                .await
                .expect("introspect");
            res.json::<Value>().await.expect("json")
        }
    };
    let info = introspect(secret.clone()).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["token_type"], "api_key");
    assert_eq!(info["key_id"], key_id.as_str());
    assert_eq!(info["client_id"], rs.as_str());
    assert_eq!(info["scope"], "read");
    assert_eq!(info["env"], "test");
    assert_eq!(app.revoke(&rs, &rs_secret, &secret).await, 200);
    assert_eq!(introspect(secret.clone()).await, json!({ "active": false }));
    assert_eq!(
        verify(&app, json!({ "key": secret })).await["code"],
        "revoked_api_key"
    );
}

#[actix_web::test]
async fn usage_is_counted_in_memory_and_flushed_in_batches_with_per_key_limits() {
    let app = spawn_app_with(|s| s.usage_flush_interval = Duration::from_millis(200)).await;
    let (id, secret) = create_key(
        &app,
        &Settings::default(),
        KeyInput {
            name: "Limited".into(),
            key_type: "rk".into(),
            env: "live".into(),
            scopes: vec!["read".into()],
            rate_limit: Some(3),
            ..Default::default()
        },
    )
    .expect("key");
    let url = app.url("/v1/auth/check");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = check(&app.address, &secret).await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429], "the key's own limit of 3");
    let res = app
        .client
        .get(format!("{url}?scopes=admin"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("check");
    assert_eq!(res.status(), 403);

    use diesel::prelude::*;
    use tessera::db::schema::{api_key_usage, api_keys};
    let counts = eventually(Duration::from_secs(10), "the usage is flushed", || async {
        let mut conn = app.conn();
        let row: Option<(i64, i64, i64)> = api_key_usage::table
            .filter(api_key_usage::key_id.eq(&id))
            .select((
                api_key_usage::allowed,
                api_key_usage::denied,
                api_key_usage::rate_limited,
            ))
            .first(&mut conn)
            .optional()
            .expect("query");
        if row == Some((3, 1, 1)) {
            Ok(row)
        } else {
            Err(format!("{row:?}"))
        }
    })
    .await;
    assert_eq!(counts, Some((3, 1, 1)));
    let mut conn = app.conn();
    let last_used: Option<i64> = api_keys::table
        .find(&id)
        .select(api_keys::last_used_at)
        .first(&mut conn)
        .expect("key");
    assert!(last_used.is_some());
}

/// Rotations of one key sent at once: exactly one makes its successor, every other is refused with
/// 409 `api_key_already_rotated` (a second successor would fork the key).
#[actix_web::test]
async fn of_rotations_of_one_key_at_once_exactly_one_wins() {
    use diesel::prelude::*;
    use tessera::db::schema::api_keys;
    let app = spawn_app().await;
    let (_, admin) = key(&app, "sk", "live", &[]);
    let (id, _) = key(&app, "rk", "live", &["read"]);
    let rotate = || {
        app.client
            .post(app.url(&format!("/v1/keys/{id}/rotate")))
            .bearer_auth(&admin)
            .json(&json!({ "grace": 60 }))
            .send()
    };
    let answers = futures_util::future::join_all((0..4).map(|_| rotate())).await;
    let mut successors = Vec::new();
    for res in answers {
        let res = res.expect("rotate");
        if res.status() == 201 {
            let body: Value = res.json().await.expect("json");
            successors.push(body["id"].as_str().expect("id").to_owned());
        } else {
            assert_error(res, 409, "api_key_already_rotated").await;
        }
    }
    assert_eq!(successors.len(), 1, "exactly one rotation wins");
    let mut conn = app.conn();
    let replaced_by: Option<String> = api_keys::table
        .find(&id)
        .select(api_keys::replaced_by)
        .first(&mut conn)
        .expect("the rotated key");
    assert_eq!(replaced_by.as_ref(), successors.first());
    let keys: i64 = api_keys::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(
        keys, 3,
        "the admin key, the rotated key and its one successor"
    );
}

#[actix_web::test]
async fn the_keys_api_is_for_admin_sessions_and_admin_keys() {
    let app = spawn_app().await;
    let admin_user = app.create_user("root@example.com", "correct horse battery", true);
    app.create_user("dev@example.com", "correct horse battery", false);
    let admin = crate::helpers::client();
    app.sign_in(&admin, "root@example.com", "correct horse battery")
        .await;
    let dev = crate::helpers::client();
    app.sign_in(&dev, "dev@example.com", "correct horse battery")
        .await;
    let keys = app.url("/v1/keys");

    let res = admin
        .post(&keys)
        .json(
            &json!({ "name": "Partner", "type": "rk", "env": "test", "scopes": ["read"],
                       "expires_in": "30d", "metadata": { "partner": "acme" } }),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let created: Value = res.json().await.expect("json");
    let secret = created["key"].as_str().expect("the key, once").to_owned();
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(secret.starts_with("rk_test_"));
    assert_eq!(created["metadata"]["partner"], "acme");
    assert_eq!(
        verify(&app, json!({ "key": secret })).await["code"],
        "valid"
    );

    let listed: Value = admin
        .get(&keys)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert!(!listed.to_string().contains(&secret[8..]), "never listed");
    assert_eq!(listed["data"][0]["id"], id.as_str());
    let shown: Value = admin
        .get(format!("{keys}/{id}"))
        .send()
        .await
        .expect("show")
        .json()
        .await
        .expect("json");
    assert_eq!(shown["status"], "active");
    assert!(shown.get("key").is_none());

    let res = admin
        .post(format!("{keys}/{id}/rotate"))
        .json(&json!({ "grace": 60 }))
        .send()
        .await
        .expect("rotate");
    assert_eq!(res.status(), 201);
    let rotated: Value = res.json().await.expect("json");
    let new_id = rotated["id"].as_str().expect("id").to_owned();
    // A key in its grace period has a successor: rotating it again would fork it.
    let res = admin
        .post(format!("{keys}/{id}/rotate"))
        .json(&json!({ "grace": 60 }))
        .send()
        .await
        .expect("rotate again");
    assert_error(res, 409, "api_key_already_rotated").await;
    let res = admin
        .post(format!("{keys}/{new_id}/revoke"))
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), 200);
    let revoked: Value = res.json().await.expect("json");
    assert_eq!(revoked["status"], "revoked");

    // Refusals: no credential, a non-admin session, a key without admin, bad input, unknown ids.
    let res = app.client.get(&keys).send().await.expect("list");
    assert_error(res, 401, "unauthenticated").await;
    let res = dev.get(&keys).send().await.expect("list");
    assert_error(res, 403, "forbidden").await;
    let (_, reader) = key(&app, "rk", "live", &["read"]);
    let res = app
        .client
        .get(&keys)
        .bearer_auth(&reader)
        .send()
        .await
        .expect("list");
    assert_error(res, 403, "insufficient_permissions").await;
    let res = admin
        .post(&keys)
        .json(&json!({ "name": "", "type": "rk", "scopes": ["read"] }))
        .send()
        .await
        .expect("create");
    assert_error(res, 400, "invalid_request").await;
    let res = admin
        .get(format!("{keys}/key_nope"))
        .send()
        .await
        .expect("show");
    assert_error(res, 404, "not_found").await;
    let res = admin
        .post(&keys)
        .header("Origin", "https://evil.example")
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .expect("create");
    assert_error(res, 403, "forbidden").await;

    // An sk key manages keys too (full access includes admin).
    let (sk_id, sk) = key(&app, "sk", "live", &[]);
    let res = app
        .client
        .post(&keys)
        .header("X-API-Key", &sk)
        .json(&json!({ "name": "By key", "type": "rk", "scopes": ["read"] }))
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 201);

    // Every change is audited with who and from where.
    use diesel::prelude::*;
    use tessera::db::schema::audit_events;
    let mut conn = app.conn();
    let events: Vec<(String, Option<String>, Option<String>)> = audit_events::table
        .filter(audit_events::action.like("api_key.%"))
        .filter(audit_events::actor_type.ne("system"))
        .order(audit_events::id.asc())
        .select((
            audit_events::action,
            audit_events::actor_id,
            audit_events::ip,
        ))
        .load(&mut conn)
        .expect("audit");
    let mut actions: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    actions.sort_unstable();
    // created by the admin, the rotation's new key, the rotation, the revocation, created by the sk key
    assert_eq!(
        actions,
        [
            "api_key.create",
            "api_key.create",
            "api_key.create",
            "api_key.revoke",
            "api_key.rotate"
        ],
    );
    assert_eq!(events[0].1.as_deref(), Some(admin_user.as_str()));
    assert_eq!(events[0].2.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        events.last().and_then(|e| e.1.as_deref()),
        Some(sk_id.as_str())
    );
}

async fn token_attempt(app: &TestApp, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth("cli_nobody", Some("wrong"))
        .form(&[("grant_type", "client_credentials")]);
    if let Some(ip) = forwarded_for {
        req = req.header("X-Forwarded-For", ip);
    }
    req.send().await.expect("token request")
}

#[actix_web::test]
async fn failed_client_authentication_is_limited_per_ip_and_forwarded_for_needs_a_trusted_proxy() {
    let app = spawn_app_with(|s| s.auth_rate_limit = 3).await;
    for i in 0..3 {
        let res = token_attempt(&app, Some(&format!("203.0.113.{i}"))).await;
        assert_eq!(res.status(), 401, "failure {i} is counted but answered");
    }
    // X-Forwarded-For from an untrusted peer is ignored: still the same client.
    let res = token_attempt(&app, Some("198.51.100.7")).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_error(res, 429, "rate_limited").await;
    // Failed client authentication and failed sign-ins are counted apart.
    let res = app.log_in(&app.client, "a@example.com", "x").await;
    assert_eq!(res.status(), 401);

    // Behind a trusted proxy, each forwarded client has its own budget of failures.
    let proxied = spawn_app_with(|s| {
        s.auth_rate_limit = 2;
        s.trusted_proxies = vec!["127.0.0.0/8".parse().expect("cidr")];
    })
    .await;
    let from = |ip: &'static str| {
        let app = &proxied;
        async move {
            let res = token_attempt(app, Some(&format!("{ip}, 127.0.0.1"))).await;
            res.status().as_u16()
        }
    };
    assert_eq!(from("203.0.113.10").await, 401);
    assert_eq!(from("203.0.113.10").await, 401);
    assert_eq!(from("203.0.113.10").await, 429);
    assert_eq!(
        from("203.0.113.11").await,
        401,
        "another client, its own budget"
    );
}

#[actix_web::test]
async fn two_nodes_share_their_counters_in_redis() {
    let Some(redis) = redis("apikeys::two_nodes_share_their_counters_in_redis") else {
        return;
    };
    let a = spawn_app_with(|s| s.redis_url = Some(redis.clone())).await;
    let b = spawn_second_node(&a, |s| s.redis_url = Some(redis.clone())).await;
    let (_, secret) = create_key(
        &a,
        &Settings::default(),
        KeyInput {
            name: "Shared".into(),
            key_type: "sk".into(),
            env: "live".into(),
            rate_limit: Some(4),
            ..Default::default()
        },
    )
    .expect("key");
    let mut seen = Vec::new();
    for i in 0..5 {
        let node = if i % 2 == 0 {
            a.address.clone()
        } else {
            b.clone()
        };
        let res = a
            .client
            .get(format!("{node}/v1/auth/check"))
            .bearer_auth(&secret)
            .send()
            .await
            .expect("check");
        seen.push((
            res.status().as_u16(),
            res.headers()
                .get("x-ratelimit-remaining")
                .map(|v| v.to_str().expect("ascii").to_owned()),
        ));
    }
    let statuses: Vec<u16> = seen.iter().map(|s| s.0).collect();
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 429],
        "one budget of 4 across both nodes"
    );
    let remaining: Vec<Option<&str>> = seen.iter().take(4).map(|s| s.1.as_deref()).collect();
    assert_eq!(remaining, [Some("3"), Some("2"), Some("1"), Some("0")]);
}

#[actix_web::test]
async fn an_unreachable_redis_follows_the_failure_policy_without_hanging() {
    use tessera::ratelimit::FailurePolicy;
    let down = url::Url::parse("redis://127.0.0.1:1").expect("url");
    for (policy, expected) in [
        (FailurePolicy::Local, [200, 200, 429]),
        (FailurePolicy::Allow, [200, 200, 200]),
        (FailurePolicy::Deny, [429, 429, 429]),
    ] {
        let app = spawn_app_with(|s| {
            s.redis_url = Some(down.clone());
            s.redis_failure_policy = policy.as_str().into();
            s.api_key_rate_limit = 2;
        })
        .await;
        let (_, secret) = key(&app, "sk", "live", &[]);
        let start = Instant::now();
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let res = check(&app.address, &secret).await;
            statuses.push(res.status().as_u16());
        }
        assert_eq!(statuses, expected, "{policy:?}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{policy:?}: requests do not wait on a dead Redis"
        );
    }
}

/// The key with its last character replaced by a different one (a checksum typo). Replacing it by a
/// fixed character would give back the same key whenever it already ended in that character.
fn with_last_char_changed(key: &str) -> String {
    let (head, last) = key.split_at(key.len() - 1);
    format!("{head}{}", if last == "0" { '1' } else { '0' })
}

#[actix_web::test]
async fn an_api_key_with_the_introspect_scope_may_call_introspection() {
    let app = spawn_app().await;
    let (_, caller) = key(&app, "rk", "live", &["introspect"]);
    let (_, reader) = key(&app, "rk", "live", &["read"]);
    // Of the caller's environment: a key sees only keys of its own environment.
    let (target_id, target) = key(&app, "rk", "live", &["read"]);
    for caller in [Credential::Bearer(&caller), Credential::ApiKey(&caller)] {
        let res = app.introspection(caller, &target).await;
        assert_eq!(res.status(), 200, "{caller:?}");
        assert!(res.headers().contains_key("x-ratelimit-remaining"));
        let info: Value = res.json().await.expect("json");
        assert_eq!(info["active"], true, "{info}");
        assert_eq!(info["key_id"], target_id.as_str());
    }
    let res = app
        .introspection(Credential::Bearer(&caller), "not-a-token")
        .await;
    assert_eq!(
        res.json::<Value>().await.expect("json"),
        json!({ "active": false })
    );

    // A key without the scope: 403 insufficient_scope, in the RFC 6749 shape.
    let res = app
        .introspection(Credential::ApiKey(&reader), &target)
        .await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "insufficient_scope");
    assert!(body["error_description"].is_string(), "{body}");
    assert!(body["request_id"].is_string(), "{body}");

    // An unknown, revoked or malformed credential: 401 invalid_client.
    let unknown = tessera::apikeys::format::generate("rk_", "live");
    for credential in [unknown.as_str(), "nonsense"] {
        let res = app
            .introspection(Credential::Bearer(credential), &target)
            .await;
        assert_eq!(res.status(), 401, "{credential}");
        assert_eq!(
            res.json::<Value>().await.expect("json")["error"],
            "invalid_client"
        );
    }
}
