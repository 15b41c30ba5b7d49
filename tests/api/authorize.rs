//! The browser flow: authorization code with PKCE through the real login and consent pages, the code
//! exchange, refresh rotation with reuse detection, and the RFC 9700 refusals.

use std::collections::HashMap;

use ring::digest::{SHA256, digest};

use crate::helpers::{
    TestApp, check, client, hidden_field, hidden_inputs, location, spawn_app, unescape,
    verify_with_jwks,
};

pub const PASSWORD: &str = "correct horse battery";
pub const REDIRECT: &str = "http://127.0.0.1:9876/callback";

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = format!("{}{}", tessera::crypto::random_token(), "-._~abc");
    let challenge = tessera::crypto::base64url(digest(&SHA256, verifier.as_bytes()).as_ref());
    Pkce {
        verifier,
        challenge,
    }
}

pub fn query_of(url: &str) -> HashMap<String, String> {
    let parsed = url::Url::parse(url).expect("absolute URL");
    parsed.query_pairs().into_owned().collect()
}

pub fn authorize_url(
    app: &TestApp,
    client_id: &str,
    scope: &str,
    state: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = url::Url::parse(&app.url("/oauth/authorize")).expect("url");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .extend_pairs(extra.iter());
    url.to_string()
}

/// Follows a 303 from the server (relative or absolute) and returns the response.
pub async fn follow(
    app: &TestApp,
    browser: &reqwest::Client,
    res: &reqwest::Response,
) -> reqwest::Response {
    let loc = location(res);
    let url = if loc.starts_with('/') {
        app.url(&loc)
    } else {
        loc
    };
    browser.get(url).send().await.expect("followed")
}

