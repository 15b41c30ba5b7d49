//! Token lifecycle: revocation (RFC 7009), introspection (RFC 7662), signing-key rotation, purging.

use std::time::Duration;

use diesel::connection::SimpleConnection as _;
use serde_json::Value;

use crate::authorize::{PASSWORD, REDIRECT, tokens_for};
use crate::helpers::{
    TEST_MASTER_KEY, TEST_PEPPER, TestApp, assert_error, check, eventually, service_token,
    spawn_app, spawn_app_with, verify_with_jwks,
};

/// A resource server: a confidential client that introspects (the default API's tokens).
fn resource_server(app: &TestApp) -> (String, String) {
    let (id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    app.allow_introspection(&id);
    (id, secret.expect("a confidential client has a secret"))
}

async fn revoke(app: &TestApp, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> u16 {
    let mut req = app.client.post(app.url("/oauth/revoke")).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send()
        .await
        .expect("revocation request")
        .status()
        .as_u16()
}

fn count(app: &TestApp, sql_table: &str, filter: &str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.conn();
    let rows: Vec<N> = diesel::sql_query(format!(
        "SELECT COUNT(*) AS n FROM {sql_table} WHERE {filter}"
    ))
    .load(&mut conn)
    .expect("count");
    rows[0].n
}

#[actix_web::test]
async fn revoking_a_refresh_token_ends_its_family_and_the_access_tokens_it_bought() {
    let app = spawn_app().await;
    let user = app.create_user("ana@example.com", PASSWORD, false);
    let (id, _) = app.create_client(
        &["authorization_code", "refresh_token"],
        &["read", "write", "offline_access"],
        &[REDIRECT],
        true,
    );
    let (rs, rs_secret) = resource_server(&app);
    let rs = (rs.as_str(), rs_secret.as_str());
    let first = tokens_for(&app, &id).await;
    let (a1, r1) = (
        first["access_token"].as_str().expect("access"),
        first["refresh_token"].as_str().expect("refresh"),
    );

    let info = app.introspect(rs, a1).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["token_type"], "Bearer");
    assert_eq!(info["client_id"], id.as_str());
    assert_eq!(info["sub"], user.as_str());
    assert_eq!(info["iss"], app.address.as_str());
    assert_eq!(info["aud"], app.address.as_str());
    assert_eq!(info["scope"], "offline_access read write");
    let (_, claims) = verify_with_jwks(&app, a1).await;
    for field in ["jti", "exp", "iat"] {
        assert_eq!(info[field], claims[field], "{field}");
    }
    let info = app.introspect(rs, r1).await;
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["token_type"], "refresh_token");
    assert_eq!(info["client_id"], id.as_str());
    assert!(info["exp"].as_i64() > claims["exp"].as_i64());

    // Rotate once: the used token is no longer active.
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", r1),
            ("client_id", &id),
        ])
        .send()
        .await
        .expect("refresh");
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.expect("json");
    let (a2, r2) = (
        second["access_token"].as_str().expect("access"),
        second["refresh_token"].as_str().expect("refresh"),
    );
    assert_eq!(app.introspect(rs, r1).await["active"], false);
    assert_eq!(app.introspect(rs, a2).await["active"], true);

    // The public client revokes its newest refresh token (hinted as an access token: not trusted).
    let form = [
        ("token", r2),
        ("token_type_hint", "access_token"),
        ("client_id", id.as_str()),
    ];
    assert_eq!(revoke(&app, &form, None).await, 200);
    for (name, token) in [("r2", r2), ("a2", a2), ("a1", a1), ("r1", r1)] {
        assert_eq!(
            app.introspect(rs, token).await["active"],
            false,
            "{name} is inactive after its family was revoked"
        );
    }
    // Already revoked, and unknown: 200 all the same.
    assert_eq!(revoke(&app, &form, None).await, 200);
    let unknown = [("token", "no-such-token"), ("client_id", id.as_str())];
    assert_eq!(revoke(&app, &unknown, None).await, 200);
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", r2),
            ("client_id", &id),
        ])
        .send()
        .await
        .expect("refresh");
    assert_error(res, 400, "invalid_grant").await;
    assert_eq!(
        count(&app, "audit_events", "action = 'token.revoke'"),
        1,
        "one audited revocation"
    );
}

