//! OpenID Connect (Core 1.0, Discovery 1.0) through HTTP: discovery, the ID token of the code
//! exchange and of refresh, nonce, `prompt`, `max_age`, UserInfo, the `claims` request, pairwise
//! subjects, `form_post`, and RFC 6750 challenges. The Basic OP conformance plan's items, as far as
//! they apply to the code flow, are named on the tests that cover them.

use std::collections::HashMap;

use ring::digest::{SHA256, SHA512, digest};

use crate::authorize::{PASSWORD, REDIRECT, authorize_url, decide, follow, pkce, query_of};
use crate::helpers::{TestApp, client, hidden_field, location, spawn_app, unescape};

const EMAIL: &str = "ana@example.com";

/// A fresh app with the user ana and a public client for the code flow with refresh, allowed the
/// identity scopes; the app, the client id and ana's user id.
async fn oidc_app() -> (TestApp, String, String) {
    let app = spawn_app().await;
    let user = app.create_user(EMAIL, PASSWORD, false);
    let (id, _) = app.create_client(
        &["authorization_code", "refresh_token"],
        &["openid", "profile", "email", "read", "offline_access"],
        &[REDIRECT],
        true,
    );
    (app, id, user)
}

/// Signs in on the login page the response `res` leads to; returns the response of the sign-in
/// (a 303 back to the authorization request).
async fn log_in_at(
    app: &TestApp,
    browser: &reqwest::Client,
    res: reqwest::Response,
) -> reqwest::Response {
    assert_eq!(res.status(), 303, "to the sign-in page");
    let login = location(&res);
    assert!(login.contains("/login?"), "{login}");
    let page = follow(app, browser, &res)
        .await
        .text()
        .await
        .expect("login page");
    let csrf = hidden_field(&page, "csrf_token").expect("csrf");
    let return_to = unescape(&hidden_field(&page, "return_to").expect("return_to"));
    let res = browser
        .post(app.url("/login"))
        .form(&[
            ("email", EMAIL),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("return_to", &return_to),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 303, "signed in");
    res
}

/// Follows `res` (after a sign-in, or the authorization request itself) to the client: through the
/// consent page when it shows (Allow). Returns the redirect's query.
async fn to_client(
    app: &TestApp,
    browser: &reqwest::Client,
    res: reqwest::Response,
) -> HashMap<String, String> {
    let res = if res.status() == 303 && location(&res).starts_with(REDIRECT) {
        res
    } else {
        let next = if res.status() == 303 {
            follow(app, browser, &res).await
        } else {
            res
        };
        if next.status() == 303 {
            next
        } else {
            assert_eq!(next.status(), 200, "the consent page");
            let page = next.text().await.expect("consent page");
            decide(app, browser, &page, "allow").await
        }
    };
    assert_eq!(res.status(), 303);
    let back = location(&res);
    assert!(back.starts_with(REDIRECT), "{back}");
    query_of(&back)
}

/// A whole first authorization (signed out → sign in → consent) with `extra` parameters; the
/// redirect's query and the PKCE verifier.
async fn authorize(
    app: &TestApp,
    browser: &reqwest::Client,
    id: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> (HashMap<String, String>, String) {
    let p = pkce();
    let url = authorize_url(app, id, scope, "st", &p.challenge, extra);
    let res = browser.get(&url).send().await.expect("authorize");
    let res = if res.status() == 303 && location(&res).contains("/login?") {
        log_in_at(app, browser, res).await
    } else {
        res
    };
    (to_client(app, browser, res).await, p.verifier)
}

/// The redirect's query of an authorization request answered at once, with no page (an error, or
/// a code for a consented request).
async fn answered_at_once(
    app: &TestApp,
    browser: &reqwest::Client,
    id: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let p = pkce();
    let url = authorize_url(app, id, scope, "st", &p.challenge, extra);
    let res = browser.get(&url).send().await.expect("authorize");
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(to.starts_with(REDIRECT), "{to}");
    query_of(&to)
}

/// The token response for `code`.
async fn redeem(app: &TestApp, id: &str, code: &str, verifier: &str) -> serde_json::Value {
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", id),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(res.status(), 200);
    res.json().await.expect("json")
}

/// Verifies an ID token as a relying party does: the key named by `kid` in the JWKS, the
/// algorithm of that key, `typ` JWT, our issuer, the client as audience, not expired. Its header
/// and claims.
async fn id_token_claims(
    app: &TestApp,
    client_id: &str,
    token: &str,
) -> (jsonwebtoken::Header, serde_json::Value) {
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("JWKS");
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let kid = header.kid.clone().expect("kid");
    let jwk = jwks.find(&kid).expect("the ID token's key is in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("usable JWK");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[app.address.as_str()]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .expect("valid signature and claims");
    (header, data.claims)
}

fn at_hash(alg: jsonwebtoken::Algorithm, access_token: &str) -> String {
    let d = match alg {
        jsonwebtoken::Algorithm::EdDSA => digest(&SHA512, access_token.as_bytes()),
        _ => digest(&SHA256, access_token.as_bytes()),
    };
    let b = d.as_ref();
    tessera::crypto::base64url(&b[..b.len() / 2])
}

/// Basic OP: discovery. Every field OpenID Connect Discovery 1.0 §3 requires, RS256 among the ID
/// token algorithms, the identity scopes, form_post; the RFC 8414 document at its own path.
#[actix_web::test]
async fn discovery_has_every_required_field() {
    let app = spawn_app().await;
    let res = app.get("/.well-known/openid-configuration").await;
    assert_eq!(res.status(), 200);
    let doc: serde_json::Value = res.json().await.expect("json");
    let base = app.address.as_str();
    assert_eq!(doc["issuer"], base);
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{base}/oauth/authorize")
    );
    assert_eq!(doc["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(doc["userinfo_endpoint"], format!("{base}/oauth/userinfo"));
    assert_eq!(doc["jwks_uri"], format!("{base}/.well-known/jwks.json"));
    let list = |name: &str| -> Vec<String> {
        doc[name]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is a list: {doc}"))
            .iter()
            .map(|v| v.as_str().expect("text").to_owned())
            .collect()
    };
    assert!(list("response_types_supported").contains(&"code".to_owned()));
    assert_eq!(list("subject_types_supported"), ["public", "pairwise"]);
    let algs = list("id_token_signing_alg_values_supported");
    for alg in ["RS256", "ES256", "EdDSA"] {
        assert!(algs.contains(&alg.to_owned()), "{alg} in {algs:?}");
    }
    for scope in ["openid", "profile", "email", "offline_access"] {
        assert!(
            list("scopes_supported").contains(&scope.to_owned()),
            "{scope}"
        );
    }
    for claim in ["sub", "email", "name", "auth_time", "nonce", "at_hash"] {
        assert!(
            list("claims_supported").contains(&claim.to_owned()),
            "{claim}"
        );
    }
    assert_eq!(list("response_modes_supported"), ["query", "form_post"]);
    assert_eq!(doc["end_session_endpoint"], format!("{base}/oauth/logout"));
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);
    assert_eq!(doc["claims_parameter_supported"], true);
    assert_eq!(doc["request_uri_parameter_supported"], false);
    assert!(list("prompt_values_supported").contains(&"none".to_owned()));

    let plain: serde_json::Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(plain["issuer"], base);
    assert!(
        plain.get("userinfo_endpoint").is_none(),
        "RFC 8414's own document: {plain}"
    );
}

/// The keyring keeps a current key of each algorithm, all published.
#[actix_web::test]
async fn the_jwks_has_a_key_of_each_algorithm() {
    let app = spawn_app().await;
    let jwks: serde_json::Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("json");
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["alg"].as_str().expect("alg"))
        .collect();
    for alg in ["EdDSA", "ES256", "RS256"] {
        assert_eq!(
            algs.iter().filter(|a| **a == alg).count(),
            1,
            "{alg} in {algs:?}"
        );
    }
}

/// Basic OP: an ID token from the code exchange, signed with RS256 by a key of the JWKS (`kid`),
/// with `iss`, `sub`, `aud`, `azp`, `exp`, `iat`, `auth_time`, `nonce` echoed, `at_hash` of the access
/// token, `sid`, `amr`, `acr`; the profile and email claims the scopes release.
#[actix_web::test]
async fn the_code_exchange_returns_a_valid_id_token() {
    let (app, id, user) = oidc_app().await;
    let browser = client();
    let (q, verifier) = authorize(
        &app,
        &browser,
        &id,
        "openid email",
        &[("nonce", "n-0S6_WzA2Mj")],
    )
    .await;
    let tokens = redeem(&app, &id, &q["code"], &verifier).await;
    let access = tokens["access_token"].as_str().expect("access token");
    let (header, c) =
        id_token_claims(&app, &id, tokens["id_token"].as_str().expect("id_token")).await;
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::RS256,
        "RS256 unless the client registered another"
    );
    assert_eq!(c["sub"], user.as_str());
    assert_eq!(c["aud"], id.as_str());
    assert_eq!(c["azp"], id.as_str());
    assert_eq!(c["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(c["at_hash"], at_hash(header.alg, access));
    let now = tessera::db::now();
    let auth_time = c["auth_time"].as_i64().expect("auth_time");
    assert!(auth_time <= now && auth_time > now - 60, "{c}");
    assert!(c["iat"].as_i64().expect("iat") <= now);
    assert!(
        c["sid"].as_str().is_some_and(|s| s.starts_with("sid_")),
        "{c}"
    );
    assert_eq!(c["amr"], serde_json::json!(["pwd"]));
    assert_eq!(c["acr"], "1");
    assert_eq!(c["email"], EMAIL, "the email scope releases the address");
    assert_eq!(c["email_verified"], false);
    assert!(c.get("name").is_none(), "no profile scope: {c}");
}

/// A client that registered ES256 or EdDSA gets its ID tokens so, `at_hash` with that algorithm's
/// hash (SHA-512 for Ed25519).
#[actix_web::test]
async fn the_id_token_takes_the_algorithm_the_client_registered() {
    for (alg, expected) in [
        ("ES256", jsonwebtoken::Algorithm::ES256),
        ("Ed25519", jsonwebtoken::Algorithm::EdDSA),
    ] {
        let app = spawn_app().await;
        app.create_user(EMAIL, PASSWORD, false);
        let (id, _) = app
            .register_client(tessera::oauth::ClientInput {
                name: "Test app".into(),
                redirect_uris: vec![REDIRECT.into()],
                grant_types: vec!["authorization_code".into()],
                scopes: vec!["openid".into()],
                public: true,
                id_token_signed_response_alg: Some(alg.into()),
                ..Default::default()
            })
            .expect("registered");
        let (q, verifier) = authorize(&app, &client(), &id, "openid", &[]).await;
        let tokens = redeem(&app, &id, &q["code"], &verifier).await;
        let access = tokens["access_token"].as_str().expect("access token");
        let (header, c) =
            id_token_claims(&app, &id, tokens["id_token"].as_str().expect("id_token")).await;
        assert_eq!(header.alg, expected, "{alg}");
        assert_eq!(c["at_hash"], at_hash(expected, access), "{alg}");
    }
    let app = spawn_app().await;
    let refused = app.register_client(tessera::oauth::ClientInput {
        name: "Test app".into(),
        redirect_uris: vec![REDIRECT.into()],
        public: true,
        id_token_signed_response_alg: Some("HS256".into()),
        ..Default::default()
    });
    assert_eq!(refused.err(), Some("invalid_request"));
}

/// Without `openid` there is no ID token.
#[actix_web::test]
async fn no_id_token_without_openid() {
    let (app, id, _) = oidc_app().await;
    let (q, verifier) = authorize(&app, &client(), &id, "read", &[]).await;
    let tokens = redeem(&app, &id, &q["code"], &verifier).await;
    assert!(tokens.get("id_token").is_none(), "{tokens}");
}

/// Basic OP: a nonce is accepted once per client; a second request with it is refused at the
/// client's redirect URI (`invalid_request`), and no code is issued.
#[actix_web::test]
async fn a_reused_nonce_is_refused() {
    let (app, id, _) = oidc_app().await;
    let browser = client();
    let (first, _) = authorize(&app, &browser, &id, "openid", &[("nonce", "once")]).await;
    assert!(first.contains_key("code"));
    let (second, _) = authorize(&app, &browser, &id, "openid", &[("nonce", "once")]).await;
    assert_eq!(second["error"], "invalid_request", "{second:?}");
    assert!(second["error_description"].contains("nonce"), "{second:?}");
    assert_eq!(second["state"], "st");
    assert!(!second.contains_key("code"));
    let (third, _) = authorize(&app, &browser, &id, "openid", &[("nonce", "another")]).await;
    assert!(third.contains_key("code"), "{third:?}");
}

/// Basic OP: `prompt=none` without a session → `login_required` by redirect, never a page; signed in
/// but without consent → `consent_required`; with consent → a code at once.
#[actix_web::test]
async fn prompt_none_never_shows_a_page() {
    let (app, id, _) = oidc_app().await;
    let browser = client();
    let p = pkce();
    let url = authorize_url(
        &app,
        &id,
        "openid",
        "st",
        &p.challenge,
        &[("prompt", "none")],
    );
    let res = browser.get(&url).send().await.expect("authorize");
    assert_eq!(res.status(), 303);
    let q = query_of(&location(&res));
    assert_eq!(q["error"], "login_required", "{q:?}");
    assert_eq!(q["state"], "st");
    assert_eq!(q["iss"], app.address);

    // Signed in (for another scope), no consent to `openid email` yet.
    authorize(&app, &browser, &id, "read", &[]).await;
    let url = authorize_url(
        &app,
        &id,
        "openid email",
        "st",
        &p.challenge,
        &[("prompt", "none")],
    );
    let res = browser.get(&url).send().await.expect("authorize");
    assert_eq!(res.status(), 303);
    assert_eq!(query_of(&location(&res))["error"], "consent_required");

    authorize(&app, &browser, &id, "openid email", &[]).await;
    let res = browser.get(&url).send().await.expect("authorize");
    assert_eq!(res.status(), 303);
    assert!(
        query_of(&location(&res)).contains_key("code"),
        "consented: a code, no page"
    );

    // `none` with another value is malformed.
    let q = answered_at_once(&app, &browser, &id, "openid", &[("prompt", "none login")]).await;
    assert_eq!(q["error"], "invalid_request", "{q:?}");
}

/// Basic OP: `prompt=login` sends a signed-in user to the sign-in page again, and the ID token's
/// `auth_time` is the new sign-in.
#[actix_web::test]
async fn prompt_login_forces_the_sign_in_page() {
    let (app, id, _) = oidc_app().await;
    let browser = client();
    let (q, verifier) = authorize(&app, &browser, &id, "openid", &[]).await;
    let first = redeem(&app, &id, &q["code"], &verifier).await;
    let (_, c1) = id_token_claims(&app, &id, first["id_token"].as_str().expect("id_token")).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let p = pkce();
    let url = authorize_url(
        &app,
        &id,
        "openid",
        "st",
        &p.challenge,
        &[("prompt", "login")],
    );
    let res = browser.get(&url).send().await.expect("authorize");
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).contains("/login?"),
        "signed in, yet to the sign-in page"
    );
    let res = log_in_at(&app, &browser, res).await;
    let q = to_client(&app, &browser, res).await;
    let second = redeem(&app, &id, &q["code"], &p.verifier).await;
    let (_, c2) = id_token_claims(&app, &id, second["id_token"].as_str().expect("id_token")).await;
    assert!(
        c2["auth_time"].as_i64() > c1["auth_time"].as_i64(),
        "a new sign-in: {c1} then {c2}"
    );
    assert_ne!(c1["sid"], c2["sid"], "a new session");
}

/// Basic OP: `max_age=1` two seconds after the sign-in forces it again; `auth_time` is always in the
/// ID token when `max_age` was sent. A fresh session satisfies it without a new sign-in.
#[actix_web::test]
async fn max_age_forces_a_new_sign_in_when_the_session_is_older() {
    let (app, id, _) = oidc_app().await;
    let browser = client();
    let (q, verifier) = authorize(&app, &browser, &id, "openid", &[("max_age", "60")]).await;
    let tokens = redeem(&app, &id, &q["code"], &verifier).await;
    let (_, c) = id_token_claims(&app, &id, tokens["id_token"].as_str().expect("id_token")).await;
    assert!(c["auth_time"].is_i64(), "{c}");

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let p = pkce();
    let url = authorize_url(&app, &id, "openid", "st", &p.challenge, &[("max_age", "1")]);
    let res = browser.get(&url).send().await.expect("authorize");
    assert!(
        location(&res).contains("/login?"),
        "an old sign-in: to the sign-in page"
    );
    let res = log_in_at(&app, &browser, res).await;
    let q = to_client(&app, &browser, res).await;
    assert!(q.contains_key("code"), "{q:?}");

    // max_age=0 asks for a sign-in every time, and one sign-in satisfies it.
    let url = authorize_url(&app, &id, "openid", "st", &p.challenge, &[("max_age", "0")]);
    let res = browser.get(&url).send().await.expect("authorize");
    let res = log_in_at(&app, &browser, res).await;
    assert!(to_client(&app, &browser, res).await.contains_key("code"));

    let q = answered_at_once(&app, &browser, &id, "openid", &[("max_age", "soon")]).await;
    assert_eq!(q["error"], "invalid_request", "{q:?}");
}

/// A UserInfo request with the access token `token`, by header or by form body.
async fn userinfo(app: &TestApp, token: &str, by_body: bool) -> reqwest::Response {
    let req = if by_body {
        app.client
            .post(app.url("/oauth/userinfo"))
            .form(&[("access_token", token)])
    } else {
        app.client
            .get(app.url("/oauth/userinfo"))
            .bearer_auth(token)
    };
    req.send().await.expect("userinfo")
}

/// Basic OP: UserInfo by header and by form body, with the claims the scopes allow and the same
/// `sub` as the ID token; RFC 6750 challenges for a missing, an invalid and an under-scoped token.
#[actix_web::test]
async fn userinfo_answers_by_header_and_by_body() {
    let (app, id, user) = oidc_app().await;
    let (q, verifier) = authorize(&app, &client(), &id, "openid profile email", &[]).await;
    let tokens = redeem(&app, &id, &q["code"], &verifier).await;
    let access = tokens["access_token"].as_str().expect("access token");
    for by_body in [false, true] {
        let res = userinfo(&app, access, by_body).await;
        assert_eq!(res.status(), 200, "by body: {by_body}");
        assert_eq!(res.headers()["cache-control"], "no-store");
        let info: serde_json::Value = res.json().await.expect("json");
        assert_eq!(info["sub"], user.as_str());
        assert_eq!(info["email"], EMAIL);
        assert_eq!(info["email_verified"], false);
        assert!(info["updated_at"].is_i64(), "profile scope: {info}");
    }

    let res = app
        .client
        .get(app.url("/oauth/userinfo"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="tessera""#
    );

    let res = userinfo(&app, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", false).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="tessera", error="invalid_token""#
    );
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["error"], "invalid_token");
    assert!(body["request_id"].is_string());

    // Both ways at once is malformed (RFC 6750 §2).
    let res = app
        .client
        .post(app.url("/oauth/userinfo"))
        .bearer_auth(access)
        .form(&[("access_token", access)])
        .send()
        .await
        .expect("userinfo");
    assert_eq!(res.status(), 400);

    // A token without `openid`.
    let (q, verifier) = authorize(&app, &client(), &id, "read", &[]).await;
    let tokens = redeem(&app, &id, &q["code"], &verifier).await;
    let res = userinfo(&app, tokens["access_token"].as_str().expect("token"), false).await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="tessera", error="insufficient_scope""#
    );
    assert_eq!(
        res.json::<serde_json::Value>().await.expect("json")["error"],
        "insufficient_scope"
    );
}

