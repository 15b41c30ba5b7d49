//! Revocation that follows people: a refused refresh leaves the token usable (only a genuine reuse
//! ends the family), and a disabled user's credentials, and those of the apps they own, are refused
//! until the user is re-enabled.

use diesel::prelude::*;
use serde_json::Value;

use crate::authorize::{PASSWORD, REDIRECT, error_of, exchange, tokens_for};
use crate::helpers::{TestApp, check, key_of_app, service_token, sign_in_as, spawn_app};

/// A public client with the code and refresh grants (owned by nobody), and a refresh token of
/// ana@example.com for it.
async fn public_client_and_refresh(app: &TestApp) -> (String, String, Value) {
    let (id, _) = app.create_client(
        &["authorization_code", "refresh_token"],
        &["read", "write", "offline_access"],
        &[REDIRECT],
        true,
    );
    let tokens = tokens_for(app, &id).await;
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    (id, refresh, tokens)
}

/// `grant_type=refresh_token` by the public client `client_id`, with `scope` when given.
async fn refresh(
    app: &TestApp,
    client_id: &str,
    token: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", client_id),
    ];
    form.extend(scope.map(|s| ("scope", s)));
    exchange(app, &form, None).await
}

/// The refresh token of a 200 token response (asserting the 200).
async fn rotated(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 200, "the token is still usable");
    let body: Value = res.json().await.expect("json");
    body["refresh_token"].as_str().expect("refresh").to_owned()
}

#[actix_web::test]
async fn a_refresh_refused_for_a_wider_scope_leaves_the_token_usable() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let (id, r1, _) = public_client_and_refresh(&app).await;

    let res = refresh(&app, &id, &r1, Some("read admin")).await;
    assert_eq!(error_of(res, 400).await, "invalid_scope");
    let res = refresh(&app, &id, &r1, Some("read")).await;
    let r2 = rotated(res).await;
    assert_ne!(r1, r2);
    // Reuse of the rotated token still ends the family (RFC 9700 §4.14.2).
    let res = refresh(&app, &id, &r1, None).await;
    assert_eq!(error_of(res, 400).await, "invalid_grant");
    let res = refresh(&app, &id, &r2, None).await;
    assert_eq!(
        error_of(res, 400).await,
        "invalid_grant",
        "the family is revoked"
    );
}

#[actix_web::test]
async fn a_refresh_token_presented_by_another_client_is_refused_audited_and_left_usable() {
    use tessera::db::schema::audit_events as ae;
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let (id, r1, _) = public_client_and_refresh(&app).await;
    let (other, _) = app.create_client(
        &["authorization_code", "refresh_token"],
        &["read"],
        &[REDIRECT],
        true,
    );

    let res = refresh(&app, &other, &r1, None).await;
    assert_eq!(error_of(res, 400).await, "invalid_grant");
    let events: Vec<(String, Option<String>, String)> = ae::table
        .filter(ae::action.eq("refresh_token.wrong_client"))
        .select((ae::actor_type, ae::actor_id, ae::details))
        .load(&mut app.conn())
        .expect("audit events");
    assert_eq!(events.len(), 1, "{events:?}");
    let (actor_type, actor_id, details) = &events[0];
    assert_eq!(
        (actor_type.as_str(), actor_id.as_deref()),
        ("client", Some(other.as_str()))
    );
    let details: Value = serde_json::from_str(details).expect("details are JSON");
    assert_eq!(details["client_id"], other.as_str());
    assert_eq!(details["owner_client_id"], id.as_str());
    assert!(
        !details.to_string().contains(&r1),
        "no secret in the audit log"
    );

    let r2 = rotated(refresh(&app, &id, &r1, None).await).await;
    assert_ne!(r1, r2);
}

/// What each credential of a person and of their app answers now: `200`, `active`, `valid`, or the
/// refusal (`<status> <error>`, `inactive`, the verify `code`).
struct Credentials {
    /// The resource server that introspects (a confidential client owned by nobody).
    rs: (String, String),
    /// The public client (owned by nobody) holding ana's refresh token, and that token (rotated).
    public_client: String,
    refresh: String,
    access: String,
    key: String,
    /// Ana's app (a confidential client_credentials client), a token it got and a key it owns.
    app: (String, String),
    app_access: String,
    app_key: String,
}

