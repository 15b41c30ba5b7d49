//! The browser's pages (issue 13, trap 7): errors on the browser's routes are HTML pages in the
//! user's language with the request id (JSON stays on the APIs); every form that creates something
//! answers POST → 303 → GET and its secret is shown exactly once; sign-in lands on the dashboard or
//! a same-origin `return_to`; a sign-in for an app names the app.

use diesel::prelude::*;
use tessera::db::schema::{api_keys, flashes, oauth_clients};

use crate::helpers::{
    Browser, TestApp, assert_error, assert_page_error, client, hidden_field, location, sign_in_as,
    spawn_app, text_of,
};

const PASSWORD: &str = "correct horse battery staple";

/// A request from a browser that prefers Spanish.
fn es(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.header("Accept-Language", "es-ES,es;q=0.9")
}

/// Asserts an error page in Spanish: its status, code, request id and the Spanish title.
async fn assert_spanish_page(res: reqwest::Response, status: u16, code: &str, title: &str) {
    let what = format!("{} {}", res.url().path(), status);
    assert_eq!(
        res.headers()
            .get("content-language")
            .and_then(|v| v.to_str().ok()),
        Some("es-ES"),
        "{what}"
    );
    let page = assert_page_error(res, status, code).await;
    assert!(page.contains("<html lang=\"es-ES\">"), "{what}: {page}");
    assert!(
        page.contains(&format!("<h1 id=\"error-title\">{title}</h1>")),
        "{what}: {page}"
    );
    assert!(
        page.contains("Identificador de la solicitud"),
        "{what}: {page}"
    );
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "{what}: no inline script or style"
    );
}