/// Basic OP: the `claims` request: its `userinfo` member releases the email at UserInfo and its
/// `id_token` member the name in the ID token, though the scope is only `openid`; a malformed one
/// is refused.
#[actix_web::test]
async fn the_claims_request_is_honoured() {
    let (app, id, _) = oidc_app().await;
    app.set_profile(EMAIL, "Ana Pérez");
    let claims = r#"{"userinfo":{"email":{"essential":true}},"id_token":{"name":null,"auth_time":{"essential":true}}}"#;
    let (q, verifier) = authorize(&app, &client(), &id, "openid", &[("claims", claims)]).await;
    let tokens = redeem(&app, &id, &q["code"], &verifier).await;
    let (_, c) = id_token_claims(&app, &id, tokens["id_token"].as_str().expect("id_token")).await;
    assert_eq!(c["name"], "Ana Pérez", "{c}");
    assert!(
        c.get("email").is_none(),
        "email was asked for UserInfo only: {c}"
    );
    let info: serde_json::Value =
        userinfo(&app, tokens["access_token"].as_str().expect("at"), false)
            .await
            .json()
            .await
            .expect("json");
    assert_eq!(info["email"], EMAIL, "{info}");
    assert!(
        info.get("name").is_none(),
        "name was asked for the ID token only: {info}"
    );

    let (q, _) = authorize(&app, &client(), &id, "openid", &[("claims", "[1]")]).await;
    assert_eq!(q["error"], "invalid_request");
}