/// Submits the consent page's form with `decision`; returns the redirect to the client.
pub async fn decide(
    app: &TestApp,
    browser: &reqwest::Client,
    consent_page: &str,
    decision: &str,
) -> reqwest::Response {
    let mut form = hidden_inputs(consent_page);
    form.push(("decision".into(), decision.into()));
    browser
        .post(app.url("/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .expect("consent posted")
}

/// Runs the browser part like a person would: authorize → login → consent → redirect. Returns the code.
async fn browser_code(
    app: &TestApp,
    browser: &reqwest::Client,
    client_id: &str,
    scope: &str,
    challenge: &str,
) -> String {
    let url = authorize_url(app, client_id, scope, "xyz state/ü", challenge, &[]);
    let q = sign_in_and_consent(app, browser, &url).await;
    assert_eq!(q["state"], "xyz state/ü", "state echoed exactly");
    q["code"].clone()
}

/// From an authorization URL (as any client library builds it) through login and consent to the
/// redirect back to the client; returns that redirect's query (`code`, `state`, `iss`).
pub async fn sign_in_and_consent(
    app: &TestApp,
    browser: &reqwest::Client,
    authorize: &str,
) -> HashMap<String, String> {
    let res = browser.get(authorize).send().await.expect("authorize");
    assert_eq!(res.status(), 303, "signed out: off to the login page");
    let login = location(&res);
    assert!(login.contains("/login?return_to="), "{login}");
    let page = follow(app, browser, &res)
        .await
        .text()
        .await
        .expect("login page");
    let csrf = hidden_field(&page, "csrf_token").expect("csrf");
    let return_to = unescape(&hidden_field(&page, "return_to").expect("return_to"));
    assert!(return_to.starts_with("/oauth/authorize?"), "{return_to}");
    let res = browser
        .post(app.url("/login"))
        .form(&[
            ("email", "ana@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("return_to", &return_to),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 303);
    let consent = follow(app, browser, &res).await;
    let res = if consent.status() == 303 {
        consent // consent given before for these scopes: straight back to the client
    } else {
        assert_eq!(consent.status(), 200, "the consent page");
        assert_eq!(consent.headers()["x-frame-options"], "DENY");
        let page = consent.text().await.expect("consent page");
        assert!(page.contains("Test app"), "the app's name: {page}");
        assert!(page.contains("127.0.0.1:9876"), "the redirect host");
        assert!(page.contains("Read your data"), "scope descriptions");
        decide(app, browser, &page, "allow").await
    };
    assert_eq!(res.status(), 303);
    let back = location(&res);
    assert!(back.starts_with(REDIRECT), "{back}");
    let q = query_of(&back);
    assert_eq!(q["iss"], app.address, "RFC 9207 iss");
    q
}

/// Redeems `code` as the public client `id` with its PKCE verifier.
async fn redeem(app: &TestApp, id: &str, code: &str, verifier: &str) -> reqwest::Response {
    exchange(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", id),
            ("code_verifier", verifier),
        ],
        None,
    )
    .await
}

pub async fn exchange(
    app: &TestApp,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut req = app.client.post(app.url("/oauth/token")).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.expect("token request")
}

async fn claims_of(app: &TestApp, token: &str) -> serde_json::Value {
    let (header, claims) = verify_with_jwks(app, token).await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    claims
}

pub async fn error_of(res: reqwest::Response, status: u16) -> String {
    assert_eq!(res.status().as_u16(), status);
    let body: serde_json::Value = res.json().await.expect("json");
    assert!(
        body["request_id"].is_string() && body["error_description"].is_string(),
        "{body}"
    );
    body["error"].as_str().expect("error").to_owned()
}

#[actix_web::test]
async fn the_whole_browser_flow_gives_a_jwt_and_a_refresh_token() {
    let app = spawn_app().await;
    let user_id = app.create_user("ana@example.com", PASSWORD, false);
    let (id, _) = app.create_client(
        &["authorization_code", "refresh_token"],
        &["read", "write", "offline_access"],
        &[REDIRECT],
        true,
    );
    let browser = client();
    let p = pkce();
    let code = browser_code(&app, &browser, &id, "read offline_access", &p.challenge).await;

    let res = redeem(&app, &id, &code, &p.verifier).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "offline_access read");
    let refresh = body["refresh_token"]
        .as_str()
        .expect("a refresh token for offline_access");
    assert_eq!(refresh.len(), 43);
    let claims = claims_of(&app, body["access_token"].as_str().expect("token")).await;
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["scope"], "offline_access read");

    // Consent is remembered: the same request goes straight back with a code.
    let p2 = pkce();
    let res = browser
        .get(authorize_url(&app, &id, "read", "s2", &p2.challenge, &[]))
        .send()
        .await
        .expect("authorize");
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).starts_with(REDIRECT),
        "no consent page the second time"
    );
    // prompt=consent asks again; so does a scope not granted before.
    let res = browser
        .get(authorize_url(
            &app,
            &id,
            "read",
            "s3",
            &p2.challenge,
            &[("prompt", "consent")],
        ))
        .send()
        .await
        .expect("authorize");
    assert_eq!(res.status(), 200);
    let res = browser
        .get(authorize_url(&app, &id, "write", "s4", &p2.challenge, &[]))
        .send()
        .await
        .expect("authorize");
    assert_eq!(res.status(), 200, "new scopes ask again");
}

#[actix_web::test]
async fn a_confidential_client_exchanges_with_basic_and_pkce() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let (id, secret) = app.create_client(&["authorization_code"], &["read"], &[REDIRECT], false);
    let secret = secret.expect("secret");
    let browser = client();
    let p = pkce();
    let code = browser_code(&app, &browser, &id, "read", &p.challenge).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", p.verifier.as_str()),
    ];
    let res = exchange(&app, &form, Some((&id, "wrong"))).await;
    assert_eq!(error_of(res, 401).await, "invalid_client");
    let res = exchange(&app, &form, Some((&id, &secret))).await;
    assert_eq!(
        res.status(),
        200,
        "a failed client check does not burn the code"
    );
    let body: serde_json::Value = res.json().await.expect("json");
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh grant, no refresh token"
    );
}

#[actix_web::test]
async fn deny_redirects_with_access_denied() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let (id, _) = app.create_client(&["authorization_code"], &["read"], &[REDIRECT], true);
    let browser = client();
    app.sign_in(&browser, "ana@example.com", PASSWORD).await;
    let p = pkce();
    let page = browser
        .get(authorize_url(&app, &id, "read", "st", &p.challenge, &[]))
        .send()
        .await
        .expect("authorize")
        .text()
        .await
        .expect("page");
    let res = decide(&app, &browser, &page, "deny").await;
    assert_eq!(res.status(), 303);
    let q = query_of(&location(&res));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st");
    assert_eq!(q["iss"], app.address);
    assert!(!q.contains_key("code"));
    // The consent form is CSRF-protected.
    let mut form = hidden_inputs(&page);
    form.retain(|(k, _)| k != "csrf_token");
    form.push(("csrf_token".into(), "forged".into()));
    form.push(("decision".into(), "allow".into()));
    let res = browser
        .post(app.url("/oauth/authorize"))
        .form(&form)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 403);
}

