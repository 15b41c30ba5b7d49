//! Properties over HTTP against the real app (a bounded number of cases each): client assertions at
//! the token endpoint, and the JSON bodies of the `/v1` endpoints.

use std::sync::atomic::{AtomicUsize, Ordering};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestCaseResult, TestRunner};
use serde_json::{Value, json};
use tessera::apikeys::{self, KeyInput};
use tessera::audit::{Actor, Origin};
use tessera::config::{SecretBytes, Settings};
use tessera::jwt::SigningAlg;
use tessera::oauth::ClientInput;

use crate::config;
use crate::helpers::{TEST_PEPPER, TestApp, spawn_app_with};
use crate::jwts::{Edit, apply, edit};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const REDIRECT: &str = "http://127.0.0.1:9876/callback";

/// A client of the app that authenticates with JWTs: its id and the key it signs with.
struct JwtClient {
    id: String,
    alg: Algorithm,
    kid: Option<String>,
    key: EncodingKey,
}

/// What the tests need of a running app.
struct Setup {
    address: String,
    admin_key: String,
    key_id: String,
    clients: Vec<JwtClient>,
    /// A confidential client (`client_secret_basic`) with a redirect URI: id and secret.
    secret_client: (String, String),
}

/// The app on its own thread (actix runs it on a local task set), with a `private_key_jwt` client per
/// algorithm, a `client_secret_jwt` client, a confidential client and a full-access API key; stopped
/// and its database removed on drop.
struct Server {
    setup: Setup,
    system: actix_web::rt::System,
    thread: Option<std::thread::JoinHandle<()>>,
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

fn jwt_client(app: &TestApp, alg: SigningAlg) -> JwtClient {
    let key = tessera::jwt::keys::generate(alg).expect("a key");
    let (jwt_alg, private) = match alg {
        SigningAlg::EdDSA => (Algorithm::EdDSA, EncodingKey::from_ed_der(&key.pkcs8)),
        SigningAlg::ES256 => (Algorithm::ES256, EncodingKey::from_ec_der(&key.pkcs8)),
        SigningAlg::RS256 => (Algorithm::RS256, EncodingKey::from_rsa_der(&key.pkcs8)),
    };
    let (id, _) = app
        .register_client(ClientInput {
            name: "Fuzzed client".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["read".into()],
            auth_method: Some("private_key_jwt".into()),
            jwks: Some(json!({ "keys": [key.public_jwk] }).to_string()),
            ..Default::default()
        })
        .expect("client registered");
    JwtClient {
        id,
        alg: jwt_alg,
        kid: Some(key.kid),
        key: private,
    }
}

/// A `client_secret_jwt` client: its assertions are HS256 under its secret (no `kid`).
fn secret_jwt_client(app: &TestApp) -> JwtClient {
    let (id, secret) = app
        .register_client(ClientInput {
            name: "Fuzzed HS256 client".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["read".into()],
            auth_method: Some("client_secret_jwt".into()),
            ..Default::default()
        })
        .expect("client registered");
    JwtClient {
        id,
        alg: Algorithm::HS256,
        kid: None,
        key: EncodingKey::from_secret(secret.expect("a secret").as_bytes()),
    }
}

impl Server {
    fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runner = actix_web::rt::System::new();
            let app = runner.block_on(async {
                spawn_app_with(|s| {
                    s.ip_rate_limit = 1_000_000;
                    s.api_key_rate_limit = 1_000_000;
                })
                .await
            });
            let hasher = tessera::crypto::Hasher::new(&SecretBytes::new(TEST_PEPPER.to_vec()));
            let key = |name: &str| {
                apikeys::create_key(
                    &mut app.conn(),
                    &Settings::default(),
                    &hasher,
                    &KeyInput {
                        name: name.into(),
                        key_type: "sk".into(),
                        env: "live".into(),
                        ..Default::default()
                    },
                    Actor::System,
                    Origin::default(),
                )
                .expect("a key")
            };
            let (_, secret) = key("Fuzz admin");
            let (rotated, _) = key("Rotated again and again");
            let mut clients: Vec<JwtClient> =
                [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::RS256]
                    .map(|alg| jwt_client(&app, alg))
                    .into();
            clients.push(secret_jwt_client(&app));
            let (client_id, client_secret) = app.create_client(
                &["authorization_code", "client_credentials", "refresh_token"],
                &["read", "write", "offline_access"],
                &[REDIRECT],
                false,
            );
            let setup = Setup {
                address: app.address.clone(),
                admin_key: secret.0,
                key_id: rotated.id.into_string(),
                clients,
                secret_client: (
                    client_id,
                    client_secret.expect("a confidential client's secret"),
                ),
            };
            let system = actix_web::rt::System::current();
            tx.send((setup, system)).expect("the test waits");
            runner.run().expect("the app runs");
            drop(app);
        });
        let (setup, system) = rx.recv().expect("the app starts");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        Self {
            setup,
            system,
            thread: Some(thread),
            client: crate::helpers::client(),
            rt,
        }
    }

    /// Sends `req` and returns the status and the body (JSON, or `Value::Null` when it is not).
    fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        self.rt.block_on(async {
            let res = req.send().await.expect("the app answers");
            let status = res.status().as_u16();
            let body = res.bytes().await.expect("a body");
            (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.setup.address)
    }

    fn token_request(&self, assertion: &str) -> (u16, Value) {
        self.send(self.client.post(self.url("/oauth/token")).form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ]))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.system.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> TestCaseResult) {
    let mut runner = TestRunner::new(config(cases));
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

/// A valid assertion of `client` with a `jti` never used before.
fn assertion(client: &JwtClient, audience: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let now = tessera::db::now();
    let claims = json!({
        "iss": client.id, "sub": client.id, "aud": audience, "iat": now, "exp": now + 300,
        "jti": format!("fuzz-{}", N.fetch_add(1, Ordering::Relaxed)),
    });
    let mut header = Header::new(client.alg);
    header.kid = client.kid.clone();
    jsonwebtoken::encode(&header, &claims, &client.key).expect("signed")
}

/// A client assertion (EdDSA, ES256, RS256, HS256) with any one character of its header, payload or
/// signature changed, removed or added is refused (each with a fresh `jti`, so a replay check cannot hide an accepted signature);
/// the same assertion unedited gets a token.
#[test]
fn edited_client_assertions_are_refused_at_the_token_endpoint() {
    let server = Server::start();
    let audience = server.url("/oauth/token");
    for (client, cases) in server.setup.clients.iter().zip([250, 150, 100, 150]) {
        let (status, body) = server.token_request(&assertion(client, &audience));
        assert_eq!(
            status, 200,
            "{:?}: a valid assertion gets a token: {body}",
            client.alg
        );
        run(cases, edit(), |edit: Edit| {
            let valid = assertion(client, &audience);
            let edited = apply(&valid, &edit);
            prop_assume!(edited != valid);
            let (status, body) = server.token_request(&edited);
            prop_assert!(
                matches!(status, 400 | 401 | 429) && body.get("access_token").is_none(),
                "{:?}: {} answered {}: {}",
                client.alg,
                edited,
                status,
                body
            );
            prop_assert!(body["error"].is_string(), "{}", body);
            Ok(())
        });
        let (status, _) = server.token_request(&assertion(client, &audience));
        assert_eq!(
            status, 200,
            "{:?}: still served after the edits",
            client.alg
        );
    }
}

/// Any JSON value, mostly objects with the fields the endpoints read, each of any type.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::from),
        prop::sample::select(
            &[
                "sk",
                "rk",
                "live",
                "test",
                "read",
                "write",
                "admin",
                "30d",
                "1h",
                "0s",
                "-1d",
                "999999999d",
                "read write",
                "a@example.com",
                ""
            ][..]
        )
        .prop_map(Value::from),
    ];
    let field = prop_oneof![
        4 => prop::sample::select(
            &["key", "required_scopes", "required_env", "name", "type", "env", "scopes",
              "expires_in", "rate_limit", "metadata", "owner_user_id", "owner_client_id", "grace",
              "email", "password", "is_admin"][..]
        )
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field.clone(), inner, 0..7)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A word the endpoints know (or nearly): types, environments, scopes, lifetimes, a real key.
fn word(key: String) -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => prop::sample::select(
            &["sk", "rk", "live", "test", "read", "write", "admin", "offline_access", "30d", "1h",
              "0s", "-1d", "999999999d", "read write", "read,write", "Partner", "", "x"][..]
        )
        .prop_map(Value::from),
        1 => Just(Value::from(key)),
    ]
}