/// Basic OP: refresh returns a new ID token with the same `sub`, `aud` and `auth_time`, a new
/// `iat`, and no `nonce` (Core §12.2).
#[actix_web::test]
async fn refresh_returns_a_new_id_token_for_the_same_sign_in() {
    let (app, id, user) = oidc_app().await;
    let (q, verifier) = authorize(
        &app,
        &client(),
        &id,
        "openid offline_access",
        &[("nonce", "n1")],
    )
    .await;
    let first = redeem(&app, &id, &q["code"], &verifier).await;
    let (_, c1) = id_token_claims(&app, &id, first["id_token"].as_str().expect("id_token")).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                first["refresh_token"].as_str().expect("refresh token"),
            ),
            ("client_id", &id),
        ])
        .send()
        .await
        .expect("refresh");
    assert_eq!(res.status(), 200);
    let second: serde_json::Value = res.json().await.expect("json");
    let access = second["access_token"].as_str().expect("access token");
    let (header, c2) =
        id_token_claims(&app, &id, second["id_token"].as_str().expect("id_token")).await;
    assert_eq!(c2["sub"], user.as_str());
    assert_eq!(c2["sub"], c1["sub"]);
    assert_eq!(c2["aud"], c1["aud"]);
    assert_eq!(c2["auth_time"], c1["auth_time"]);
    assert_eq!(c2["sid"], c1["sid"]);
    assert!(c2["iat"].as_i64() > c1["iat"].as_i64());
    assert!(c2.get("nonce").is_none(), "{c2}");
    assert_eq!(c2["at_hash"], at_hash(header.alg, access));

    // Narrowed to no `openid`: no ID token.
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                second["refresh_token"].as_str().expect("refresh token"),
            ),
            ("client_id", &id),
            ("scope", "offline_access"),
        ])
        .send()
        .await
        .expect("refresh");
    let third: serde_json::Value = res.json().await.expect("json");
    assert!(third.get("id_token").is_none(), "{third}");
}

