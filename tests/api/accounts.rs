//! Sign-in, sessions, CSRF, and the `/v1/users` management API.

use diesel::prelude::*;
use tessera::db::schema::{audit_events, sessions, users};

use crate::helpers::{assert_error, assert_page_error, client, hidden_field, spawn_app};

const PASSWORD: &str = "correct horse battery";

fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

#[actix_web::test]
async fn the_login_page_is_safe_to_show() {
    let app = spawn_app().await;
    let res = app
        .get("/login?return_to=/oauth/authorize%3Fclient_id%3Dx")
        .await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["x-frame-options"], "DENY");
    let csp = h["content-security-policy"].to_str().expect("ascii");
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(h["referrer-policy"], "no-referrer");
    let cookies = set_cookies(&res);
    assert!(
        cookies.iter().any(|c| c.starts_with("tessera_csrf=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Lax")),
        "{cookies:?}"
    );
    let page = res.text().await.expect("body");
    assert!(
        hidden_field(&page, "csrf_token").is_some_and(|t| t.len() == 43),
        "{page}"
    );
    assert_eq!(
        hidden_field(&page, "return_to").as_deref(),
        Some("/oauth/authorize?client_id=x")
    );
    assert!(!page.contains("<script>"), "no inline script");
}

#[actix_web::test]
async fn a_form_without_a_valid_csrf_token_gets_403() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let c = client();
    app.login_csrf(&c).await;
    for token in [
        "",
        "forged-token",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let res = c
            .post(app.url("/login"))
            .form(&[
                ("email", "ana@example.com"),
                ("password", PASSWORD),
                ("csrf_token", token),
            ])
            .send()
            .await
            .expect("sent");
        assert_page_error(res, 403, "csrf_failed").await;
    }
    // A token taken from another browser (another CSRF cookie) does not work either.
    let other = client();
    let stolen = app.login_csrf(&other).await;
    let res = c
        .post(app.url("/login"))
        .form(&[
            ("email", "ana@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &stolen),
        ])
        .send()
        .await
        .expect("sent");
    assert_page_error(res, 403, "csrf_failed").await;
    let res = c
        .post(app.url("/logout"))
        .form(&[("csrf_token", "nope")])
        .send()
        .await
        .expect("sent");
    assert_page_error(res, 403, "csrf_failed").await;
}

#[actix_web::test]
async fn wrong_passwords_and_unknown_users_get_the_same_answer() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let c = client();
    for (email, password) in [
        ("ana@example.com", "wrong password!!"),
        ("nobody@example.com", PASSWORD),
    ] {
        let res = app
            .login_request(&c, &[("email", email), ("password", password)])
            .await
            .header("Accept-Language", "es-ES")
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 401);
        assert!(
            set_cookies(&res)
                .iter()
                .all(|c| !c.starts_with("tessera_session="))
        );
        let page = res.text().await.expect("body");
        assert!(
            page.contains("El correo electrónico o la contraseña no son correctos."),
            "{page}"
        );
    }
}

#[actix_web::test]
async fn signing_in_sets_a_new_session_each_time_and_signing_out_ends_it() {
    let app = spawn_app().await;
    app.create_user("Ana@Example.com", PASSWORD, false);
    let c = client();
    let res = app
        .login_request(
            &c,
            &[
                ("email", "ana@example.com"),
                ("password", PASSWORD),
                ("return_to", "/somewhere?x=1"),
            ],
        )
        .await
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 303, "See Other after the POST");
    assert_eq!(res.headers()["location"], "/somewhere?x=1");
    let cookies = set_cookies(&res);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("tessera_session="))
        .expect("session cookie set")
        .clone();
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Lax")
            && session.contains("Path=/")
    );
    assert!(!session.contains("Secure"), "http issuer: no Secure flag");
    let first_value = session.split(';').next().expect("value").to_owned();

    // Signed in, the site's root is the dashboard (no dead-end page).
    let home = c.get(app.url("/")).send().await.expect("sent");
    assert_eq!(home.status(), 303);
    assert_eq!(home.headers()["location"], "/dashboard");
    let page = c
        .get(app.url("/dashboard/apps"))
        .send()
        .await
        .expect("sent");
    let page = page.text().await.expect("body");
    assert!(page.contains("ana@example.com"), "{page}");

    // Signing in again replaces the session (no fixation) and removes the old one.
    app.sign_in(&c, "ana@example.com", PASSWORD).await;
    let mut conn = app.conn();
    let count: i64 = sessions::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(count, 1, "the old session was deleted at re-login");
    let stored: String = sessions::table
        .select(sessions::id_hash)
        .first(&mut conn)
        .expect("row");
    assert!(
        !first_value.contains(&stored),
        "the cookie value is not stored, only its hash"
    );
    assert_eq!(stored.len(), 64, "HMAC-SHA256 hex");

    let page = app.fetch_text(&c, "/dashboard/apps").await;
    let token = hidden_field(&page, "csrf_token").expect("logout form token");
    let res = c
        .post(app.url("/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login");
    let count: i64 = sessions::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(count, 0);
    let res = c.get(app.url("/")).send().await.expect("sent");
    assert_eq!(res.status(), 303, "signed out: back to the login page");

    let actions: Vec<String> = audit_events::table
        .filter(audit_events::action.like("user.%"))
        .order(audit_events::id.asc())
        .select(audit_events::action)
        .load(&mut conn)
        .expect("audit");
    assert_eq!(
        actions,
        ["user.create", "user.login", "user.login", "user.logout"]
    );
}

