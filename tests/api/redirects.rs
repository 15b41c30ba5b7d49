//! Redirect URIs at the authorization endpoint (RFC 9700 §4.1.3): an exact string match, except the
//! port of a loopback redirect URI (RFC 8252 §7.3: a native app listens on any free port).

use ring::digest::{SHA256, digest};

use crate::helpers::{TestApp, client, spawn_app};

const PASSWORD: &str = "correct horse battery";

fn challenge(verifier: &str) -> String {
    tessera::crypto::base64url(digest(&SHA256, verifier.as_bytes()).as_ref())
}

fn authorize_url(app: &TestApp, client_id: &str, redirect_uri: &str, challenge: &str) -> String {
    let mut url = url::Url::parse(&app.url("/oauth/authorize")).expect("url");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "read")
        .append_pair("state", "s1")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

/// The answer to an authorization request by a signed-in user who consented before: the redirect
/// (status and `Location`), or the status of a page.
async fn authorize(
    app: &TestApp,
    browser: &reqwest::Client,
    id: &str,
    redirect: &str,
    pkce: &str,
) -> (u16, Option<String>) {
    let res = browser
        .get(authorize_url(app, id, redirect, pkce))
        .send()
        .await
        .expect("authorize");
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().expect("ascii").to_owned());
    (res.status().as_u16(), location)
}

/// Opens the consent page of an authorization request and allows it; the redirect to the client.
async fn consent(app: &TestApp, browser: &reqwest::Client, authorize: String) -> String {
    let res = browser.get(authorize).send().await.expect("authorize");
    assert_eq!(res.status(), 200, "the consent page");
    let page = res.text().await.expect("page");
    let mut form = crate::helpers::hidden_inputs(&page);
    form.push(("decision".into(), "allow".into()));
    let res = browser
        .post(app.url("/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .expect("consent");
    assert_eq!(res.status(), 303);
    res.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned()
}

#[actix_web::test]
async fn a_loopback_redirect_uri_may_name_any_port_and_nothing_else_may_differ() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let registered = [
        "http://127.0.0.1:9876/callback",
        "http://[::1]/callback",
        "http://localhost:4000/cb",
        "https://app.example.com:8443/cb",
    ];
    let (id, _) = app.create_client(&["authorization_code"], &["read"], &registered, true);
    let browser = client();
    app.sign_in(&browser, "ana@example.com", PASSWORD).await;
    let verifier = tessera::crypto::random_token();
    let pkce = challenge(&verifier);
    // Consent once, through the page.
    consent(
        &app,
        &browser,
        authorize_url(&app, &id, registered[0], &pkce),
    )
    .await;

    for (asked, ok) in [
        ("http://127.0.0.1:51234/callback", true),
        ("http://127.0.0.1/callback", true),
        ("http://[::1]:8080/callback", true),
        ("http://localhost:61000/cb", true),
        ("http://localhost/cb", true),
        ("http://127.0.0.1:51234/callback/other", false),
        ("http://127.0.0.1:51234/Callback", false),
        ("http://127.0.0.2:9876/callback", false),
        ("http://localhost:61000/cb?x=1", false),
        ("https://127.0.0.1:9876/callback", false),
        ("https://app.example.com:443/cb", false),
        ("https://app.example.com/cb", false),
    ] {
        let (status, location) = authorize(&app, &browser, &id, asked, &pkce).await;
        if ok {
            assert_eq!(status, 303, "{asked}");
            let location = location.expect("a redirect");
            assert!(
                location.starts_with(&format!("{asked}?code=")),
                "{asked}: the code goes to the port asked for: {location}"
            );
            // The code is bound to that exact redirect URI.
            let code = url::Url::parse(&location)
                .expect("url")
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .expect("code");
            let token = |redirect: &str| {
                app.client
                    .post(app.url("/oauth/token"))
                    .form(&[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", redirect),
                        ("client_id", &id),
                        ("code_verifier", &verifier),
                    ])
                    .send()
            };
            let res = token(asked).await.expect("token");
            assert_eq!(
                res.status(),
                200,
                "{asked}: {}",
                res.text().await.unwrap_or_default()
            );
        } else {
            assert_eq!(status, 400, "{asked}: the error page, never a redirect");
            assert!(location.is_none(), "{asked}");
        }
    }
}

#[actix_web::test]
async fn a_code_is_redeemed_only_with_the_redirect_uri_it_was_issued_for() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let (id, _) = app.create_client(
        &["authorization_code"],
        &["read"],
        &["http://127.0.0.1:9876/callback"],
        true,
    );
    let browser = client();
    app.sign_in(&browser, "ana@example.com", PASSWORD).await;
    let verifier = tessera::crypto::random_token();
    let pkce = challenge(&verifier);
    let location = consent(
        &app,
        &browser,
        authorize_url(&app, &id, "http://127.0.0.1:5000/callback", &pkce),
    )
    .await;
    let code = url::Url::parse(&location)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    // Another port than the one the code was issued for: refused.
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9876/callback"),
            ("client_id", &id),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_grant");
}