/// Basic OP: `sub` is stable per client; a pairwise client gets another `sub`, the same for every
/// client of its sector and different across sectors, at UserInfo too.
#[actix_web::test]
async fn pairwise_subjects_differ_across_sectors_and_match_within_one() {
    let app = spawn_app().await;
    let user = app.create_user(EMAIL, PASSWORD, false);
    let register = |uri: &str, sector: Option<&str>| {
        app.register_client(tessera::oauth::ClientInput {
            name: "Test app".into(),
            redirect_uris: vec![uri.into()],
            grant_types: vec!["authorization_code".into()],
            scopes: vec!["openid".into()],
            public: true,
            subject_type: Some("pairwise".into()),
            sector_identifier: sector.map(str::to_owned),
            ..Default::default()
        })
        .expect("registered")
        .0
    };
    // Two clients of the sector `apps.example` (one by its redirect URI's host, one named) and
    // one of another sector; all redirect to REDIRECT's host through the named sectors.
    let a = register(REDIRECT, Some("apps.example"));
    let b = register(REDIRECT, Some("apps.example"));
    let c = register(REDIRECT, None);
    let (public, _) = app.create_client(&["authorization_code"], &["openid"], &[REDIRECT], true);
    let browser = client();
    let mut subs = Vec::new();
    for id in [&a, &b, &c, &public, &a] {
        let (q, verifier) = authorize(&app, &browser, id, "openid", &[]).await;
        let tokens = redeem(&app, id, &q["code"], &verifier).await;
        let (_, claims) =
            id_token_claims(&app, id, tokens["id_token"].as_str().expect("id_token")).await;
        let info: serde_json::Value =
            userinfo(&app, tokens["access_token"].as_str().expect("at"), false)
                .await
                .json()
                .await
                .expect("json");
        assert_eq!(
            info["sub"], claims["sub"],
            "UserInfo's sub is the ID token's"
        );
        subs.push(claims["sub"].as_str().expect("sub").to_owned());
    }
    assert_eq!(subs[0], subs[1], "one sector, one subject");
    assert_eq!(subs[0], subs[4], "stable");
    assert_ne!(subs[0], subs[2], "another sector (127.0.0.1)");
    assert_eq!(subs[3], user, "a public client sees the user id");
    assert!(
        subs[..3].iter().all(|s| s != &user),
        "pairwise hides the user id"
    );

    let refused = app.register_client(tessera::oauth::ClientInput {
        name: "Test app".into(),
        redirect_uris: vec![REDIRECT.into(), "https://other.example/cb".into()],
        public: true,
        subject_type: Some("pairwise".into()),
        ..Default::default()
    });
    assert_eq!(
        refused.err(),
        Some("invalid_request"),
        "two hosts need a sector"
    );
}