impl Credentials {
    async fn probe(&mut self, app: &TestApp) -> Vec<(&'static str, String)> {
        let res = refresh(app, &self.public_client, &self.refresh, None).await;
        let refreshed = if res.status() == 200 {
            self.refresh = rotated(res).await;
            "200".to_owned()
        } else {
            outcome(res).await
        };
        let app_token = app
            .client
            .post(app.url("/oauth/token"))
            .basic_auth(&self.app.0, Some(&self.app.1))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("token request");
        vec![
            ("refresh token", refreshed),
            (
                "access token at introspection",
                introspect(app, &self.rs, &self.access).await,
            ),
            (
                "access token at /v1/auth/check",
                forward_auth(app, &self.access).await,
            ),
            ("API key at /v1/keys/verify", verify(app, &self.key).await),
            (
                "API key at /v1/auth/check",
                forward_auth(app, &self.key).await,
            ),
            ("app's client_credentials", outcome(app_token).await),
            (
                "app's token at introspection",
                introspect(app, &self.rs, &self.app_access).await,
            ),
            (
                "app's token at /v1/auth/check",
                forward_auth(app, &self.app_access).await,
            ),
            (
                "app's API key at /v1/keys/verify",
                verify(app, &self.app_key).await,
            ),
            (
                "app's API key at /v1/auth/check",
                forward_auth(app, &self.app_key).await,
            ),
        ]
    }
}

/// `200`, or the status and error code of a refusal.
async fn outcome(res: reqwest::Response) -> String {
    let status = res.status().as_u16();
    if status == 200 {
        return "200".to_owned();
    }
    let body: Value = res.json().await.expect("error body is JSON");
    format!("{status} {}", body["error"].as_str().unwrap_or("?"))
}

/// Forward-auth's outcome for `credential` (as a bearer token).
async fn forward_auth(app: &TestApp, credential: &str) -> String {
    outcome(check(&app.address, credential).await).await
}

async fn verify(app: &TestApp, key: &str) -> String {
    let res = app
        .client
        .post(app.url("/v1/keys/verify"))
        .json(&serde_json::json!({ "key": key }))
        .send()
        .await
        .expect("verify");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    body["code"].as_str().expect("code").to_owned()
}

/// `active` or `inactive`: what the resource server `rs` is told of `token` at introspection.
async fn introspect(app: &TestApp, rs: &(String, String), token: &str) -> String {
    let active = app.introspect(rs, token).await["active"] == true;
    (if active { "active" } else { "inactive" }).to_owned()
}

#[actix_web::test]
async fn a_disabled_users_credentials_and_apps_are_refused_until_re_enabled() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "admin@example.com", true).await;
    let ana = sign_in_as(&app, "ana@example.com", false).await;
    let (_, key) = ana.create_key("Ana's key", "read").await;
    let (app_id, app_secret) = ana
        .register_app(
            "Ana's service",
            "confidential",
            &["client_credentials"],
            &["read"],
            "",
        )
        .await;
    let app_secret = app_secret.expect("a confidential app has a secret");
    let (public_client, refresh, tokens) = public_client_and_refresh(&app).await;
    let (rs, rs_secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    app.allow_introspection(&rs);
    let mut creds = Credentials {
        rs: (rs, rs_secret.expect("secret")),
        public_client,
        refresh,
        access: tokens["access_token"].as_str().expect("access").to_owned(),
        key,
        app_access: service_token(&app, &app_id, &app_secret).await,
        app_key: key_of_app(&app, &app_id, "Ana's service key"),
        app: (app_id, app_secret),
    };
    let working = vec![
        ("refresh token", "200"),
        ("access token at introspection", "active"),
        ("access token at /v1/auth/check", "200"),
        ("API key at /v1/keys/verify", "valid"),
        ("API key at /v1/auth/check", "200"),
        ("app's client_credentials", "200"),
        ("app's token at introspection", "active"),
        ("app's token at /v1/auth/check", "200"),
        ("app's API key at /v1/keys/verify", "valid"),
        ("app's API key at /v1/auth/check", "200"),
    ];
    let refused = vec![
        ("refresh token", "400 invalid_grant"),
        ("access token at introspection", "inactive"),
        ("access token at /v1/auth/check", "401 invalid_api_key"),
        ("API key at /v1/keys/verify", "disabled_api_key"),
        ("API key at /v1/auth/check", "401 disabled_api_key"),
        ("app's client_credentials", "401 invalid_client"),
        ("app's token at introspection", "inactive"),
        ("app's token at /v1/auth/check", "401 invalid_api_key"),
        ("app's API key at /v1/keys/verify", "disabled_api_key"),
        ("app's API key at /v1/auth/check", "401 disabled_api_key"),
    ];
    let expect = |v: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        v.iter().map(|(k, o)| (*k, (*o).to_owned())).collect()
    };
    // Verified once before, so this node's caches hold every credential: the change must reach them.
    assert_eq!(creds.probe(&app).await, expect(&working));

    let change = |what: &str| format!("/dashboard/users/{}/{what}", ana.user_id);
    assert_eq!(admin.post(&change("disable"), &[]).await.status(), 303);
    assert_eq!(creds.probe(&app).await, expect(&refused), "while disabled");
    assert_eq!(
        creds.probe(&app).await,
        expect(&refused),
        "and again (cached)"
    );

    assert_eq!(admin.post(&change("enable"), &[]).await.status(), 303);
    assert_eq!(
        creds.probe(&app).await,
        expect(&working),
        "re-enabled: nothing was revoked"
    );
}
