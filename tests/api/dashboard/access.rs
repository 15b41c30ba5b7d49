//! Who reaches the dashboard: signed-out visitors are sent to sign in and brought back, every form
//! refuses a missing or foreign CSRF token, and developers see and touch only their own apps and keys.

use diesel::prelude::*;
use tessera::db::schema::{api_keys, users};

use super::{check_key, client_credentials, count_clients, redirect_uris_of, return_to};
use crate::helpers::{
    PASSWORD, assert_page_error, attr_values, client, hidden_field, location, sign_in_as,
    spawn_app, text_of,
};

#[actix_web::test]
async fn signed_out_visitors_are_sent_to_sign_in_and_brought_back() {
    let app = spawn_app().await;
    app.create_user("dev@example.com", PASSWORD, false);
    let anonymous = client();

    let res = anonymous
        .get(app.url("/dashboard"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/dashboard/apps");

    for path in [
        "/dashboard/apps",
        "/dashboard/apps/new",
        "/dashboard/apps/cli_whatever",
        "/dashboard/apps/cli_whatever/delete",
        "/dashboard/keys",
        "/dashboard/keys/new",
        "/dashboard/keys/key_whatever",
        "/dashboard/keys/key_whatever/revoke",
        "/dashboard/usage?of=key:key_whatever",
        "/dashboard/signing-keys",
        "/dashboard/audit?action=api_key.&page=2",
        "/dashboard/users",
    ] {
        let res = anonymous.get(app.url(path)).send().await.expect("sent");
        assert_eq!(res.status(), 303, "GET {path}");
        assert_eq!(
            return_to(&location(&res)).as_deref(),
            Some(path),
            "GET {path} comes back to itself after sign-in"
        );
    }
    // A signed-out form post is not replayed after sign-in: it goes back to the dashboard.
    for path in [
        "/dashboard/apps",
        "/dashboard/keys",
        "/dashboard/keys/key_whatever/revoke",
        "/dashboard/signing-keys/rotate",
        "/dashboard/users",
    ] {
        let res = anonymous
            .post(app.url(path))
            .form(&[("name", "x"), ("csrf_token", "x")])
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 303, "POST {path}");
        assert_eq!(return_to(&location(&res)).as_deref(), Some("/dashboard"));
    }
    assert_eq!(count_clients(&app), 0, "nothing was created signed out");

    // Signing in with the return_to of the redirect lands on the page asked for.
    let res = app
        .login_request(
            &anonymous,
            &[
                ("email", "dev@example.com"),
                ("password", PASSWORD),
                ("return_to", "/dashboard/keys/new"),
            ],
        )
        .await
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/dashboard/keys/new");

    let res = anonymous
        .get(app.url("/dashboard/keys/new"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert!(
        h["content-type"]
            .to_str()
            .is_ok_and(|v| v.starts_with("text/html")),
        "{h:?}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    let csp = h["content-security-policy"].to_str().expect("ascii");
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let page = res.text().await.expect("body");
    assert_eq!(
        text_of(&page, "signed-in-as").as_deref(),
        Some("dev@example.com")
    );
    assert!(
        hidden_field(&page, "csrf_token").is_some_and(|t| t.len() == 43),
        "{page}"
    );
    assert!(!page.contains("<script>"), "no inline script");
    // A developer is offered no admin pages.
    assert!(!page.contains("href=\"/dashboard/users\""));
    assert!(!page.contains("href=\"/dashboard/signing-keys\""));
}

#[actix_web::test]
async fn every_dashboard_form_refuses_a_missing_or_foreign_csrf_token() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let other = sign_in_as(&app, "other@example.com", true).await;
    let dev_id = app.create_user("dev@example.com", PASSWORD, false);
    let (app_id, secret) = admin
        .register_app(
            "Billing",
            "confidential",
            &["authorization_code", "client_credentials"],
            &["read"],
            "https://billing.example/cb",
        )
        .await;
    let secret = secret.expect("a confidential app has a secret");
    let (key_id, key) = admin.create_key("Worker", "read").await;
    let signing_keys = attr_values(&admin.ok_page("/dashboard/signing-keys").await, "data-kid");

    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/dashboard/apps".into(),
            vec![
                ("name", "Sneaky"),
                ("client_type", "confidential"),
                ("grant_types", "client_credentials"),
            ],
        ),
        (
            format!("/dashboard/apps/{app_id}/redirect-uris"),
            vec![("redirect_uris", "https://evil.example/cb")],
        ),
        (format!("/dashboard/apps/{app_id}/secret"), vec![]),
        (format!("/dashboard/apps/{app_id}/delete"), vec![]),
        (
            "/dashboard/keys".into(),
            vec![
                ("name", "Sneaky"),
                ("type", "sk"),
                ("env", "live"),
                ("scopes", ""),
            ],
        ),
        (format!("/dashboard/keys/{key_id}/revoke"), vec![]),
        (
            format!("/dashboard/keys/{key_id}/rotate"),
            vec![("grace", "1h")],
        ),
        ("/dashboard/signing-keys/rotate".into(), vec![]),
        (
            "/dashboard/users".into(),
            vec![("email", "sneaky@example.com"), ("password", PASSWORD)],
        ),
        (format!("/dashboard/users/{dev_id}/make-admin"), vec![]),
        (format!("/dashboard/users/{dev_id}/disable"), vec![]),
    ];
    let forged = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (path, fields) in &forms {
        for token in [None, Some(""), Some(forged), Some(other.csrf())] {
            let mut form = fields.clone();
            if let Some(t) = token {
                form.push(("csrf_token", t));
            }
            let res = admin.post_raw(path, &form).await;
            assert_eq!(res.status(), 403, "POST {path} with token {token:?}");
            assert_page_error(res, 403, "csrf_failed").await;
        }
    }
    // Not a form at all: refused before anything else.
    let res = admin
        .client()
        .post(app.url("/dashboard/apps"))
        .json(&serde_json::json!({ "name": "x", "csrf_token": admin.csrf() }))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 415);

    // Nothing changed.
    assert_eq!(count_clients(&app), 1);
    assert_eq!(
        redirect_uris_of(&app, &app_id),
        ["https://billing.example/cb"]
    );
    assert_eq!(
        client_credentials(&app, &app_id, &secret).await.status(),
        200
    );
    assert_eq!(check_key(&app, &key).await.status(), 200);
    let mut conn = app.conn();
    let keys: i64 = api_keys::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(keys, 1);
    let (dev_admin, dev_disabled): (bool, Option<i64>) = users::table
        .find(&dev_id)
        .select((users::is_admin, users::disabled_at))
        .first(&mut conn)
        .expect("dev");
    assert!(!dev_admin && dev_disabled.is_none());
    let user_count: i64 = users::table.count().get_result(&mut conn).expect("count");
    assert_eq!(user_count, 3);
    assert_eq!(
        attr_values(&admin.ok_page("/dashboard/signing-keys").await, "data-kid"),
        signing_keys
    );
    // The right token still works.
    let res = admin
        .post(&format!("/dashboard/keys/{key_id}/revoke"), &[])
        .await;
    assert_eq!(res.status(), 303);
}