/// `response_mode=form_post`: the answer is a page whose form POSTs `code`, `state` and `iss` to the
/// redirect URI, with no inline script.
#[actix_web::test]
async fn form_post_answers_with_a_page_that_posts_back() {
    let (app, id, _) = oidc_app().await;
    let browser = client();
    authorize(&app, &browser, &id, "openid", &[]).await;
    let p = pkce();
    let url = authorize_url(
        &app,
        &id,
        "openid",
        "st",
        &p.challenge,
        &[("response_mode", "form_post")],
    );
    let res = browser.get(&url).send().await.expect("authorize");
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let page = res.text().await.expect("page");
    assert!(page.contains(&format!("action=\"{REDIRECT}\"")), "{page}");
    assert!(hidden_field(&page, "code").is_some(), "{page}");
    assert_eq!(hidden_field(&page, "state").as_deref(), Some("st"));
    assert_eq!(
        unescape(&hidden_field(&page, "iss").expect("iss")),
        app.address
    );
    assert!(!page.contains("<script>"), "no inline script");

    let q = answered_at_once(
        &app,
        &browser,
        &id,
        "openid",
        &[("response_mode", "fragment")],
    )
    .await;
    assert_eq!(q["error"], "invalid_request", "{q:?}");
}

/// `login_hint` prefills the sign-in page's email; `ui_locales=es` makes the pages Spanish.
#[actix_web::test]
async fn login_hint_and_ui_locales_reach_the_pages() {
    let (app, id, _) = oidc_app().await;
    let browser = client();
    let p = pkce();
    let url = authorize_url(
        &app,
        &id,
        "openid",
        "st",
        &p.challenge,
        &[("login_hint", EMAIL), ("ui_locales", "fr es-MX")],
    );
    let res = browser.get(&url).send().await.expect("authorize");
    let page = follow(&app, &browser, &res)
        .await
        .text()
        .await
        .expect("login page");
    assert!(page.contains(&format!("value=\"{EMAIL}\"")), "{page}");
    assert!(page.contains("lang=\"es-ES\""), "{page}");
    let res = log_in_at(
        &app,
        &browser,
        browser.get(&url).send().await.expect("authorize"),
    )
    .await;
    let consent = follow(&app, &browser, &res)
        .await
        .text()
        .await
        .expect("consent");
    assert!(consent.contains("lang=\"es-ES\""), "{consent}");
    assert!(consent.contains("Permitir"), "{consent}");
    assert!(
        consent.contains("openid"),
        "the identity scope on the consent page"
    );
}