/// An object of the fields the `/v1` endpoints read, mostly with values of a fitting type.
fn shaped(key: String) -> impl Strategy<Value = Value> {
    const FIELDS: [&str; 13] = [
        "key",
        "required_scopes",
        "required_env",
        "name",
        "type",
        "env",
        "scopes",
        "expires_in",
        "rate_limit",
        "metadata",
        "owner_user_id",
        "owner_client_id",
        "grace",
    ];
    let value = prop_oneof![
        4 => word(key.clone()),
        2 => prop::collection::vec(word(key), 0..4).prop_map(Value::Array),
        1 => (0..100_000u32).prop_map(Value::from),
        1 => json_value(),
    ];
    prop::sample::subsequence(FIELDS.to_vec(), 0..=6).prop_flat_map(move |names| {
        let n = names.len();
        (Just(names), prop::collection::vec(value.clone(), n)).prop_map(|(names, values)| {
            Value::Object(names.into_iter().map(str::to_owned).zip(values).collect())
        })
    })
}

/// A body: JSON of the endpoints' shape or any shape, cut short, nested past any parser's depth,
/// numbers out of range, or bytes.
fn body(key: String) -> impl Strategy<Value = Vec<u8>> {
    let json = prop_oneof![3 => shaped(key), 2 => json_value()];
    prop_oneof![
        6 => json.clone().prop_map(|v| v.to_string().into_bytes()),
        1 => (json, any::<prop::sample::Index>()).prop_map(|(v, at)| {
            let text = v.to_string().into_bytes();
            let cut = at.index(text.len() + 1);
            text[..cut].to_vec()
        }),
        1 => (1..3000usize).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        1 => prop::sample::select(&[
            r#"{"name": "x", "rate_limit": 1e999}"#, r#"{"key": "\ud800"}"#, r#"{"name": "x", "name": "y"}"#,
            r#"{"name": "k", "rate_limit": 18446744073709551616}"#, "\u{feff}{}", "{} {}",
        ][..]).prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

/// The JSON endpoints of `/v1` answer any body without a 5xx, and every refusal has the JSON error
/// shape (`error`, `message`, `request_id`). (`POST /v1/users` takes a signed-in administrator's
/// session, not a key: its body is only read after that, so it is left to the API suite.)
#[test]
fn v1_json_bodies_never_get_a_server_error() {
    let server = Server::start();
    let paths = [
        "/v1/keys/verify".to_owned(),
        "/v1/keys".to_owned(),
        format!("/v1/keys/{}/rotate", server.setup.key_id),
    ];
    let content_type = prop_oneof![
        8 => Just("application/json"),
        1 => Just("application/json; charset=utf-8"),
        1 => Just("text/plain"),
    ];
    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<(String, u16), usize>::new());
    run(
        1200,
        (
            any::<prop::sample::Index>(),
            body(server.setup.admin_key.clone()),
            content_type,
            prop::bool::weighted(0.8),
        ),
        |(path, body, content_type, admin)| {
            let path = &paths[path.index(paths.len())];
            let mut req = server
                .client
                .post(server.url(path))
                .header("Content-Type", content_type)
                .body(body.clone());
            if admin {
                req = req.bearer_auth(&server.setup.admin_key);
            }
            let (status, answer) = server.send(req);
            *seen
                .lock()
                .expect("counts")
                .entry((path.clone(), status))
                .or_default() += 1;
            let shown = String::from_utf8_lossy(&body);
            prop_assert!(
                status < 500,
                "{} {} answered {}: {}",
                path,
                shown,
                status,
                answer
            );
            if status >= 400 {
                prop_assert!(
                    answer["error"].is_string()
                        && answer["message"].is_string()
                        && answer["request_id"].is_string(),
                    "{} {} answered {} without the error shape: {}",
                    path,
                    shown,
                    status,
                    answer
                );
            }
            Ok(())
        },
    );
    // The bodies reach the endpoints' own checks, not only the JSON parser.
    let seen = seen.into_inner().expect("counts");
    for path in &paths {
        let ok = seen
            .iter()
            .any(|((p, s), _)| p == path && (200..300).contains(s));
        assert!(ok, "no body was accepted at {path}: {seen:?}");
    }
}

/// Forward-auth (`/v1/auth/check`) with random credentials, and a real key or access token with one
/// character changed, in every place a key is read: never accepted, never a 5xx, always the JSON
/// error shape.
#[test]
fn forward_auth_refuses_random_and_edited_keys_and_tokens() {
    let server = Server::start();
    let key = server.setup.admin_key.clone();
    let check = |header: &str, value: &str| {
        server.send(
            server
                .client
                .get(server.url("/v1/auth/check"))
                .header(header, value),
        )
    };
    assert_eq!(check("Authorization", &format!("Bearer {key}")).0, 200);
    let (id, secret) = &server.setup.secret_client;
    let (status, answer) = server.send(
        server
            .client
            .post(server.url("/oauth/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")]),
    );
    assert_eq!(status, 200, "{answer}");
    let token = answer["access_token"].as_str().expect("a token").to_owned();
    assert_eq!(check("Authorization", &format!("Bearer {token}")).0, 200);
    let presented = prop_oneof![
        2 => edit().prop_map({
            let key = key.clone();
            move |e| apply(&key, &e)
        }),
        2 => edit().prop_map({
            let token = token.clone();
            move |e| apply(&token, &e)
        }),
        1 => any::<String>(),
        1 => "(sk|rk)_(live|test)_[0-9A-Za-z]{49}",
        1 => "[A-Za-z0-9_.=-]{0,120}",
    ];
    let place = prop::sample::select(&["Bearer", "bearer", "X-Api-Key", "Basic"][..]);
    run(800, (presented, place), |(presented, place)| {
        prop_assume!(presented != key && presented != token);
        let (header, value) = match place {
            "X-Api-Key" => ("X-Api-Key", presented.clone()),
            scheme => ("Authorization", format!("{scheme} {presented}")),
        };
        prop_assume!(reqwest::header::HeaderValue::from_str(&value).is_ok());
        let (status, answer) = check(header, &value);
        prop_assert!(
            (400..500).contains(&status),
            "{}: {} answered {}: {}",
            header,
            value,
            status,
            answer
        );
        prop_assert!(
            answer["error"].is_string() && answer["request_id"].is_string(),
            "{}: {} answered {} without the error shape: {}",
            header,
            value,
            status,
            answer
        );
        Ok(())
    });
    assert_eq!(check("X-Api-Key", &key).0, 200, "the key still works");
}