#[actix_web::test]
async fn every_error_on_a_browser_route_is_a_page_in_the_users_language() {
    let app = spawn_app().await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;
    let c = client();
    let url = |p: &str| app.url(p);

    // 404: unknown paths under every browser prefix (signed out), and an unknown id (signed in).
    for path in [
        "/dashboard/nope",
        "/dashboard/apps/cli_nope/nope",
        "/account/nope",
        "/account/settings",
        "/login/nope",
        "/logout/nope",
        "/oauth/authorize/nope",
    ] {
        let res = es(c.get(url(path))).send().await.expect("sent");
        assert_spanish_page(res, 404, "not_found", "Página no encontrada").await;
    }
    let res = es(dev.client().get(url("/dashboard/keys/key_nope")))
        .send()
        .await
        .expect("sent");
    assert_spanish_page(res, 404, "not_found", "Página no encontrada").await;
    // The same in English without Accept-Language.
    let page = assert_page_error(
        c.get(url("/dashboard/nope")).send().await.expect("sent"),
        404,
        "not_found",
    )
    .await;
    assert!(page.contains("Page not found"), "{page}");

    // 405: a wrong method on each prefix, with `Allow` kept.
    for (method, path) in [
        (reqwest::Method::GET, "/logout"),
        (reqwest::Method::DELETE, "/login"),
        (reqwest::Method::PUT, "/oauth/authorize"),
        (reqwest::Method::DELETE, "/dashboard/apps"),
    ] {
        let res = es(c.request(method.clone(), url(path)))
            .send()
            .await
            .expect("sent");
        assert!(res.headers().contains_key("allow"), "{method} {path}");
        assert_spanish_page(
            res,
            405,
            "method_not_allowed",
            "Esta página no se puede usar de esa manera",
        )
        .await;
    }

    // 403: a missing or forged CSRF token (raised in handlers), and a page for administrators only.
    let login_csrf = app.login_csrf(&c).await;
    let forged = [
        (
            "/login",
            vec![("email", "a@example.com"), ("password", "x")],
        ),
        ("/logout", vec![]),
        ("/oauth/authorize", vec![("decision", "allow")]),
    ];
    for (path, fields) in forged {
        let mut fields = fields.clone();
        fields.push(("csrf_token", "forged"));
        let res = es(c.post(url(path)).form(&fields))
            .send()
            .await
            .expect("sent");
        assert_spanish_page(res, 403, "csrf_failed", "Acceso denegado").await;
    }
    let res = es(dev
        .client()
        .post(url("/dashboard/keys"))
        .form(&[("name", "k")]))
    .send()
    .await
    .expect("sent");
    assert_spanish_page(res, 403, "csrf_failed", "Acceso denegado").await;
    let res = es(dev.client().get(url("/dashboard/users")))
        .send()
        .await
        .expect("sent");
    assert_spanish_page(res, 403, "forbidden", "Acceso denegado").await;

    // 400 from the extractors: a form body that does not parse, a query that does not.
    let res = es(c
        .post(url("/login"))
        .form(&[("csrf_token", login_csrf.as_str())]))
    .send()
    .await
    .expect("sent");
    assert_spanish_page(res, 400, "invalid_form", "No se pudo entender la solicitud").await;
    let res = es(c.get(url("/login?return_to=/a&return_to=/b")))
        .send()
        .await
        .expect("sent");
    assert_spanish_page(
        res,
        400,
        "invalid_query",
        "No se pudo entender la solicitud",
    )
    .await;
    // 415 and 413: refused before the form is read.
    let res = es(dev
        .client()
        .post(url("/dashboard/apps"))
        .header("Content-Type", "application/json")
        .body("{}"))
    .send()
    .await
    .expect("sent");
    assert_spanish_page(
        res,
        415,
        "unsupported_media_type",
        "La solicitud fue rechazada",
    )
    .await;
    let res = es(c
        .post(url("/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 70 * 1024]))
    .send()
    .await
    .expect("sent");
    assert_spanish_page(res, 413, "payload_too_large", "La solicitud fue rechazada").await;

    // JSON stays on the APIs, in the caller's language too.
    let res = es(c.get(url("/v1/nothing"))).send().await.expect("sent");
    let body = assert_error(res, 404, "not_found").await;
    assert_eq!(body["message"], "El recurso solicitado no existe.");
    let res = es(c.get(url("/v1/keys"))).send().await.expect("sent");
    assert_error(res, 401, "unauthenticated").await;
    let res = c.get(url("/oauth/token")).send().await.expect("sent");
    assert_eq!(res.status(), 405);
    let body: serde_json::Value = res.json().await.expect("RFC 6749 JSON on /oauth/token");
    assert_eq!(body["error"], "method_not_allowed");
    let res = c.get(url("/dashboards")).send().await.expect("sent");
    assert_error(res, 404, "not_found").await;
}

#[actix_web::test]
async fn a_server_error_on_a_browser_route_is_a_page_with_the_request_id() {
    let app = spawn_app().await;
    let dev = sign_in_as(&app, "dev@example.com", false).await;
    // The flash store is gone: creating a key fails after the key is made (500).
    diesel::sql_query("DROP TABLE flashes")
        .execute(&mut app.conn())
        .expect("drop");
    let res = es(dev
        .client()
        .post(app.url("/dashboard/keys"))
        .form(&dev.with_csrf(&[
            ("name", "k"),
            ("type", "rk"),
            ("env", "test"),
            ("scopes", "read"),
            ("expires_in", ""),
        ])))
    .send()
    .await
    .expect("sent");
    let page = assert_page_error(res, 500, "internal_error").await;
    assert!(page.contains("Algo salió mal"), "{page}");
    assert!(
        page.contains("Indique el identificador de la solicitud"),
        "{page}"
    );
    assert!(
        !page.contains("flashes"),
        "the cause is logged, never shown"
    );
}

/// The keys in the database.
fn count_keys(app: &TestApp) -> i64 {
    api_keys::table
        .count()
        .get_result(&mut app.conn())
        .expect("count")
}

fn count_flashes(app: &TestApp) -> i64 {
    flashes::table
        .count()
        .get_result(&mut app.conn())
        .expect("count")
}

/// POSTs a create form and checks the whole round: 303 to a GET that shows the secret with id
/// `secret_id` once (and never stores it readable), then a reload that shows no secret and goes
/// to the thing's own page. Returns the first page and the secret.
async fn created_once(
    b: &Browser<'_>,
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
    secret_id: &str,
) -> (String, String) {
    let res = b.post(path, fields).await;
    assert_eq!(res.status(), 303, "POST {path} answers See Other");
    let to = location(&res);
    assert!(to.ends_with("/created"), "{to}");
    assert!(
        res.text().await.expect("body").is_empty(),
        "no secret in the 303"
    );
    // Waiting server-side, sealed: the database holds no readable secret.
    let sealed: Vec<Vec<u8>> = flashes::table
        .select(flashes::sealed)
        .load(&mut app.conn())
        .expect("flashes");
    assert_eq!(sealed.len(), 1, "one flash waits for {to}");

    let page = b.follow_location(&to).await;
    let secret = text_of(&page, secret_id).expect("the secret, shown once");
    assert!(secret.len() >= 40, "{secret}");
    assert!(!to.contains(&secret), "never in the URL");
    assert!(
        !sealed[0]
            .windows(16)
            .any(|w| secret.as_bytes().windows(16).any(|s| s == w)),
        "the stored flash is sealed, not the secret itself"
    );
    assert_eq!(count_flashes(app), 0, "deleted when read");

    // A reload: no secret, and on to the thing's own page.
    let again = b.get(&to).await;
    assert_eq!(again.status(), 303, "reload of {to}");
    let own = location(&again);
    assert!(own.contains("notice=secret_shown"), "{own}");
    let own_page = b.follow_location(&own).await;
    assert!(!own_page.contains(&secret), "{own}");
    assert!(own_page.contains("The secret was shown once"), "{own_page}");
    (page, secret)
}

#[actix_web::test]
async fn every_create_form_redirects_and_its_secret_is_shown_exactly_once() {
    let app = spawn_app().await;
    let admin = sign_in_as(&app, "root@example.com", true).await;

    // An API key: one key however often the page after it is loaded.
    let (page, key) = created_once(
        &admin,
        &app,
        "/dashboard/keys",
        &[
            ("name", "Reload me"),
            ("type", "rk"),
            ("env", "test"),
            ("scopes", "read"),
            ("expires_in", ""),
        ],
        "api-key",
    )
    .await;
    assert!(key.starts_with("rk_test_"), "{key}");
    let key_id = text_of(&page, "key-id").expect("key id");
    assert_eq!(count_keys(&app), 1, "a reload created no second key");

    // Rotating it: the new key once.
    let (page, rotated) = created_once(
        &admin,
        &app,
        &format!("/dashboard/keys/{key_id}/rotate"),
        &[("grace", "1h")],
        "api-key",
    )
    .await;
    assert_ne!(rotated, key);
    assert!(page.contains("keeps working for 1h"), "{page}");
    assert_eq!(count_keys(&app), 2);

    // An app: its client secret once.
    let (page, secret) = created_once(
        &admin,
        &app,
        "/dashboard/apps",
        &[
            ("name", "Backend"),
            ("client_type", "confidential"),
            ("grant_types", "client_credentials"),
            ("scopes", "read"),
            ("redirect_uris", ""),
        ],
        "client-secret",
    )
    .await;
    let client_id = text_of(&page, "client-id").expect("client id");
    let apps: i64 = oauth_clients::table
        .count()
        .get_result(&mut app.conn())
        .expect("count");
    assert_eq!(apps, 1);

    // Regenerating its secret: the new one once.
    let (page, regenerated) = created_once(
        &admin,
        &app,
        &format!("/dashboard/apps/{client_id}/secret"),
        &[],
        "client-secret",
    )
    .await;
    assert_ne!(regenerated, secret);
    assert!(page.contains("New client secret"), "{page}");

    // A user: 303 back to the list.
    let res = admin
        .post(
            "/dashboard/users",
            &[("email", "new@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/dashboard/users?notice=user_created");
}

#[actix_web::test]
async fn a_flash_is_for_its_own_session_and_only_for_a_few_minutes() {
    let app = spawn_app().await;
    let ana = sign_in_as(&app, "ana@example.com", true).await;
    let fields = [
        ("name", "k"),
        ("type", "rk"),
        ("env", "test"),
        ("scopes", "read"),
        ("expires_in", ""),
    ];
    // Another browser of the same user does not get it (and does not use it up).
    let res = ana.post("/dashboard/keys", &fields).await;
    let to = location(&res);
    let other = client();
    app.sign_in(&other, "ana@example.com", "correct horse battery")
        .await;
    let res = other.get(app.url(&to)).send().await.expect("sent");
    assert_eq!(res.status(), 303, "another session sees no flash");
    let page = ana.follow_location(&to).await;
    assert!(
        text_of(&page, "api-key").is_some(),
        "still there for its own"
    );

    // An unread flash past its time is not shown.
    let res = ana.post("/dashboard/keys", &fields).await;
    let to = location(&res);
    diesel::update(flashes::table)
        .set(flashes::expires_at.eq(tessera::db::now() - 1))
        .execute(&mut app.conn())
        .expect("expire");
    let res = ana.get(&to).await;
    assert_eq!(res.status(), 303, "an expired flash is not shown");
    assert_eq!(count_flashes(&app), 0, "and it is gone");

    // Signing out ends the session and its flashes with it.
    ana.post("/dashboard/keys", &fields).await;
    assert_eq!(count_flashes(&app), 1);
    ana.post("/logout", &[]).await;
    assert_eq!(count_flashes(&app), 0);
}

/// Signs in through the form with `return_to`; the `Location` it answers.
async fn sign_in_returning_to(app: &TestApp, return_to: Option<&str>) -> String {
    let mut form = vec![("email", "ana@example.com"), ("password", PASSWORD)];
    form.extend(return_to.map(|r| ("return_to", r)));
    let res = app
        .login_request(&client(), &form)
        .await
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 303, "{return_to:?}");
    location(&res)
}

#[actix_web::test]
async fn sign_in_lands_on_the_dashboard_or_a_same_origin_return_to() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    assert_eq!(sign_in_returning_to(&app, None).await, "/dashboard");
    assert_eq!(
        sign_in_returning_to(&app, Some("/dashboard/keys?x=1")).await,
        "/dashboard/keys?x=1"
    );
    let ours = app.url("/dashboard/usage");
    assert_eq!(
        sign_in_returning_to(&app, Some(&ours)).await,
        "/dashboard/usage",
        "an absolute URL on our own origin is kept as its path"
    );
    for off_site in [
        "https://evil.example/phish",
        "//evil.example/phish",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        assert_eq!(
            sign_in_returning_to(&app, Some(off_site)).await,
            "/dashboard",
            "{off_site}"
        );
    }
    // The sign-in page carries only a safe return_to in its form.
    let page = app
        .fetch_text(&client(), "/login?return_to=https%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(
        hidden_field(&page, "return_to").as_deref(),
        Some("/dashboard")
    );
    // The dashboard is where a signed-in user lands, and it is not a dead end.
    let c = client();
    app.sign_in(&c, "ana@example.com", PASSWORD).await;
    let res = c.get(app.url("/")).send().await.expect("sent");
    assert_eq!(location(&res), "/dashboard");
    let res = c.get(app.url("/dashboard")).send().await.expect("sent");
    assert_eq!(location(&res), "/dashboard/apps");
}

#[actix_web::test]
async fn the_sign_in_page_of_an_authorization_request_names_the_app() {
    let app = spawn_app().await;
    let (id, _) = app
        .register_client(tessera::oauth::ClientInput {
            name: "<Acme & Co's> \"app\"".into(),
            redirect_uris: vec!["http://127.0.0.1:9876/callback".into()],
            grant_types: vec!["authorization_code".into()],
            scopes: vec!["read".into()],
            public: true,
            ..Default::default()
        })
        .expect("client");
    let mut authorize = url::Url::parse(&app.url("/oauth/authorize")).expect("url");
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &id)
        .append_pair("redirect_uri", "http://127.0.0.1:9876/callback")
        .append_pair("scope", "read")
        .append_pair("state", "s")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCgJIgk4n7U_c-N6hT0Z6Q1Y",
        )
        .append_pair("code_challenge_method", "S256");
    let c = client();
    let res = c.get(authorize.as_str()).send().await.expect("sent");
    assert_eq!(res.status(), 303);
    let login = location(&res);
    assert!(login.contains("/login?return_to="), "{login}");

    let page = c.get(&login).send().await.expect("sent");
    let page = page.text().await.expect("body");
    assert!(
        page.contains(
            "<p class=\"lead\" id=\"continue-to\">Sign in to continue to \
             &#60;Acme &#38; Co&#39;s&#62; &#34;app&#34;</p>"
        ) || page.contains(
            "<p class=\"lead\" id=\"continue-to\">Sign in to continue to \
             &lt;Acme &amp; Co&#39;s&gt; &quot;app&quot;</p>"
        ),
        "the app is named, escaped: {page}"
    );
    let page = es(c.get(&login))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    assert!(page.contains("Inicie sesión para continuar en"), "{page}");
    // Signing in there goes on with the authorization request (its consent page).
    app.create_user("ana@example.com", PASSWORD, false);
    let token = hidden_field(&page, "csrf_token").expect("token");
    let return_to = hidden_field(&page, "return_to").expect("return_to");
    assert!(return_to.starts_with("/oauth/authorize?"), "{return_to}");
    let res = c
        .post(app.url("/login"))
        .form(&[
            ("email", "ana@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &token),
            ("return_to", &return_to),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(location(&res), return_to);

    // A plain sign-in, or one for an unknown app, names none.
    let mut unknown = authorize.clone();
    unknown.set_query(Some("client_id=cli_nobody"));
    for path in [
        "/login".to_owned(),
        format!(
            "/login?return_to={}",
            url::form_urlencoded::byte_serialize(&unknown.as_str().as_bytes()[app.address.len()..])
                .collect::<String>()
        ),
    ] {
        let page = app.fetch_text(&client(), &path).await;
        assert!(!page.contains("continue-to"), "{path}: {page}");
    }
}