#[actix_web::test]
async fn unknown_clients_and_unregistered_redirects_get_a_page_never_a_redirect() {
    let app = spawn_app().await;
    let (id, _) = app.create_client(&["authorization_code"], &["read"], &[REDIRECT], true);
    let p = pkce();
    for url in [
        authorize_url(&app, "cli_nobody", "read", "s", &p.challenge, &[]),
        authorize_url(&app, &id, "read", "s", &p.challenge, &[])
            .replace("9876%2Fcallback", "9876%2Fcallback%2Fevil"),
        authorize_url(&app, &id, "read", "s", &p.challenge, &[])
            .replace("http%3A%2F%2F127.0.0.1", "http%3A%2F%2Fevil.example"),
    ] {
        let res = app.client.get(&url).send().await.expect("sent");
        assert_eq!(res.status(), 400, "{url}");
        assert!(res.headers().get("location").is_none());
        let page = res.text().await.expect("page");
        assert!(page.contains("not valid"), "{page}");
    }
}

#[actix_web::test]
async fn bad_authorization_requests_redirect_with_the_right_error() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let (id, _) = app.create_client(&["authorization_code"], &["read"], &[REDIRECT], true);
    let browser = client();
    app.sign_in(&browser, "ana@example.com", PASSWORD).await;
    let p = pkce();
    let cases: Vec<(String, &str)> = vec![
        (
            authorize_url(&app, &id, "read", "s", &p.challenge, &[])
                .replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_url(&app, &id, "read", "s", &p.challenge, &[])
                .replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            authorize_url(&app, &id, "read", "s", "", &[]),
            "invalid_request",
        ),
        (
            authorize_url(&app, &id, "admin", "s", &p.challenge, &[]),
            "invalid_scope",
        ),
    ];
    for (url, want) in cases {
        let res = browser.get(&url).send().await.expect("sent");
        assert_eq!(res.status(), 303, "{url}");
        let q = query_of(&location(&res));
        assert_eq!(
            q.get("error").map(String::as_str),
            Some(want),
            "{url}: {q:?}"
        );
        assert_eq!(q["iss"], app.address);
        assert!(!q.contains_key("code"));
    }
}

#[actix_web::test]
async fn pkce_and_redirect_uri_are_checked_at_the_exchange() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let (id, _) = app.create_client(
        &["authorization_code"],
        &["read"],
        &[REDIRECT, "http://127.0.0.1:9876/other"],
        true,
    );
    let browser = client();
    let p = pkce();
    let wrong = pkce();
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![("code_verifier", wrong.verifier.clone())],
            "invalid_grant",
        ),
        (vec![], "invalid_grant"),
        (vec![("code_verifier", "short".into())], "invalid_grant"),
    ];
    for (extra, want) in cases {
        let code = browser_code_signed_in(&app, &browser, &id, &p.challenge).await;
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code),
            ("redirect_uri", REDIRECT.into()),
            ("client_id", id.clone()),
        ];
        form.extend(extra);
        let res = app
            .client
            .post(app.url("/oauth/token"))
            .form(&form)
            .send()
            .await
            .expect("sent");
        assert_eq!(error_of(res, 400).await, want);
    }
    let code = browser_code_signed_in(&app, &browser, &id, &p.challenge).await;
    let res = exchange(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9876/other"),
            ("client_id", &id),
            ("code_verifier", &p.verifier),
        ],
        None,
    )
    .await;
    assert_eq!(
        error_of(res, 400).await,
        "invalid_grant",
        "redirect_uri must match the authorization request"
    );
}