/// The RFC 6749 §5.2 error codes (and `rate_limited`) the OAuth endpoints answer with.
const OAUTH_ERRORS: [&str; 8] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "rate_limited",
    "unsupported_token_type",
];

type Form = Vec<(String, String)>;

/// One edit of a request's parameters.
#[derive(Debug, Clone)]
enum FormEdit {
    Drop(prop::sample::Index),
    Replace(prop::sample::Index, String),
    Repeat(prop::sample::Index, String),
    Add(String, String),
}

/// A request made from one of `bases` (valid requests) by up to 3 random edits: parameters dropped,
/// values replaced, parameters repeated, others added; names and values mostly from `words`.
fn edited_form(bases: Vec<Form>, words: Vec<String>) -> impl Strategy<Value = Form> {
    let text = prop_oneof![3 => prop::sample::select(words), 1 => any::<String>()];
    let edit = prop_oneof![
        any::<prop::sample::Index>().prop_map(FormEdit::Drop),
        (any::<prop::sample::Index>(), text.clone()).prop_map(|(i, v)| FormEdit::Replace(i, v)),
        (any::<prop::sample::Index>(), text.clone()).prop_map(|(i, v)| FormEdit::Repeat(i, v)),
        (text.clone(), text).prop_map(|(n, v)| FormEdit::Add(n, v)),
    ];
    (
        prop::sample::select(bases),
        prop::collection::vec(edit, 0..4),
    )
        .prop_map(|(mut form, edits)| {
            for edit in edits {
                let n = form.len();
                match edit {
                    FormEdit::Drop(i) if n > 0 => {
                        form.remove(i.index(n));
                    }
                    FormEdit::Replace(i, v) if n > 0 => form[i.index(n)].1 = v,
                    FormEdit::Repeat(i, v) if n > 0 => {
                        let name = form[i.index(n)].0.clone();
                        form.push((name, v));
                    }
                    FormEdit::Add(name, v) => form.push((name, v)),
                    _ => {}
                }
            }
            form
        })
}