/// RFC 6750 challenges on forward-auth: a revoked token gets `error="invalid_token"`, a missing
/// scope `error="insufficient_scope"` with 403.
#[actix_web::test]
async fn forward_auth_challenges_follow_rfc_6750() {
    let app = spawn_app().await;
    let (id, secret) = app.create_client(&["client_credentials"], &["read", "write"], &[], false);
    let secret = secret.expect("secret");
    let token = crate::helpers::service_token(&app, &id, &secret).await;
    let res = app
        .client
        .get(app.url("/v1/auth/check?scopes=admin"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("check");
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="tessera", error="insufficient_scope""#
    );
    assert_eq!(app.revoke(&id, &secret, &token).await, 200);
    let res = app
        .client
        .get(app.url("/v1/auth/check"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("check");
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="tessera", error="invalid_token""#
    );
    let res = app
        .client
        .get(app.url("/v1/auth/check"))
        .send()
        .await
        .expect("check");
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="tessera""#
    );
}

/// The userinfo counter counts requests by outcome.
#[actix_web::test]
async fn userinfo_is_counted_in_the_metrics() {
    let (app, _, _) = oidc_app().await;
    userinfo(&app, "not-a-token", false).await;
    let text = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        text.contains(r#"tessera_userinfo_requests_total{outcome="invalid_token"} 1"#),
        "{text}"
    );
}

/// The account page: a signed-in user edits their profile (CSRF-checked, audited), apps see it at
/// UserInfo; a value that does not pass is shown again with why and nothing is saved; signed out,
/// the page asks for a sign-in.
#[actix_web::test]
async fn the_account_page_edits_the_profile_claims() {
    let app = spawn_app().await;
    let res = client()
        .get(app.url("/account"))
        .send()
        .await
        .expect("account");
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/login?return_to=%2Faccount");

    let ana = crate::helpers::sign_in_as(&app, "ana@example.com", false).await;
    let page = ana.ok_page("/account").await;
    assert!(page.contains("ana@example.com"), "{page}");
    let res = ana
        .post(
            "/account/profile",
            &[
                ("name", "Ana Pérez"),
                ("given_name", "Ana"),
                ("family_name", "Pérez"),
                ("preferred_username", "ana"),
                ("locale", "es-ES"),
                ("picture", "https://img.example/ana.png"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/account?saved=1");
    let page = ana.ok_page("/account?saved=1").await;
    assert!(page.contains("id=\"profile-saved\""), "{page}");
    assert!(page.contains("value=\"Ana Pérez\""), "{page}");

    let res = ana
        .post(
            "/account/profile",
            &[("name", "Ana"), ("picture", "http://img.example/a.png")],
        )
        .await;
    assert_eq!(res.status(), 400);
    let page = res.text().await.expect("page");
    assert!(page.contains("id=\"profile-error\""), "{page}");
    assert!(page.contains("picture"), "says which field: {page}");
    assert!(
        page.contains("value=\"Ana\""),
        "what was typed stays in the form: {page}"
    );

    let res = ana
        .post_raw(
            "/account/profile",
            &[("name", "Mallory"), ("csrf_token", "forged")],
        )
        .await;
    assert_eq!(res.status(), 403, "a forged CSRF token");

    // What the apps see.
    let (id, _) = app.create_client(
        &["authorization_code"],
        &["openid", "profile"],
        &[REDIRECT],
        true,
    );
    let p = pkce();
    let url = authorize_url(&app, &id, "openid profile", "st", &p.challenge, &[]);
    let res = ana.client().get(&url).send().await.expect("authorize");
    let q = to_client(&app, ana.client(), res).await;
    let tokens = redeem(&app, &id, &q["code"], &p.verifier).await;
    let info: serde_json::Value =
        userinfo(&app, tokens["access_token"].as_str().expect("at"), false)
            .await
            .json()
            .await
            .expect("json");
    assert_eq!(info["name"], "Ana Pérez", "{info}");
    assert_eq!(info["given_name"], "Ana");
    assert_eq!(info["family_name"], "Pérez");
    assert_eq!(info["preferred_username"], "ana");
    assert_eq!(info["locale"], "es-ES");
    assert_eq!(info["picture"], "https://img.example/ana.png");
}

/// A receiver of back-channel logout POSTs on loopback port 0, answering `status`: its URL and
/// the `logout_token`s it got.
async fn logout_receiver(status: u16) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let kept = got.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let port = listener.local_addr().expect("addr").port();
    let server = HttpServer::new(move || {
        let kept = kept.clone();
        App::new().route(
            "/backchannel",
            web::post().to(move |form: web::Form<HashMap<String, String>>| {
                let kept = kept.clone();
                async move {
                    if let Some(t) = form.get("logout_token") {
                        kept.lock().expect("lock").push(t.clone());
                    }
                    HttpResponse::build(
                        actix_web::http::StatusCode::from_u16(status).expect("status"),
                    )
                    .finish()
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    actix_web::rt::spawn(server);
    (format!("http://127.0.0.1:{port}/backchannel"), got)
}

const BYE: &str = "http://127.0.0.1:9876/bye";

/// A client registered for RP-initiated logout (returning to [`BYE`]) and, when `backchannel` is
/// given, back-channel logout; signed in through the code flow. The app, client id, ID token and
/// the signed-in browser.
async fn signed_in_with_logout(
    backchannel: Option<String>,
) -> (TestApp, String, String, reqwest::Client) {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD, false);
    let (id, _) = app
        .register_client(tessera::oauth::ClientInput {
            name: "Test app".into(),
            redirect_uris: vec![REDIRECT.into()],
            grant_types: vec!["authorization_code".into()],
            scopes: vec!["openid".into()],
            public: true,
            post_logout_redirect_uris: vec![BYE.into()],
            backchannel_logout_uri: backchannel,
            ..Default::default()
        })
        .expect("registered");
    let browser = client();
    let (q, verifier) = authorize(&app, &browser, &id, "openid", &[]).await;
    let tokens = redeem(&app, &id, &q["code"], &verifier).await;
    let id_token = tokens["id_token"].as_str().expect("id_token").to_owned();
    (app, id, id_token, browser)
}

/// Whether `browser` is still signed in (the account page answers it, not a redirect).
async fn signed_in(app: &TestApp, browser: &reqwest::Client) -> bool {
    browser
        .get(app.url("/account"))
        .send()
        .await
        .expect("account")
        .status()
        == 200
}

/// Basic OP (RP-initiated logout): with the ID token as hint and a registered
/// `post_logout_redirect_uri`, the session ends and the browser returns there with `state`; an
/// unregistered one gets the error page and changes nothing.
#[actix_web::test]
async fn rp_initiated_logout_returns_only_to_a_registered_uri() {
    let (app, id, id_token, browser) = signed_in_with_logout(None).await;
    let mut url = url::Url::parse(&app.url("/oauth/logout")).expect("url");
    url.query_pairs_mut()
        .append_pair("id_token_hint", &id_token)
        .append_pair(
            "post_logout_redirect_uri",
            "http://127.0.0.1:9876/elsewhere",
        )
        .append_pair("state", "s1");
    let res = browser.get(url.as_str()).send().await.expect("logout");
    assert_eq!(
        res.status(),
        400,
        "an unregistered URI: the page, no redirect"
    );
    assert!(res.headers().get("location").is_none());
    assert!(signed_in(&app, &browser).await, "nothing changed");

    let mut url = url::Url::parse(&app.url("/oauth/logout")).expect("url");
    url.query_pairs_mut()
        .append_pair("id_token_hint", &id_token)
        .append_pair("client_id", &id)
        .append_pair("post_logout_redirect_uri", BYE)
        .append_pair("state", "s1");
    let res = browser.get(url.as_str()).send().await.expect("logout");
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{BYE}?state=s1"));
    assert!(!signed_in(&app, &browser).await, "signed out");

    // A client_id that is not the hint's audience is refused.
    let (other, _) = app.create_client(&["authorization_code"], &["openid"], &[REDIRECT], true);
    let mut url = url::Url::parse(&app.url("/oauth/logout")).expect("url");
    url.query_pairs_mut()
        .append_pair("id_token_hint", &id_token)
        .append_pair("client_id", &other);
    let res = browser.get(url.as_str()).send().await.expect("logout");
    assert_eq!(res.status(), 400);
}

/// Without an `id_token_hint` the user confirms on a page (CSRF-checked) before being signed out.
#[actix_web::test]
async fn rp_initiated_logout_without_a_hint_asks_first() {
    let (app, id, _, browser) = signed_in_with_logout(None).await;
    let mut url = url::Url::parse(&app.url("/oauth/logout")).expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", &id)
        .append_pair("post_logout_redirect_uri", BYE)
        .append_pair("state", "s2");
    let res = browser.get(url.as_str()).send().await.expect("logout");
    assert_eq!(res.status(), 200, "a confirmation page");
    let page = res.text().await.expect("page");
    assert!(page.contains("Test app"), "{page}");
    assert!(signed_in(&app, &browser).await, "not yet");

    let mut form = crate::helpers::hidden_inputs(&page);
    let res = browser
        .post(app.url("/oauth/logout"))
        .form(&form)
        .send()
        .await
        .expect("confirm");
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{BYE}?state=s2"));
    assert!(!signed_in(&app, &browser).await);

    // A forged token on the confirmation is refused.
    form.retain(|(k, _)| k != "csrf_token");
    form.push(("csrf_token".into(), "forged".into()));
    let res = browser
        .post(app.url("/oauth/logout"))
        .form(&form)
        .send()
        .await
        .expect("confirm");
    assert_eq!(res.status(), 403);
}

/// The back-channel logout events of the app's audit log: (outcome, attempts).
fn backchannel_outcomes(app: &TestApp) -> Vec<(String, i64)> {
    use diesel::prelude::*;
    use tessera::db::schema::audit_events as ae;
    let details: Vec<String> = ae::table
        .filter(ae::action.eq("logout.backchannel"))
        .select(ae::details)
        .load(&mut app.conn())
        .expect("audit");
    details
        .iter()
        .map(|d| {
            let v: serde_json::Value = serde_json::from_str(d).expect("json");
            (
                v["outcome"].as_str().expect("outcome").to_owned(),
                v["attempts"].as_i64().expect("attempts"),
            )
        })
        .collect()
}

/// Basic OP (back-channel logout): signing out POSTs a logout token to the client that signed in
/// through the session; it verifies with the JWKS (`typ: logout+jwt`), names the ID token's `sub`
/// and `sid`, carries the logout event and a `jti`, and no `nonce`; the delivery is audited.
#[actix_web::test]
async fn back_channel_logout_reaches_the_client() {
    let (uri, got) = logout_receiver(200).await;
    let (app, id, id_token, browser) = signed_in_with_logout(Some(uri)).await;
    let (_, id_claims) = id_token_claims(&app, &id, &id_token).await;
    // Tessera's own sign-out button ends the session too.
    let page = browser
        .get(app.url("/account"))
        .send()
        .await
        .expect("account")
        .text()
        .await
        .expect("page");
    let csrf = hidden_field(&page, "csrf_token").expect("csrf");
    let res = browser
        .post(app.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(res.status(), 303);
    let token = crate::helpers::eventually(
        std::time::Duration::from_secs(10),
        "the logout token arrives",
        || {
            let got = got.clone();
            async move { got.lock().expect("lock").first().cloned() }
        },
    )
    .await;
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("JWKS");
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("published key");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[app.address.as_str()]);
    validation.set_audience(&[id.as_str()]);
    let c = jsonwebtoken::decode::<serde_json::Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key"),
        &validation,
    )
    .expect("valid logout token")
    .claims;
    assert_eq!(c["sub"], id_claims["sub"]);
    assert_eq!(c["sid"], id_claims["sid"]);
    assert!(c["jti"].is_string() && c["iat"].is_i64());
    assert_eq!(
        c["events"],
        serde_json::json!({ "http://schemas.openid.net/event/backchannel-logout": {} })
    );
    assert!(c.get("nonce").is_none(), "{c}");
    crate::helpers::eventually(
        std::time::Duration::from_secs(10),
        "the delivery is audited",
        || {
            let app = &app;
            async move { backchannel_outcomes(app) == [("delivered".to_owned(), 1)] }
        },
    )
    .await;
}

/// A back-channel that keeps failing is tried three times, then the failure is audited.
#[actix_web::test]
async fn a_failing_back_channel_is_retried_then_audited() {
    let (uri, got) = logout_receiver(500).await;
    let (app, _, id_token, browser) = signed_in_with_logout(Some(uri)).await;
    let mut url = url::Url::parse(&app.url("/oauth/logout")).expect("url");
    url.query_pairs_mut()
        .append_pair("id_token_hint", &id_token);
    let res = browser.get(url.as_str()).send().await.expect("logout");
    assert_eq!(res.status(), 200, "no return address: the signed-out page");
    assert!(
        res.text()
            .await
            .expect("page")
            .contains("id=\"signed-out\"")
    );
    crate::helpers::eventually(
        std::time::Duration::from_secs(15),
        "the failure is audited",
        || {
            let app = &app;
            async move { backchannel_outcomes(app) == [("failed".to_owned(), 3)] }
        },
    )
    .await;
    assert_eq!(got.lock().expect("lock").len(), 3, "three attempts");
}

/// An ID token that cannot be signed (here: no RS256 key signs, the only one retired by hand and
/// its successor still in its lead time) fails the exchange with a 500 and is audited as
/// `id_token.failed`.
#[actix_web::test]
async fn an_id_token_that_cannot_be_signed_is_audited() {
    use diesel::prelude::*;
    use tessera::db::schema::{audit_events as ae, signing_keys as sk};
    let app = crate::helpers::spawn_app_with(|s| {
        s.key_reload_interval = std::time::Duration::from_millis(200);
    })
    .await;
    app.create_user(EMAIL, PASSWORD, false);
    let (id, _) = app.create_client(&["authorization_code"], &["openid"], &[REDIRECT], true);
    let (q, verifier) = authorize(&app, &client(), &id, "openid", &[]).await;
    let now = tessera::db::now();
    diesel::update(sk::table.filter(sk::algorithm.eq("RS256")))
        .set((sk::sign_until.eq(now), sk::retire_at.eq(now)))
        .execute(&mut app.conn())
        .expect("retired");
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", REDIRECT),
            ("client_id", &id),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(res.status(), 500);
    let failures: Vec<String> = ae::table
        .filter(ae::action.eq("id_token.failed"))
        .select(ae::details)
        .load(&mut app.conn())
        .expect("audit");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("RS256"), "{failures:?}");
}

/// `id_token_hint`: the signed-in user's own ID token lets `prompt=none` answer with a code; one of
/// another user is `login_required` with `prompt=none` and the sign-in page without; a token this
/// server did not sign is `invalid_request`.
#[actix_web::test]
async fn id_token_hint_names_the_user_the_client_expects() {
    let (app, id, _) = oidc_app().await;
    let ana = client();
    let (q, verifier) = authorize(&app, &ana, &id, "openid", &[]).await;
    let ana_token = redeem(&app, &id, &q["code"], &verifier).await["id_token"]
        .as_str()
        .expect("id_token")
        .to_owned();
    let q = answered_at_once(
        &app,
        &ana,
        &id,
        "openid",
        &[("prompt", "none"), ("id_token_hint", &ana_token)],
    )
    .await;
    assert!(q.contains_key("code"), "ana's own hint: {q:?}");

    // Bea signs in on another browser; ana's hint there names someone else.
    app.create_user("bea@example.com", PASSWORD, false);
    let bea = client();
    let login = app.login_csrf(&bea).await;
    let res = bea
        .post(app.url("/login"))
        .form(&[
            ("email", "bea@example.com"),
            ("password", PASSWORD),
            ("csrf_token", login.as_str()),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 303);
    let q = answered_at_once(
        &app,
        &bea,
        &id,
        "openid",
        &[("prompt", "none"), ("id_token_hint", &ana_token)],
    )
    .await;
    assert_eq!(q["error"], "login_required", "{q:?}");
    let p = pkce();
    let url = authorize_url(
        &app,
        &id,
        "openid",
        "st",
        &p.challenge,
        &[("id_token_hint", &ana_token)],
    );
    let res = bea.get(&url).send().await.expect("authorize");
    assert_eq!(res.status(), 303);
    assert!(
        location(&res).contains("/login?"),
        "another user's hint: sign in again"
    );

    // One character of the signature changed (in its middle, where every bit counts).
    let at = ana_token.rfind('.').expect("signature") + 10;
    let was = ana_token.as_bytes()[at];
    let forged = format!(
        "{}{}{}",
        &ana_token[..at],
        if was == b'A' { 'B' } else { 'A' },
        &ana_token[at + 1..]
    );
    let q = answered_at_once(&app, &ana, &id, "openid", &[("id_token_hint", &forged)]).await;
    assert_eq!(q["error"], "invalid_request", "{q:?}");
}
