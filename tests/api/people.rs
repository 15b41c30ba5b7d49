//! Revocation that follows people: a refused refresh leaves the token usable (only a genuine reuse
//! ends the family).

use diesel::prelude::*;
use serde_json::Value;

use crate::authorize::{PASSWORD, REDIRECT, error_of, exchange, tokens_for};
use crate::helpers::{TestApp, spawn_app};

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