fn owned(pairs: &[(&str, &str)]) -> Form {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Token, revocation and introspection requests, valid ones edited at random (the real client's id
/// and secret among the values): never a 5xx; a refusal is a JSON RFC 6749 error, and a token comes
/// only with the client's own secret.
#[test]
fn oauth_endpoints_answer_edited_forms_with_rfc6749_errors() {
    let server = Server::start();
    let (id, secret) = server.setup.secret_client.clone();
    let bases = vec![
        owned(&[("grant_type", "client_credentials")]),
        owned(&[
            ("grant_type", "client_credentials"),
            ("scope", "read"),
            ("client_id", &id),
            ("client_secret", &secret),
        ]),
        owned(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("scope", "read"),
        ]),
        owned(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", "x"),
        ]),
        owned(&[("token", &secret), ("token_type_hint", "access_token")]),
    ];
    let words: Vec<String> = [
        "grant_type",
        "client_id",
        "client_secret",
        "scope",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "client_assertion",
        "client_assertion_type",
        "assertion",
        "resource",
        "token",
        "token_type_hint",
        "client_credentials",
        "authorization_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        ASSERTION_TYPE,
        "read",
        "read write",
        "offline_access",
        "admin",
        REDIRECT,
        "access_token",
        "password",
        "",
        "x",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([id.clone(), secret.clone(), server.url("")])
    .collect();
    let basic = prop_oneof![
        2 => Just(Some((id.clone(), secret.clone()))),
        1 => Just(None),
        1 => (Just(id.clone()), "[A-Za-z0-9_-]{43}").prop_map(Some),
        1 => (any::<String>(), any::<String>()).prop_map(Some),
    ];
    let path = prop::sample::select(
        &[
            "/oauth/token",
            "/oauth/token",
            "/oauth/revoke",
            "/oauth/introspect",
        ][..],
    );
    let tokens = AtomicUsize::new(0);
    run(
        900,
        (path, edited_form(bases, words), basic),
        |(path, form, basic)| {
            let mut req = server.client.post(server.url(path)).form(&form);
            if let Some((user, password)) = &basic {
                req = req.basic_auth(user, Some(password));
            }
            let (status, answer) = server.send(req);
            prop_assert!(
                status < 500,
                "{} {:?} answered {}: {}",
                path,
                form,
                status,
                answer
            );
            if status >= 400 {
                let code = answer["error"].as_str().unwrap_or_default();
                prop_assert!(
                    OAUTH_ERRORS.contains(&code)
                        && answer.get("message").is_none_or(Value::is_string),
                    "{} {:?} answered {} without an RFC 6749 error: {}",
                    path,
                    form,
                    status,
                    answer
                );
            }
            if answer.get("access_token").is_some() {
                tokens.fetch_add(1, Ordering::Relaxed);
                let basic_ok = basic
                    .as_ref()
                    .is_some_and(|(u, p)| *u == id && *p == secret);
                let body_ok = form
                    .iter()
                    .any(|(k, v)| k == "client_secret" && *v == secret);
                prop_assert!(
                    basic_ok || body_ok,
                    "a token without the secret: {:?} {:?}",
                    form,
                    basic
                );
            }
            Ok(())
        },
    );
    assert!(
        tokens.into_inner() > 0,
        "some edited requests are still valid and get a token"
    );
}

/// `/oauth/authorize` with valid requests edited at random: never a 5xx, and never a redirect to a
/// URI other than the registered one or the sign-in page.
#[test]
fn authorize_answers_edited_requests_without_a_server_error() {
    let server = Server::start();
    let (id, _) = server.setup.secret_client.clone();
    let base = owned(&[
        ("response_type", "code"),
        ("client_id", &id),
        ("redirect_uri", REDIRECT),
        ("scope", "read"),
        ("state", "s1"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ]);
    let words: Vec<String> = [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "prompt",
        "resource",
        "code",
        "token",
        "https://evil.example/cb",
        "http://127.0.0.1:9876/callback/..",
        "read write offline_access",
        "admin",
        "S256",
        "plain",
        "consent",
        "none",
        "",
        "x",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([id.clone(), server.url("")])
    .collect();
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    run(600, edited_form(vec![base], words), |query| {
        let (status, answer, location) = server.rt.block_on(async {
            let res = server
                .client
                .get(server.url("/oauth/authorize"))
                .query(&query)
                .send()
                .await
                .expect("the app answers");
            let location = res
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap_or_default().to_owned());
            let status = res.status().as_u16();
            let body = res.text().await.unwrap_or_default();
            (status, body, location)
        });
        prop_assert!(status < 500, "{:?} answered {}: {}", query, status, answer);
        let to = match &location {
            Some(l) if l.starts_with(&format!("{REDIRECT}?")) => "callback",
            Some(l) if l.starts_with("/login") || l.starts_with(&server.url("/login")) => "login",
            Some(l) => {
                return Err(TestCaseError::fail(format!("{query:?} redirected to {l}")));
            }
            None => "page",
        };
        seen.lock().expect("seen").insert(to);
        Ok(())
    });
    let seen = seen.into_inner().expect("seen");
    assert_eq!(
        seen.len(),
        3,
        "requests reach the sign-in, the error redirect and the error page: {seen:?}"
    );
}