#[actix_web::test]
async fn revoking_an_access_token_records_its_jti_until_it_expires() {
    let app = spawn_app().await;
    let (rs, rs_secret) = resource_server(&app);
    let (id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let secret = secret.expect("secret");
    let token = service_token(&app, &id, &secret).await;
    let (_, claims) = verify_with_jwks(&app, &token).await;
    assert_eq!(
        app.introspect((&rs, &rs_secret), &token).await["active"],
        true
    );

    let form = [
        ("token", token.as_str()),
        ("token_type_hint", "refresh_token"),
    ];
    assert_eq!(revoke(&app, &form, Some((&id, &secret))).await, 200);
    assert_eq!(
        app.introspect((&rs, &rs_secret), &token).await["active"],
        false
    );
    let jti = claims["jti"].as_str().expect("jti");
    let exp = claims["exp"].as_i64().expect("exp");
    assert_eq!(
        count(
            &app,
            "revoked_access_tokens",
            &format!("jti = '{jti}' AND expires_at = {exp}")
        ),
        1,
        "the jti is kept exactly until the token's exp"
    );
    // Revocation authenticates like the token endpoint.
    let res = app
        .client
        .post(app.url("/oauth/revoke"))
        .basic_auth(&id, Some("wrong"))
        .form(&form)
        .send()
        .await
        .expect("revoke");
    assert_error(res, 401, "invalid_client").await;
    let res = app
        .client
        .post(app.url("/oauth/revoke"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .expect("revoke");
    assert_error(res, 400, "invalid_request").await;
}

#[actix_web::test]
async fn a_client_cannot_revoke_another_clients_tokens() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let (rs, rs_secret) = resource_server(&app);
    let rs = (rs.as_str(), rs_secret.as_str());
    let (owner, owner_secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let (thief, thief_secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let (thief, thief_secret) = (thief, thief_secret.expect("secret"));
    let token = service_token(&app, &owner, &owner_secret.expect("secret")).await;
    let (public, _) = app.create_client(
        &["authorization_code", "refresh_token"],
        &["read", "write", "offline_access"],
        &[REDIRECT],
        true,
    );
    let tokens = tokens_for(&app, &public).await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh");

    for victim in [token.as_str(), refresh] {
        let status = revoke(&app, &[("token", victim)], Some((&thief, &thief_secret))).await;
        assert_eq!(status, 200, "no oracle: the thief learns nothing");
        assert_eq!(
            app.introspect(rs, victim).await["active"],
            true,
            "and the token is untouched"
        );
    }
}

#[actix_web::test]
async fn introspection_needs_an_authenticated_confidential_caller() {
    let app = spawn_app().await;
    let (rs, rs_secret) = resource_server(&app);
    let token = service_token(&app, &rs, &rs_secret).await;
    let (public, _) = app.create_client(&["authorization_code"], &["read"], &[REDIRECT], true);
    let url = app.url("/oauth/introspect");

    let res = app
        .client
        .post(&url)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .expect("introspect");
    let body = assert_error(res, 401, "invalid_client").await;
    assert!(body["error_description"].is_string(), "RFC 6749 shape");
    let res = app
        .client
        .post(&url)
        .basic_auth(&rs, Some("wrong"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .expect("introspect");
    let www = res.headers().get("www-authenticate").cloned();
    assert_error(res, 401, "invalid_client").await;
    assert!(www.is_some(), "WWW-Authenticate on 401");
    let res = app
        .client
        .post(&url)
        .form(&[("token", token.as_str()), ("client_id", public.as_str())])
        .send()
        .await
        .expect("introspect");
    assert_error(res, 401, "invalid_client").await;
    let res = app
        .client
        .post(&url)
        .basic_auth(&rs, Some(&rs_secret))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .expect("introspect");
    assert_error(res, 400, "invalid_request").await;
    let res = app
        .client
        .post(&url)
        .basic_auth(&rs, Some(&rs_secret))
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .expect("introspect");
    assert_error(res, 400, "invalid_request").await;
}

#[actix_web::test]
async fn every_inactive_case_is_active_false_never_an_error() {
    let app = spawn_app_with(|s| s.access_token_ttl = Duration::from_secs(1)).await;
    let (rs, rs_secret) = resource_server(&app);
    let rs = (rs.as_str(), rs_secret.as_str());
    let (id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let secret = secret.expect("secret");
    let live = service_token(&app, &id, &secret).await;
    assert_eq!(app.introspect(rs, &live).await["active"], true);

    // A token from another Tessera (its own keys) and a tampered one.
    let other = spawn_app().await;
    let (oid, osecret) = other.create_client(&["client_credentials"], &["read"], &[], false);
    let foreign = service_token(&other, &oid, &osecret.expect("secret")).await;
    let mut tampered = live.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let (header, payload) = {
        let mut parts = live.split('.');
        (
            parts.next().expect("header").to_owned(),
            parts.next().expect("payload").to_owned(),
        )
    };
    let unsigned = format!("{header}.{payload}.");
    let forty_three = "A".repeat(43);
    let long = "x.".repeat(3000);
    for (name, token) in [
        ("foreign", foreign.as_str()),
        ("tampered", tampered.as_str()),
        ("unsigned", unsigned.as_str()),
        ("garbage", "not a token"),
        ("three dots", "a.b.c"),
        ("refresh-shaped", forty_three.as_str()),
        ("unicode", "ñ.ü.€"),
        ("long", long.as_str()),
    ] {
        let info = app.introspect(rs, token).await;
        assert_eq!(info, serde_json::json!({ "active": false }), "{name}");
    }

    // A disabled client's tokens die with it.
    let disabled = service_token(&app, &id, &secret).await;
    app.conn()
        .batch_execute(&format!(
            "UPDATE oauth_clients SET disabled_at = 1 WHERE id = '{id}'"
        ))
        .expect("disable");
    assert_eq!(app.introspect(rs, &disabled).await["active"], false);

    // Expired: the 1 s token goes inactive on its own (leeway 0).
    let expired = service_token(&app, rs.0, rs.1).await;
    eventually(Duration::from_secs(10), "the token expires", || {
        let (app, expired) = (&app, &expired);
        async move { app.introspect(rs, expired).await["active"] == false }
    })
    .await;
}

#[actix_web::test]
async fn introspection_is_rate_limited_per_caller() {
    let app = spawn_app_with(|s| s.introspection_rate_limit = 3).await;
    let (rs, rs_secret) = resource_server(&app);
    let (other, other_secret) = resource_server(&app);
    let token = service_token(&app, &rs, &rs_secret).await;
    for i in 0..3 {
        let res = app.introspection((&rs, &rs_secret), &token).await;
        assert_eq!(res.status(), 200, "request {i} is within the limit");
        assert_eq!(res.headers()["x-ratelimit-limit"], "3");
    }
    let res = app.introspection((&rs, &rs_secret), &token).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_error(res, 429, "rate_limited").await;
    assert_eq!(
        app.introspect((&other, &other_secret), &token).await["active"],
        true,
        "another caller has its own budget"
    );
}

/// The `kid`s of the published EdDSA keys: the chain that signs access tokens here (the keyring
/// keeps one chain per algorithm; the ES256 and RS256 ones rotate beside it).
async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("json");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["alg"] == "EdDSA")
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid")
}

/// The CLI against a test app's database, with the app's key material.
fn cli(app: &TestApp, args: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TESSERA_LOG_LEVEL", "warn")
        .env("TESSERA_BIND", "127.0.0.1:0")
        .env("TESSERA_DATABASE_URL", app.db.url_string())
        .env(
            "TESSERA_SECRET_PEPPER",
            std::str::from_utf8(TEST_PEPPER).expect("ascii"),
        )
        .env("TESSERA_MASTER_KEY", tessera::crypto::hex(&TEST_MASTER_KEY))
        .env("TESSERA_ISSUER", &app.address)
        .output()
        .expect("the CLI runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("--json output")
}

#[actix_web::test]
async fn a_cli_rotation_publishes_the_next_key_first_and_old_tokens_stay_verifiable() {
    let app = spawn_app_with(|s| s.key_reload_interval = Duration::from_millis(200)).await;
    let (id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let secret = secret.expect("secret");
    let before = service_token(&app, &id, &secret).await;
    let old = kid_of(&before);
    assert_eq!(jwks_kids(&app).await, vec![old.clone()]);

    let rotated = cli(&app, &["signing-key", "rotate", "--json"]);
    assert_eq!(rotated["already_scheduled"], false);
    assert_eq!(rotated["previous"], old.as_str());
    let next = rotated["kid"].as_str().expect("kid").to_owned();
    let again = cli(&app, &["signing-key", "rotate", "--json"]);
    assert_eq!(again["already_scheduled"], true, "one successor at a time");
    assert_eq!(again["kid"], next.as_str());

    eventually(
        Duration::from_secs(10),
        "the node publishes the next key",
        || {
            let app = &app;
            async move { jwks_kids(app).await.len() == 2 }
        },
    )
    .await;
    let kids = jwks_kids(&app).await;
    assert!(kids.contains(&old) && kids.contains(&next), "{kids:?}");
    let during = service_token(&app, &id, &secret).await;
    assert_eq!(
        kid_of(&during),
        old,
        "the next key signs nothing during the lead time"
    );
    verify_with_jwks(&app, &before).await;
    verify_with_jwks(&app, &during).await;
    let list = cli(&app, &["signing-key", "list", "--json"]);
    let states: Vec<(&str, &str)> = list
        .as_array()
        .expect("list")
        .iter()
        .filter(|k| k["algorithm"] == "EdDSA")
        .map(|k| {
            (
                k["kid"].as_str().expect("kid"),
                k["state"].as_str().expect("state"),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![(next.as_str(), "next"), (old.as_str(), "current")]
    );
}

#[actix_web::test]
async fn the_schedule_rotates_publishes_first_and_retires_after_the_last_token_expires() {
    let app = spawn_app_with(|s| {
        s.key_reload_interval = Duration::from_millis(200);
        s.signing_key_rotation = Duration::from_secs(6);
        s.signing_key_lead_time = Duration::from_secs(3);
        s.access_token_ttl = Duration::from_secs(2);
        s.clock_skew = Duration::ZERO;
    })
    .await;
    let (id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let secret = secret.expect("secret");
    let first = service_token(&app, &id, &secret).await;
    let k1 = kid_of(&first);

    eventually(Duration::from_secs(15), "the next key is published", || {
        let app = &app;
        async move { jwks_kids(app).await.len() == 2 }
    })
    .await;
    let k2 = jwks_kids(&app)
        .await
        .into_iter()
        .find(|k| *k != k1)
        .expect("a second key");
    let during = service_token(&app, &id, &secret).await;
    assert_eq!(kid_of(&during), k1, "published before it signs");

    let switched = eventually(Duration::from_secs(15), "the next key signs", || {
        let (app, id, secret, k1) = (&app, &id, &secret, &k1);
        async move {
            let token = service_token(app, id, secret).await;
            (kid_of(&token) != *k1).then_some(token)
        }
    })
    .await;
    assert_eq!(kid_of(&switched), k2);
    verify_with_jwks(&app, &switched).await;
    assert!(
        jwks_kids(&app).await.contains(&k1),
        "the old key is still published while its tokens live"
    );
    eventually(Duration::from_secs(15), "the old key is retired", || {
        let (app, k1) = (&app, &k1);
        async move { !jwks_kids(app).await.contains(k1) }
    })
    .await;
    assert_eq!(
        app.introspect((&id, &secret), &first).await["active"],
        false,
        "the first token has expired with its key"
    );
}

/// Inserts, for every purged table, `n` rows that expired (expires_at = 1000) and one that has not.
fn seed_expiring_rows(app: &TestApp, tag: &str, n: usize) {
    let user = app.create_user(&format!("{tag}@example.com"), PASSWORD, false);
    let (client, _) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let far = 4_000_000_000_i64;
    let mut sql = String::new();
    for (i, exp) in (0..n)
        .map(|i| (i.to_string(), 1000_i64))
        .chain([("live".to_owned(), far)])
    {
        let k = format!("{tag}_{i}");
        sql.push_str(&format!(
            "INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, scope, audience, \
             code_challenge, code_challenge_method, created_at, expires_at) VALUES \
             ('{k}', '{client}', '{user}', 'https://a.example/cb', 'read', 'aud', 'c', 'S256', 1, {exp});\n\
             INSERT INTO refresh_token_families (id, client_id, user_id, scope, audience, created_at, expires_at) \
             VALUES ('{k}', '{client}', '{user}', 'read', 'aud', 1, {exp});\n\
             INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) VALUES ('{k}', '{k}', 1, {exp});\n\
             INSERT INTO revoked_access_tokens (jti, revoked_at, expires_at) VALUES ('{k}', 1, {exp});\n\
             INSERT INTO used_assertion_jtis (client_id, jti, expires_at) VALUES ('{client}', '{k}', {exp});\n\
             INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at) \
             VALUES ('{k}', '{user}', 1, 1, {exp});\n"
        ));
    }
    app.conn().batch_execute(&sql).expect("seed rows");
}

const PURGED: [&str; 6] = [
    "authorization_codes",
    "refresh_tokens",
    "refresh_token_families",
    "revoked_access_tokens",
    "used_assertion_jtis",
    "sessions",
];

#[actix_web::test]
async fn tessera_purge_removes_exactly_what_has_expired() {
    let app = spawn_app().await;
    seed_expiring_rows(&app, "p", 5);
    let purged = cli(&app, &["purge", "--json"]);
    for table in PURGED {
        assert_eq!(purged[table], 5, "{table}: {purged}");
        let key = match table {
            "authorization_codes" => "code_hash",
            "refresh_tokens" => "token_hash",
            "revoked_access_tokens" | "used_assertion_jtis" => "jti",
            "sessions" => "id_hash",
            _ => "id",
        };
        assert_eq!(
            count(&app, table, &format!("{key} LIKE 'p_%'")),
            1,
            "{table}: only the live row is left"
        );
        assert_eq!(count(&app, table, &format!("{key} = 'p_live'")), 1);
    }
    let again = cli(&app, &["purge", "--json"]);
    assert!(PURGED.iter().all(|t| again[t] == 0), "{again}");
}

#[actix_web::test]
async fn the_janitor_purges_in_batches_and_counts_what_it_removed() {
    let app = spawn_app_with(|s| {
        s.purge_interval = Duration::from_millis(300);
        s.purge_batch_size = 2;
    })
    .await;
    seed_expiring_rows(&app, "j", 5);
    eventually(Duration::from_secs(15), "the janitor purges", || {
        let app = &app;
        async move {
            PURGED
                .iter()
                .all(|t| count(app, t, "expires_at = 1000") == 0)
        }
    })
    .await;
    for table in PURGED {
        assert_eq!(
            count(&app, table, "expires_at > 1000"),
            1,
            "{table} live row kept"
        );
    }
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for table in PURGED {
        let line = format!("tessera_purged_rows_total{{table=\"{table}\"}} 5");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
}

#[actix_web::test]
async fn private_signing_keys_are_stored_only_encrypted_under_the_master_key() {
    use diesel::prelude::*;
    use tessera::db::schema::signing_keys;
    let app = spawn_app().await;
    cli(&app, &["signing-key", "rotate", "--alg", "ES256", "--json"]);
    let mut conn = app.conn();
    let rows: Vec<(String, String, Vec<u8>)> = signing_keys::table
        .select((
            signing_keys::kid,
            signing_keys::public_jwk,
            signing_keys::private_key_encrypted,
        ))
        .load(&mut conn)
        .expect("rows");
    assert_eq!(
        rows.len(),
        4,
        "one key per algorithm, and the ES256 key's successor"
    );
    let master = tessera::config::SecretBytes::new(TEST_MASTER_KEY.to_vec());
    let wrong = tessera::config::SecretBytes::new(vec![7; 32]);
    for (kid, jwk, sealed) in rows {
        let jwk: Value = serde_json::from_str(&jwk).expect("public JWK");
        assert!(jwk.get("d").is_none(), "{kid}: no private part in the JWK");
        let pkcs8 = tessera::jwt::keys::open(&master, &kid, &sealed).expect("opens");
        assert_eq!(
            sealed.len(),
            12 + pkcs8.len() + 16,
            "nonce + ciphertext + tag"
        );
        assert!(
            !sealed
                .windows(16)
                .any(|w| pkcs8.windows(16).any(|p| p == w)),
            "{kid}: no run of the private key at rest"
        );
        assert!(tessera::jwt::keys::open(&wrong, &kid, &sealed).is_err());
        assert!(
            tessera::jwt::keys::open(&master, "key_other", &sealed).is_err(),
            "bound to its kid"
        );
    }
}

#[actix_web::test]
async fn a_node_rereads_the_keys_when_it_meets_a_kid_it_has_not_loaded() {
    let hour = Duration::from_secs(3600);
    let a = spawn_app_with(|s| s.key_reload_interval = hour).await;
    let (rs, rs_secret) = resource_server(&a);
    let old = kid_of(&service_token(&a, &rs, &rs_secret).await);
    // An emergency rotation, then a second node on the same database starts and signs with the new key.
    let rotated = cli(&a, &["signing-key", "rotate", "--now", "--json"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut settings = crate::helpers::test_settings(&a.db);
    settings.issuer = url::Url::parse(&a.address).expect("same issuer");
    settings.key_reload_interval = hour;
    let b = tessera::startup::Application::build_with_listener(settings, listener)
        .await
        .expect("second node");
    let b_address = format!("http://127.0.0.1:{}", b.port());
    actix_web::rt::spawn(b.run_until_stopped());
    let res = a
        .client
        .post(format!("{b_address}/oauth/token"))
        .basic_auth(&rs, Some(&rs_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token from node b");
    let body: Value = res.json().await.expect("json");
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(kid_of(token), rotated["kid"].as_str().expect("kid"));
    assert_ne!(kid_of(token), old);
    let info = a.introspect((&rs, &rs_secret), token).await;
    assert_eq!(
        info["active"], true,
        "node a loads the new key on demand: {info}"
    );
}

#[actix_web::test]
async fn every_signing_algorithm_issues_tokens_resource_servers_can_verify() {
    use tessera::jwt::SigningAlg;
    for alg in [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::RS256] {
        let app = spawn_app_with(|s| s.signing_alg = alg.as_str()).await;
        let (id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
        let secret = secret.expect("secret");
        let mut seen = Vec::new();
        for _ in 0..2 {
            let token = service_token(&app, &id, &secret).await;
            let (header, claims) = verify_with_jwks(&app, &token).await;
            assert_eq!(format!("{:?}", header.alg), alg.as_str(), "{alg:?}");
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            assert_eq!(claims["client_id"], id.as_str());
            assert_eq!(claims["scope"], "read");
            let res = check(&app.address, &token).await;
            assert_eq!(res.status(), 200, "{alg:?}");
            seen.push(token);
        }
        assert_ne!(seen[0], seen[1], "every token is new (its own jti)");
    }
}