/// The code of an authorization by a user who is signed in and has consented before (or consents now).
async fn browser_code_signed_in(
    app: &TestApp,
    browser: &reqwest::Client,
    client_id: &str,
    challenge: &str,
) -> String {
    if app.client.get(app.url("/")).send().await.is_ok() {
        // sign in once per browser
    }
    let res = browser
        .get(authorize_url(app, client_id, "read", "s", challenge, &[]))
        .send()
        .await
        .expect("authorize");
    let res = if res.status() == 303 && location(&res).contains("/login") {
        app.sign_in(browser, "ana@example.com", PASSWORD).await;
        browser
            .get(authorize_url(app, client_id, "read", "s", challenge, &[]))
            .send()
            .await
            .expect("authorize")
    } else {
        res
    };
    let res = if res.status() == 200 {
        let page = res.text().await.expect("consent");
        decide(app, browser, &page, "allow").await
    } else {
        res
    };
    assert_eq!(res.status(), 303);
    query_of(&location(&res))["code"].clone()
}

#[actix_web::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_bought() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let (id, _) = app.create_client(
        &["authorization_code", "refresh_token"],
        &["read", "offline_access"],
        &[REDIRECT],
        true,
    );
    let browser = client();
    let p = pkce();
    let code = browser_code(&app, &browser, &id, "read offline_access", &p.challenge).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", id.as_str()),
        ("code_verifier", p.verifier.as_str()),
    ];
    let first: serde_json::Value = exchange(&app, &form, None)
        .await
        .json()
        .await
        .expect("json");
    let refresh = first["refresh_token"].as_str().expect("refresh").to_owned();
    let jti = claims_of(&app, first["access_token"].as_str().expect("token")).await["jti"]
        .as_str()
        .expect("jti")
        .to_owned();

    assert_eq!(
        error_of(exchange(&app, &form, None).await, 400).await,
        "invalid_grant"
    );
    let res = exchange(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &id),
        ],
        None,
    )
    .await;
    assert_eq!(
        error_of(res, 400).await,
        "invalid_grant",
        "the family is revoked"
    );
    use diesel::prelude::*;
    use tessera::db::schema::revoked_access_tokens as ra;
    let mut conn = app.conn();
    let revoked: i64 = ra::table
        .filter(ra::jti.eq(&jti))
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(revoked, 1, "the access token's jti is recorded as revoked");
}

#[actix_web::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let (id, _) = app.create_client(&["authorization_code"], &["read"], &[REDIRECT], true);
    let browser = client();
    let p = pkce();
    let code = browser_code(&app, &browser, &id, "read", &p.challenge).await;
    {
        use diesel::prelude::*;
        use tessera::db::schema::authorization_codes as ac;
        let mut conn = app.conn();
        diesel::update(ac::table)
            .set(ac::expires_at.eq(tessera::db::now() - 1))
            .execute(&mut conn)
            .expect("expire");
    }
    let res = redeem(&app, &id, &code, &p.verifier).await;
    assert_eq!(error_of(res, 400).await, "invalid_grant");
}

/// A fresh app with the user ana (password [`PASSWORD`]) and a public client for the authorization
/// code flow with refresh (`read write offline_access`, redirect [`REDIRECT`]): the app and the client id.
pub async fn public_web_app() -> (TestApp, String) {
    let app = spawn_app().await;
    app.create_user("ana@example.com", PASSWORD, false);
    let (id, _) = app.create_client(
        &["authorization_code", "refresh_token"],
        &["read", "write", "offline_access"],
        &[REDIRECT],
        true,
    );
    (app, id)
}

pub async fn tokens_for(app: &TestApp, id: &str) -> serde_json::Value {
    let browser = client();
    let p = pkce();
    let code = browser_code(app, &browser, id, "read write offline_access", &p.challenge).await;
    exchange(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", id),
            ("code_verifier", &p.verifier),
        ],
        None,
    )
    .await
    .json()
    .await
    .expect("json")
}