#[actix_web::test]
async fn developers_see_and_touch_only_their_own_apps_and_keys() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;
    let ana = sign_in_as(&app, "ana@example.com", false).await;
    let bob = sign_in_as(&app, "bob@example.com", false).await;
    let (cli_app, _) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let (ana_app, ana_secret) = ana
        .register_app(
            "Ana's app",
            "confidential",
            &["authorization_code", "client_credentials"],
            &["read"],
            "https://ana.example/cb",
        )
        .await;
    let ana_secret = ana_secret.expect("secret");
    let (bob_app, _) = bob
        .register_app(
            "Bob's app",
            "confidential",
            &["client_credentials"],
            &["read"],
            "",
        )
        .await;
    let (ana_key_id, ana_key) = ana.create_key("Ana's key", "read").await;
    let (bob_key_id, _) = bob.create_key("Bob's key", "read").await;

    let listed = |page: &str, attr: &str| {
        let mut v = attr_values(page, attr);
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        listed(&ana.ok_page("/dashboard/apps").await, "data-app-id"),
        [ana_app.as_str()]
    );
    assert_eq!(
        listed(&bob.ok_page("/dashboard/apps").await, "data-app-id"),
        [bob_app.as_str()]
    );
    assert_eq!(
        listed(&admin.ok_page("/dashboard/apps").await, "data-app-id"),
        sorted(vec![cli_app.clone(), ana_app.clone(), bob_app.clone()]),
        "an administrator sees every app, the CLI's too"
    );
    assert_eq!(
        listed(&ana.ok_page("/dashboard/keys").await, "data-key-id"),
        [ana_key_id.as_str()]
    );
    assert_eq!(
        listed(&admin.ok_page("/dashboard/keys").await, "data-key-id"),
        sorted(vec![ana_key_id.clone(), bob_key_id.clone()])
    );

    // Bob cannot see or change anything of Ana's: it looks like nothing is there.
    for path in [
        format!("/dashboard/apps/{ana_app}"),
        format!("/dashboard/apps/{ana_app}/delete"),
        format!("/dashboard/apps/{cli_app}"),
        format!("/dashboard/keys/{ana_key_id}"),
        format!("/dashboard/keys/{ana_key_id}/revoke"),
        format!("/dashboard/usage?of=key:{ana_key_id}"),
        format!("/dashboard/usage?of=app:{ana_app}"),
    ] {
        assert_page_error(bob.get(&path).await, 404, "not_found").await;
    }
    let posts: [(String, Vec<(&str, &str)>); 6] = [
        (
            format!("/dashboard/apps/{ana_app}/redirect-uris"),
            vec![("redirect_uris", "https://bob.example/steal")],
        ),
        (format!("/dashboard/apps/{ana_app}/secret"), vec![]),
        (format!("/dashboard/apps/{ana_app}/delete"), vec![]),
        (format!("/dashboard/apps/{cli_app}/delete"), vec![]),
        (format!("/dashboard/keys/{ana_key_id}/revoke"), vec![]),
        (
            format!("/dashboard/keys/{ana_key_id}/rotate"),
            vec![("grace", "1h")],
        ),
    ];
    for (path, fields) in &posts {
        assert_page_error(bob.post(path, fields).await, 404, "not_found").await;
    }
    // Unknown ids are the same 404.
    assert_page_error(bob.get("/dashboard/apps/cli_nope").await, 404, "not_found").await;
    assert_page_error(bob.get("/dashboard/keys/key_nope").await, 404, "not_found").await;

    // Nothing of Ana's changed.
    assert_eq!(count_clients(&app), 3);
    assert_eq!(redirect_uris_of(&app, &ana_app), ["https://ana.example/cb"]);
    assert_eq!(
        client_credentials(&app, &ana_app, &ana_secret)
            .await
            .status(),
        200
    );
    assert_eq!(check_key(&app, &ana_key).await.status(), 200);
    let ana_key_page = ana.ok_page(&format!("/dashboard/keys/{ana_key_id}")).await;
    assert_eq!(text_of(&ana_key_page, "status").as_deref(), Some("active"));
    assert!(!ana_key_page.contains("Replaced by"));
    // Bob's audit log knows nothing of Ana.
    let audit = bob.ok_page("/dashboard/audit").await;
    assert!(!audit.contains(&ana.user_id) && !audit.contains(&ana_app));

    // The administrator may open and manage both.
    for path in [
        format!("/dashboard/apps/{ana_app}"),
        format!("/dashboard/apps/{bob_app}"),
        format!("/dashboard/apps/{cli_app}"),
        format!("/dashboard/keys/{ana_key_id}"),
        format!("/dashboard/usage?of=key:{bob_key_id}"),
    ] {
        admin.ok_page(&path).await;
    }
    let res = admin
        .post(&format!("/dashboard/keys/{bob_key_id}/revoke"), &[])
        .await;
    assert_eq!(res.status(), 303);
    let bob_key_page = bob.ok_page(&format!("/dashboard/keys/{bob_key_id}")).await;
    assert_eq!(text_of(&bob_key_page, "status").as_deref(), Some("revoked"));
}