#[actix_web::test]
async fn return_to_never_leaves_the_site() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let res = app
        .login_request(
            &client(),
            &[
                ("email", "ana@example.com"),
                ("password", PASSWORD),
                ("return_to", "//evil.example/phish"),
            ],
        )
        .await
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/dashboard");
}

#[actix_web::test]
async fn the_users_api_is_for_administrators() {
    let app = spawn_app().await;
    app.create_user("root@example.com", PASSWORD, true);
    app.create_user("dev@example.com", PASSWORD, false);

    let anonymous = app.get("/v1/users").await;
    assert_error(anonymous, 401, "unauthenticated").await;

    let dev = client();
    app.sign_in(&dev, "dev@example.com", PASSWORD).await;
    assert_error(
        dev.get(app.url("/v1/users")).send().await.expect("sent"),
        403,
        "forbidden",
    )
    .await;
    let res = dev
        .post(app.url("/v1/users"))
        .json(&serde_json::json!({"email": "x@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("sent");
    assert_error(res, 403, "forbidden").await;

    let root = client();
    app.sign_in(&root, "root@example.com", PASSWORD).await;
    let res = root
        .post(app.url("/v1/users"))
        .json(&serde_json::json!({"email": "New@Example.com", "password": "a long enough secret", "is_admin": false}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 201);
    let created: serde_json::Value = res.json().await.expect("json");
    assert_eq!(created["email"], "new@example.com");
    assert!(
        created["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("usr_"))
    );
    assert!(created.get("password_hash").is_none());

    let dup = root
        .post(app.url("/v1/users"))
        .json(&serde_json::json!({"email": "new@example.com", "password": "a long enough secret"}))
        .send()
        .await
        .expect("sent");
    assert_error(dup, 409, "email_taken").await;
    let weak = root
        .post(app.url("/v1/users"))
        .header("Accept-Language", "es-ES")
        .json(&serde_json::json!({"email": "w@example.com", "password": "short"}))
        .send()
        .await
        .expect("sent");
    let body = assert_error(weak, 400, "weak_password").await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("La contraseña"))
    );
    let bad = root
        .post(app.url("/v1/users"))
        .json(&serde_json::json!({"email": "not-an-email", "password": "a long enough secret"}))
        .send()
        .await
        .expect("sent");
    assert_error(bad, 400, "invalid_email").await;
    let cross_site = root
        .post(app.url("/v1/users"))
        .header("Origin", "https://evil.example")
        .json(&serde_json::json!({"email": "cs@example.com", "password": "a long enough secret"}))
        .send()
        .await
        .expect("sent");
    assert_error(cross_site, 403, "forbidden").await;

    let list: serde_json::Value = root
        .get(app.url("/v1/users?limit=10"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let emails: Vec<&str> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert_eq!(emails.len(), 3);
    assert!(emails.contains(&"new@example.com"));

    // Stored as an Argon2id PHC string, never the password.
    let mut conn = app.conn();
    let hash: String = users::table
        .filter(users::email.eq("new@example.com"))
        .select(users::password_hash)
        .first(&mut conn)
        .expect("row");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains("a long enough secret"));
}