#[actix_web::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let (app, id) = public_web_app().await;
    let first = tokens_for(&app, &id).await;
    let r1 = first["refresh_token"].as_str().expect("r1").to_owned();

    let res = exchange(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r1),
            ("client_id", &id),
            ("scope", "read"),
        ],
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    let second: serde_json::Value = res.json().await.expect("json");
    assert_eq!(second["scope"], "read", "narrowed");
    let r2 = second["refresh_token"].as_str().expect("r2").to_owned();
    assert_ne!(r1, r2, "rotated");
    let claims = claims_of(&app, second["access_token"].as_str().expect("token")).await;
    assert_eq!(claims["scope"], "read");

    let res = exchange(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r2),
            ("client_id", &id),
            ("scope", "read admin"),
        ],
        None,
    )
    .await;
    assert_eq!(error_of(res, 400).await, "invalid_scope", "never widened");

    // r1 again: reuse. The family dies, r2 with it.
    let res = exchange(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r1),
            ("client_id", &id),
        ],
        None,
    )
    .await;
    assert_eq!(error_of(res, 400).await, "invalid_grant");
    let res = exchange(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r2),
            ("client_id", &id),
        ],
        None,
    )
    .await;
    assert_eq!(
        error_of(res, 400).await,
        "invalid_grant",
        "the whole family is revoked"
    );

    // Another client cannot use someone else's refresh token.
    let other = tokens_for(&app, &id).await;
    let (id2, _) = app.create_client(
        &["authorization_code", "refresh_token"],
        &["read"],
        &[REDIRECT],
        true,
    );
    let res = exchange(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", other["refresh_token"].as_str().expect("r")),
            ("client_id", &id2),
        ],
        None,
    )
    .await;
    assert_eq!(error_of(res, 400).await, "invalid_grant");
}

/// How many requests race in each of the races below.
const RACERS: usize = 4;

/// Of the answers to requests sent at once, exactly one is 200 and every other is 400
/// `invalid_grant`; the winner's token response.
async fn exactly_one_winner(answers: Vec<reqwest::Response>, what: &str) -> serde_json::Value {
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for res in answers {
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.expect("a JSON answer");
        if status == 200 {
            winners.push(body);
        } else {
            losers.push((status, body));
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one {what} wins; the losers: {losers:?}"
    );
    for (status, body) in losers {
        assert_eq!(status, 400, "a losing {what}: {body}");
        assert_eq!(body["error"], "invalid_grant", "a losing {what}: {body}");
    }
    winners.remove(0)
}

#[actix_web::test]
async fn concurrent_redemptions_have_exactly_one_winner() {
    let (app, id) = public_web_app().await;
    let browser = client();
    let p = pkce();
    let code = browser_code(
        &app,
        &browser,
        &id,
        "read write offline_access",
        &p.challenge,
    )
    .await;
    let form = vec![
        ("grant_type".to_string(), "authorization_code".to_string()),
        ("code".into(), code),
        ("redirect_uri".into(), REDIRECT.into()),
        ("client_id".into(), id.clone()),
        ("code_verifier".into(), p.verifier.clone()),
    ];
    let send = |form: Vec<(String, String)>| {
        let c = app.client.clone();
        let url = app.url("/oauth/token");
        async move { c.post(url).form(&form).send().await.expect("sent") }
    };
    let race = |form: Vec<(String, String)>| {
        futures_util::future::join_all((0..RACERS).map(|_| send(form.clone())))
    };
    // Exactly one redemption wins; each loser is a replay and revokes what the code bought
    // (RFC 6749 §4.1.2), which was issued whole before any loser could see the code used.
    let winner = exactly_one_winner(race(form).await, "code redemption").await;
    assert_refresh_refused(&app, &id, &winner).await;

    let fresh = tokens_for(&app, &id).await;
    let refresh = fresh["refresh_token"].as_str().expect("refresh").to_owned();
    let rform = vec![
        ("grant_type".to_string(), "refresh_token".to_string()),
        ("refresh_token".into(), refresh),
        ("client_id".into(), id.clone()),
    ];
    let winner = exactly_one_winner(race(rform).await, "refresh").await;
    // Each loser is a reuse: it revokes the family, including what the winner was just given (the
    // rotation holds the family until it commits, so the revocation sees its tokens).
    let access = winner["access_token"].as_str().expect("access token");
    let res = check(&app.address, access).await;
    assert_eq!(res.status(), 401, "the winner's access token is revoked");
    assert_refresh_refused(&app, &id, &winner).await;
}

/// The refresh token of a token response is refused with `invalid_grant` (its family is revoked).
async fn assert_refresh_refused(app: &TestApp, id: &str, tokens: &serde_json::Value) {
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let res = exchange(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", id),
        ],
        None,
    )
    .await;
    assert_eq!(error_of(res, 400).await, "invalid_grant");
}
