//! Messages in one language (issue 13, trap 8): with `Accept-Language: es` every error message,
//! details included, is Spanish; in English it has no Spanish. The OAuth `error_description` stays
//! ASCII English (RFC 6749 §5.2) from the same catalogue.

use serde_json::{Value, json};
use tessera::audit::{Actor, Origin};

use crate::helpers::{TestApp, assert_error, key, spawn_app};

/// Words that give away English prose (outside quoted values).
const ENGLISH: &[&str] = &[
    "is not",
    "must",
    "the ",
    "not supported",
    "invalid",
    "missing",
    "unknown",
    "allowed",
    "try again",
    "request",
];

/// Words that give away Spanish prose.
const SPANISH: &[&str] = &[
    "no es",
    "debe",
    "solicitud",
    "válid",
    "está",
    "concesión",
    "alcance",
    "clave",
    "inténtelo",
    " el ",
    " la ",
];

const REDIRECT: &str = "http://127.0.0.1:9876/callback";

/// `text` without the values it quotes ('…'), lower-cased.
fn unquoted(text: &str) -> String {
    text.split('\'')
        .step_by(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn assert_spanish(what: &str, text: &str) {
    assert!(!text.is_empty(), "{what}: no message");
    let plain = unquoted(text);
    for word in ENGLISH {
        assert!(
            !plain.contains(word),
            "{what}: English '{word}' in «{text}»"
        );
    }
    assert!(
        SPANISH.iter().any(|w| plain.contains(w)) || plain.contains('ó') || plain.contains('í'),
        "{what}: «{text}» does not read as Spanish"
    );
}

fn assert_english(what: &str, text: &str) {
    assert!(!text.is_empty(), "{what}: no message");
    let plain = unquoted(text);
    for word in SPANISH {
        assert!(
            !plain.contains(word),
            "{what}: Spanish '{word}' in «{text}»"
        );
    }
    assert!(text.is_ascii(), "{what}: «{text}» is not plain English");
}

/// The request `build` makes, sent in `lang`: the status, the `Content-Language` and the body.
async fn send(
    what: &str,
    lang: &str,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> (u16, String, String) {
    let res = build()
        .header("Accept-Language", lang)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = res.status().as_u16();
    let language = res
        .headers()
        .get("content-language")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, language, res.text().await.expect("body"))
}

/// Sends the request in Spanish and in English; checks the status, the `error` code, that each
/// `message` is wholly in its language, and (on OAuth errors) that `error_description` is English.
/// Returns the Spanish message.
async fn both_languages(
    what: &str,
    status: u16,
    code: &str,
    build: impl Fn() -> reqwest::RequestBuilder,
) -> String {
    let mut spanish = String::new();
    for lang in ["es", "en-US"] {
        let (got, language, body) = send(what, lang, &build).await;
        assert_eq!(got, status, "{what} ({lang}): {body}");
        let body: Value = serde_json::from_str(&body).expect("JSON error body");
        let error = body.get("error").or_else(|| body.get("code"));
        assert_eq!(error.and_then(Value::as_str), Some(code), "{what}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        if lang == "es" {
            assert_eq!(language, "es-ES", "{what}");
            assert_spanish(what, message);
            spanish = message.to_owned();
        } else {
            assert_eq!(language, "en-US", "{what}");
            assert_english(what, message);
        }
        if let Some(description) = body.get("error_description") {
            assert_english(what, description.as_str().unwrap_or_default());
        }
    }
    spanish
}

fn confidential_client(app: &TestApp) -> (String, String) {
    let (id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    (id, secret.expect("a secret"))
}

#[actix_web::test]
async fn oauth_errors_are_wholly_in_the_callers_language() {
    let app = spawn_app().await;
    let (id, secret) = confidential_client(&app);
    let token = |form: Vec<(&'static str, &'static str)>, secret: String| {
        let (app, id) = (&app, id.clone());
        move || {
            app.client
                .post(app.url("/oauth/token"))
                .basic_auth(&id, Some(&secret))
                .form(&form)
        }
    };

    // The example: a grant type Tessera does not offer.
    let message = both_languages(
        "unsupported grant type",
        400,
        "unsupported_grant_type",
        token(vec![("grant_type", "password")], secret.clone()),
    )
    .await;
    assert_eq!(
        message,
        "El tipo de concesión no es compatible: 'password' no se admite aquí."
    );

    let message = both_languages(
        "a scope the client may not have",
        400,
        "invalid_scope",
        token(
            vec![("grant_type", "client_credentials"), ("scope", "teleport")],
            secret.clone(),
        ),
    )
    .await;
    assert!(message.contains("'teleport'"), "{message}");

    both_languages(
        "a wrong client secret",
        401,
        "invalid_client",
        token(vec![("grant_type", "client_credentials")], "wrong".into()),
    )
    .await;

    both_languages(
        "a missing parameter",
        400,
        "invalid_request",
        token(vec![("grant_type", "refresh_token")], secret.clone()),
    )
    .await;

    both_languages(
        "a form body of another type",
        400,
        "invalid_request",
        || {
            app.client
                .post(app.url("/oauth/token"))
                .basic_auth(&id, Some(&secret))
                .json(&json!({ "grant_type": "client_credentials" }))
        },
    )
    .await;
}

#[actix_web::test]
async fn a_refused_redirect_uri_gets_an_error_page_in_the_callers_language() {
    let app = spawn_app().await;
    let (id, _) = app.create_client(&["authorization_code"], &["read"], &[REDIRECT], true);
    let url = app.url(&format!(
        "/oauth/authorize?response_type=code&client_id={id}&scope=read&state=s\
         &redirect_uri=https%3A%2F%2Fevil.example%2Fcb\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    ));
    for lang in ["es", "en"] {
        let (status, _, page) = send("authorize", lang, || app.client.get(&url)).await;
        assert_eq!(status, 400, "{page}");
        let between = |start: &str, end: &str| -> String {
            let from = page.find(start).map(|i| i + start.len()).expect(start);
            let to = page[from..].find(end).expect(end);
            page[from..from + to].to_owned()
        };
        let text = format!(
            "{} {}",
            between("<h1>", "</h1>"),
            between("role=\"alert\">", "</p>")
        );
        if lang == "es" {
            assert!(page.contains("lang=\"es-ES\""), "{page}");
            assert_spanish("authorize error page", &text);
        } else {
            assert_english("authorize error page", &text);
        }
    }
}

#[actix_web::test]
async fn api_errors_and_details_are_wholly_in_the_callers_language() {
    let app = spawn_app().await;
    let (_, admin) = key(&app, "sk", "live", &[]);
    let keys = |body: Value| {
        let (app, admin) = (&app, admin.clone());
        move || {
            app.client
                .post(app.url("/v1/keys"))
                .bearer_auth(&admin)
                .json(&body)
        }
    };
    let message = both_languages(
        "an unregistered scope",
        400,
        "invalid_request",
        keys(json!({ "name": "Typo", "type": "rk", "scopes": ["raed"] })),
    )
    .await;
    assert!(
        message.contains("'raed'") && message.contains("read, write"),
        "{message}"
    );
    both_languages(
        "a value of the wrong type",
        400,
        "invalid_request",
        keys(json!({ "name": 5, "type": "rk", "scopes": ["read"] })),
    )
    .await;
    let message = both_languages(
        "a missing field",
        400,
        "invalid_request",
        keys(json!({ "type": "rk", "scopes": ["read"] })),
    )
    .await;
    assert!(message.contains("'name'"), "{message}");
    both_languages("malformed JSON", 400, "invalid_json", || {
        app.client
            .post(app.url("/v1/keys"))
            .bearer_auth(&admin)
            .header("Content-Type", "application/json")
            .body("{\"name\": ")
    })
    .await;
    both_languages(
        "a lifetime that is not a duration",
        400,
        "invalid_request",
        keys(json!({ "name": "Soon", "type": "rk", "scopes": ["read"], "expires_in": "soon" })),
    )
    .await;

    // Verify answers 200 with the refusal's code and a message in the caller's language.
    both_languages("an unknown key at verify", 200, "invalid_api_key", || {
        app.client
            .post(app.url("/v1/keys/verify"))
            .json(&json!({ "key": "sk_live_nothing" }))
    })
    .await;
    // Forward-auth without a credential.
    both_languages("forward-auth without a key", 401, "missing_api_key", || {
        app.client.get(app.url("/v1/auth/check"))
    })
    .await;
}

#[actix_web::test]
async fn rate_limit_messages_are_in_the_callers_language_with_the_right_plural() {
    let app = spawn_app().await;
    let (id, secret) = confidential_client(&app);
    tessera::oauth::set_token_rate_limit(
        &mut app.conn(),
        &tessera::oauth::ClientId::from(id.as_str()),
        Some(1),
        Actor::System,
        Origin::default(),
    )
    .expect("limit set");
    let token = || {
        app.client
            .post(app.url("/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
    };
    let res = token().send().await.expect("sent");
    assert_eq!(res.status(), 200);
    for lang in ["es", "en"] {
        let res = token()
            .header("Accept-Language", lang)
            .send()
            .await
            .expect("sent");
        let wait: u64 = res.headers()["retry-after"]
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("Retry-After");
        let body = assert_error(res, 429, "rate_limited").await;
        let message = body["message"].as_str().unwrap_or_default();
        let expected = match (lang, wait) {
            ("es", 1) => "Demasiadas solicitudes: inténtelo de nuevo en 1 segundo.".to_owned(),
            ("es", n) => format!("Demasiadas solicitudes: inténtelo de nuevo en {n} segundos."),
            (_, 1) => "Too many requests: try again in 1 second.".to_owned(),
            (_, n) => format!("Too many requests: try again in {n} seconds."),
        };
        assert_eq!(message, expected);
    }
}

#[actix_web::test]
async fn authorization_errors_sent_back_to_the_client_describe_them_from_the_catalogue() {
    use crate::authorize::{authorize_url, query_of};
    use crate::helpers::location;
    let app = spawn_app().await;
    app.create_user("ana@example.com", "correct horse battery", false);
    let (id, _) = app.create_client(&["authorization_code"], &["read"], &[REDIRECT], true);
    let browser = crate::helpers::client();
    app.sign_in(&browser, "ana@example.com", "correct horse battery")
        .await;
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let cases = [
        (
            authorize_url(&app, &id, "admin", "s", challenge, &[]),
            "invalid_scope",
            "The requested scope is invalid.",
        ),
        (
            authorize_url(&app, &id, "read", "s", challenge, &[])
                .replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
            "The response type is not supported; use code.",
        ),
    ];
    for (url, error, description) in cases {
        let res = browser
            .get(&url)
            .header("Accept-Language", "es")
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 303, "{url}");
        let q = query_of(&location(&res));
        assert_eq!(q.get("error").map(String::as_str), Some(error), "{q:?}");
        assert_eq!(
            q.get("error_description").map(String::as_str),
            Some(description),
            "RFC 6749 §4.1.2.1: ASCII, from the catalogue: {q:?}"
        );
    }
}
