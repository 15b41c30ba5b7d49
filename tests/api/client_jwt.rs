//! RFC 7523: clients that authenticate with JWTs they sign (`private_key_jwt`, `client_secret_jwt`),
//! keys registered inline or fetched from a `jwks_uri`, and the JWT bearer grant.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tessera::jwt::SigningAlg;
use tessera::oauth::ClientInput;

use crate::helpers::{Credential, TestApp, assert_error, spawn_app, verify_with_jwks};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ALGS: [SigningAlg; 3] = [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::RS256];

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A client's key pair: the private half signs, the public half is registered (JWKS or PEM).
struct ClientKey {
    alg: Algorithm,
    kid: String,
    private: EncodingKey,
    public_jwk: Value,
    /// SubjectPublicKeyInfo DER of the public key, and its PEM.
    spki: Vec<u8>,
    pem: String,
}

impl ClientKey {
    fn generate(alg: SigningAlg) -> Self {
        let key = tessera::jwt::keys::generate(alg).expect("key generation");
        let coord = |name: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(key.public_jwk[name].as_str().expect("JWK coordinate"))
                .expect("base64url coordinate")
        };
        let (jwt_alg, private, spki) = match alg {
            SigningAlg::EdDSA => {
                let mut spki = vec![
                    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
                ];
                spki.extend(coord("x"));
                (Algorithm::EdDSA, EncodingKey::from_ed_der(&key.pkcs8), spki)
            }
            SigningAlg::ES256 => {
                let mut spki = vec![
                    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
                    0x04,
                ];
                spki.extend(coord("x"));
                spki.extend(coord("y"));
                (Algorithm::ES256, EncodingKey::from_ec_der(&key.pkcs8), spki)
            }
            SigningAlg::RS256 => {
                use rsa::pkcs1::DecodeRsaPrivateKey as _;
                use rsa::pkcs8::EncodePublicKey as _;
                let spki = rsa::RsaPrivateKey::from_pkcs1_der(&key.pkcs8)
                    .expect("PKCS#1 RSA key")
                    .to_public_key()
                    .to_public_key_der()
                    .expect("SPKI encoding")
                    .as_bytes()
                    .to_vec();
                (
                    Algorithm::RS256,
                    EncodingKey::from_rsa_der(&key.pkcs8),
                    spki,
                )
            }
        };
        let body = base64::engine::general_purpose::STANDARD.encode(&spki);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        );
        Self {
            alg: jwt_alg,
            kid: key.kid,
            private,
            public_jwk: key.public_jwk,
            spki,
            pem,
        }
    }

    fn jwks(&self) -> String {
        json!({ "keys": [self.public_jwk] }).to_string()
    }

    /// Signs `claims` with `kid` in the header.
    fn sign(&self, claims: &Value) -> String {
        sign_as(self.alg, &self.private, Some(&self.kid), claims)
    }
}

fn sign_as(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("JWT signs")
}

/// Claims a valid assertion of `client_id` carries: aud = the token endpoint, 5 minutes, fresh jti.
fn claims(app: &TestApp, client_id: &str) -> Value {
    let now = now();
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": format!("{}/oauth/token", app.address),
        "iat": now,
        "exp": now + 300,
        "jti": tessera::crypto::random_id("jti", 24),
    })
}

/// `claims` with `changes` applied; a `null` removes the claim.
fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().expect("changes are an object") {
        let map = claims.as_object_mut().expect("claims are an object");
        if v.is_null() {
            map.remove(k);
        } else {
            map.insert(k.clone(), v.clone());
        }
    }
    claims
}

fn register(auth_method: &str, grants: &[&str], keys: ClientKeys) -> ClientInput {
    let (jwks_uri, jwks) = match keys {
        ClientKeys::None => (None, None),
        ClientKeys::Inline(k) => (None, Some(k)),
        ClientKeys::Uri(u) => (Some(u), None),
    };
    ClientInput {
        name: "JWT client".into(),
        grant_types: grants.iter().map(|g| g.to_string()).collect(),
        scopes: vec!["read".into(), "write".into()],
        auth_method: Some(auth_method.into()),
        jwks_uri,
        jwks,
        ..Default::default()
    }
}

enum ClientKeys {
    None,
    Inline(String),
    Uri(String),
}

/// Registers a `private_key_jwt` client with `keys`; its id.
fn private_key_client(app: &TestApp, grants: &[&str], keys: ClientKeys) -> String {
    let (id, secret) = app
        .register_client(register("private_key_jwt", grants, keys))
        .expect("private_key_jwt client registered");
    assert!(secret.is_none(), "private_key_jwt clients get no secret");
    id
}

async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .expect("request sent")
}

/// client_credentials, the client authenticated by `assertion`.
async fn client_credentials(app: &TestApp, assertion: &str) -> reqwest::Response {
    post_form(
        app,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ],
    )
    .await
}

/// The JWT bearer grant with `assertion`.
async fn jwt_bearer(app: &TestApp, assertion: &str) -> reqwest::Response {
    post_form(
        app,
        "/oauth/token",
        &[
            ("grant_type", JWT_BEARER),
            ("assertion", assertion),
            ("scope", "read"),
        ],
    )
    .await
}

/// Asserts a 200 token response and returns the verified access-token claims.
async fn assert_token(app: &TestApp, res: reqwest::Response, case: &str) -> Value {
    assert_eq!(res.status(), 200, "{case}");
    let body: Value = res.json().await.expect("token JSON");
    assert_eq!(body["token_type"], "Bearer", "{case}");
    assert!(body["expires_in"].as_i64().is_some_and(|e| e > 0), "{case}");
    let token = body["access_token"].as_str().expect("access_token");
    let (header, claims) = verify_with_jwks(app, token).await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "{case}");
    assert_eq!(claims["scope"], body["scope"], "{case}");
    claims
}

/// Asserts a refusal: status and code, an `error_description`, and `WWW-Authenticate` on 401.
/// `why` is a word the `error_description` must hold (the check that fired), or "" for any reason.
async fn assert_refused(res: reqwest::Response, status: u16, code: &str, case: &str, why: &str) {
    assert_eq!(res.status().as_u16(), status, "{case}");
    if status == 401 {
        assert!(
            res.headers().contains_key("www-authenticate"),
            "WWW-Authenticate on 401: {case}"
        );
    }
    let body = assert_error(res, status, code).await;
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty() && d.contains(why)),
        "error_description mentioning '{why}' in {body}: {case}"
    );
}

/// Introspects `token`, the client authenticated by an assertion with aud = the issuer.
async fn introspect(
    app: &TestApp,
    key: &ClientKey,
    client_id: &str,
    token: &str,
) -> reqwest::Response {
    let assertion = key.sign(&with(claims(app, client_id), json!({ "aud": app.address })));
    app.introspection(Credential::Assertion(&assertion), token)
        .await
}

/// `header.claims.` with no signature, as `alg: none` JWTs are.
fn unsigned(kid: &str, claims: &Value) -> String {
    let header = json!({ "alg": "none", "typ": "JWT", "kid": kid });
    format!(
        "{}.{}.",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

#[actix_web::test]
async fn private_key_jwt_authenticates_with_eddsa_es256_and_rs256_keys_as_jwks_or_pem() {
    let app = spawn_app().await;
    for alg in ALGS {
        let key = ClientKey::generate(alg);
        // As a JWKS (kid in the header, aud = the token endpoint) and as PEM (no kid, aud = an
        // array holding the issuer).
        let jwks_client = private_key_client(
            &app,
            &["client_credentials"],
            ClientKeys::Inline(key.jwks()),
        );
        app.allow_introspection(&jwks_client);
        let pem_client = private_key_client(
            &app,
            &["client_credentials"],
            ClientKeys::Inline(key.pem.clone()),
        );
        let cases = [
            (&jwks_client, key.sign(&claims(&app, &jwks_client)), "JWKS"),
            (
                &pem_client,
                sign_as(
                    key.alg,
                    &key.private,
                    None,
                    &with(
                        claims(&app, &pem_client),
                        json!({ "aud": ["https://other.example", app.address] }),
                    ),
                ),
                "PEM",
            ),
        ];
        for (id, assertion, how) in cases {
            let case = format!("{alg:?} key registered as {how}");
            let res = client_credentials(&app, &assertion).await;
            let token = assert_token(&app, res, &case).await;
            assert_eq!(token["sub"], id.as_str(), "{case}");
            assert_eq!(token["client_id"], id.as_str(), "{case}");
            assert_eq!(token["scope"], "read write", "{case}");
        }
        // The same client also authenticates at introspection and revocation with assertions.
        let res = client_credentials(&app, &key.sign(&claims(&app, &jwks_client))).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        let access = body["access_token"].as_str().expect("token").to_owned();
        let res = introspect(&app, &key, &jwks_client, &access).await;
        assert_eq!(res.status(), 200, "{alg:?} introspection");
        let answer: Value = res.json().await.expect("json");
        assert_eq!(answer["active"], true, "{answer}");
        assert_eq!(answer["client_id"], jwks_client.as_str());
        let revoke = key.sign(&with(
            claims(&app, &jwks_client),
            json!({ "aud": app.address }),
        ));
        let res = post_form(
            &app,
            "/oauth/revoke",
            &[
                ("token", access.as_str()),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &revoke),
            ],
        )
        .await;
        assert_eq!(res.status(), 200, "{alg:?} revocation");
        let answer: Value = introspect(&app, &key, &jwks_client, &access)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(answer["active"], false, "revoked: {answer}");
    }
}

#[actix_web::test]
async fn private_key_jwt_refuses_forged_stale_misdirected_and_replayed_assertions() {
    let app = spawn_app().await;
    for alg in ALGS {
        let key = ClientKey::generate(alg);
        let id = private_key_client(
            &app,
            &["client_credentials"],
            ClientKeys::Inline(key.jwks()),
        );
        let other = ClientKey::generate(alg);
        let now = now();
        let fresh = || claims(&app, &id);
        let hs256 = |secret: &[u8]| {
            sign_as(
                Algorithm::HS256,
                &EncodingKey::from_secret(secret),
                Some(&key.kid),
                &fresh(),
            )
        };
        let jwk_text = key.public_jwk.to_string();
        let mut cases: Vec<(&str, &str, String)> = vec![
            (
                "signed by another key with the same kid",
                "signature",
                sign_as(other.alg, &other.private, Some(&key.kid), &fresh()),
            ),
            (
                "expired",
                "expired",
                key.sign(&with(
                    fresh(),
                    json!({ "iat": now - 600, "exp": now - 120 }),
                )),
            ),
            (
                "exp more than one hour ahead",
                "hour",
                key.sign(&with(fresh(), json!({ "exp": now + 3600 + 600 }))),
            ),
            (
                "aud of another server",
                "aud",
                key.sign(&with(fresh(), json!({ "aud": "https://other.example" }))),
            ),
            (
                "aud of another endpoint",
                "aud",
                key.sign(&with(
                    fresh(),
                    json!({ "aud": [format!("{}/oauth/authorize", app.address)] }),
                )),
            ),
            (
                "jti missing",
                "jti",
                key.sign(&with(fresh(), json!({ "jti": null }))),
            ),
            (
                "jti empty",
                "jti",
                key.sign(&with(fresh(), json!({ "jti": "" }))),
            ),
            (
                "iat missing",
                "iat",
                key.sign(&with(fresh(), json!({ "iat": null }))),
            ),
            (
                "iat in the future",
                "iat",
                key.sign(&with(fresh(), json!({ "iat": now + 600 }))),
            ),
            (
                "nbf in the future",
                "nbf",
                key.sign(&with(fresh(), json!({ "nbf": now + 600 }))),
            ),
            (
                "sub is another client",
                "sub",
                key.sign(&with(fresh(), json!({ "sub": "cli_someone_else" }))),
            ),
            ("alg none", "", unsigned(&key.kid, &fresh())),
            ("signed by a key embedded in the header", "signature", {
                let mut header = Header::new(other.alg);
                header.kid = Some(key.kid.clone());
                header.jwk = Some(serde_json::from_value(other.public_jwk.clone()).expect("a JWK"));
                jsonwebtoken::encode(&header, &fresh(), &other.private).expect("JWT signs")
            }),
            (
                "HS256 keyed with the public JWK",
                "",
                hs256(jwk_text.as_bytes()),
            ),
            (
                "HS256 keyed with the registered JWKS",
                "",
                hs256(key.jwks().as_bytes()),
            ),
            (
                "HS256 keyed with the public PEM",
                "",
                hs256(key.pem.as_bytes()),
            ),
            ("HS256 keyed with the public DER", "", hs256(&key.spki)),
            (
                "exp missing",
                "malformed",
                key.sign(&with(fresh(), json!({ "exp": null }))),
            ),
            (
                "aud of the introspection endpoint, at the token endpoint",
                "aud",
                key.sign(&with(
                    fresh(),
                    json!({ "aud": format!("{}/oauth/introspect", app.address) }),
                )),
            ),
        ];
        // NumericDate may have a fraction (RFC 7519 §2).
        let fractional = key.sign(&with(fresh(), json!({ "exp": now as f64 + 300.5 })));
        assert_eq!(
            client_credentials(&app, &fractional).await.status(),
            200,
            "{alg:?}: a fractional exp"
        );
        // A valid assertion is accepted once; the same JWT again is a replay.
        let once = key.sign(&fresh());
        let res = client_credentials(&app, &once).await;
        assert_eq!(res.status(), 200, "{alg:?}: the first use of an assertion");
        cases.push(("reused jti", "jti", once));
        // A new JWT reusing a spent jti is a replay too.
        let spent = tessera::crypto::random_id("jti", 24);
        let first = key.sign(&with(fresh(), json!({ "jti": spent })));
        assert_eq!(client_credentials(&app, &first).await.status(), 200);
        cases.push((
            "same jti in a new JWT",
            "jti",
            key.sign(&with(fresh(), json!({ "jti": spent, "exp": now + 400 }))),
        ));

        for (case, why, assertion) in &cases {
            let res = client_credentials(&app, assertion).await;
            assert_refused(res, 401, "invalid_client", &format!("{alg:?}: {case}"), why).await;
        }
        // None of the refusals spent anything: a good assertion still works.
        let res = client_credentials(&app, &key.sign(&fresh())).await;
        assert_token(&app, res, &format!("{alg:?}: after the refusals")).await;
    }

    // jti are per client: another client may use a jti someone else used.
    let a = ClientKey::generate(SigningAlg::EdDSA);
    let b = ClientKey::generate(SigningAlg::EdDSA);
    let id_a = private_key_client(&app, &["client_credentials"], ClientKeys::Inline(a.jwks()));
    let id_b = private_key_client(&app, &["client_credentials"], ClientKeys::Inline(b.jwks()));
    let jti = json!({ "jti": "shared-jti-value" });
    let res = client_credentials(&app, &a.sign(&with(claims(&app, &id_a), jti.clone()))).await;
    assert_eq!(res.status(), 200);
    let res = client_credentials(&app, &b.sign(&with(claims(&app, &id_b), jti))).await;
    assert_eq!(res.status(), 200, "jti are remembered per client");
    // A client's key does not authenticate another client (iss = sub = B, signed by A).
    let res = client_credentials(&app, &a.sign(&claims(&app, &id_b))).await;
    assert_refused(
        res,
        401,
        "invalid_client",
        "signed by another client's key",
        "signature",
    )
    .await;
}

#[actix_web::test]
async fn client_secret_jwt_takes_hs256_with_the_secret_and_nothing_else() {
    let app = spawn_app().await;
    let (id, secret) = app
        .register_client(register(
            "client_secret_jwt",
            &["client_credentials"],
            ClientKeys::None,
        ))
        .expect("client_secret_jwt client registered");
    let secret = secret.expect("client_secret_jwt clients get a secret");
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    {
        // At rest: AES-256-GCM ciphertext (nonce + secret + tag), no hash, never the plaintext.
        use diesel::prelude::*;
        use tessera::db::schema::oauth_clients;
        let mut conn = app.conn();
        let (hash, sealed): (Option<String>, Option<Vec<u8>>) = oauth_clients::table
            .find(&id)
            .select((oauth_clients::secret_hash, oauth_clients::secret_encrypted))
            .first(&mut conn)
            .expect("row");
        assert!(hash.is_none(), "not usable as a plain secret");
        let sealed = sealed.expect("kept encrypted");
        assert_eq!(sealed.len(), 12 + 43 + 16);
        assert!(
            !sealed
                .windows(8)
                .any(|w| secret.as_bytes().windows(8).any(|s| s == w)),
            "no run of the plaintext at rest"
        );
    }
    let hmac = |alg: Algorithm, key: &[u8], claims: &Value| {
        sign_as(alg, &EncodingKey::from_secret(key), None, claims)
    };

    let res = client_credentials(
        &app,
        &hmac(Algorithm::HS256, secret.as_bytes(), &claims(&app, &id)),
    )
    .await;
    let token = assert_token(&app, res, "HS256 with the secret").await;
    assert_eq!(token["sub"], id.as_str());
    assert_eq!(token["client_id"], id.as_str());

    let asymmetric = ClientKey::generate(SigningAlg::EdDSA);
    let cases = [
        (
            "HS256 with a wrong secret",
            "signature",
            hmac(
                Algorithm::HS256,
                b"not-the-secret-not-the-secret-not-the-sec",
                &claims(&app, &id),
            ),
        ),
        (
            "HS384 with the secret",
            "HS256",
            hmac(Algorithm::HS384, secret.as_bytes(), &claims(&app, &id)),
        ),
        (
            "HS512 with the secret",
            "HS256",
            hmac(Algorithm::HS512, secret.as_bytes(), &claims(&app, &id)),
        ),
        (
            "EdDSA with some key",
            "HS256",
            asymmetric.sign(&claims(&app, &id)),
        ),
        ("alg none", "", unsigned("k", &claims(&app, &id))),
        (
            "expired",
            "expired",
            hmac(
                Algorithm::HS256,
                secret.as_bytes(),
                &with(
                    claims(&app, &id),
                    json!({ "iat": now() - 600, "exp": now() - 120 }),
                ),
            ),
        ),
    ];
    for (case, why, assertion) in &cases {
        let res = client_credentials(&app, assertion).await;
        assert_refused(res, 401, "invalid_client", case, why).await;
    }

    // The secret is an HMAC key only: Basic and client_secret_post are refused.
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("sent");
    assert_refused(res, 401, "invalid_client", "Basic with the secret", "").await;
    let res = post_form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_refused(
        res,
        401,
        "invalid_client",
        "client_secret_post with the secret",
        "",
    )
    .await;
}

/// What the test's JWKS endpoint serves, and how often it was fetched.
struct JwksState {
    body: Mutex<String>,
    fetches: AtomicUsize,
}

async fn serve_jwks(state: actix_web::web::Data<JwksState>) -> actix_web::HttpResponse {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let body = state.body.lock().expect("JWKS lock").clone();
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

/// Serves `/jwks` on 127.0.0.1 (another port); returns its base URL and state.
fn jwks_server(initial: String) -> (String, actix_web::web::Data<JwksState>) {
    let state = actix_web::web::Data::new(JwksState {
        body: Mutex::new(initial),
        fetches: AtomicUsize::new(0),
    });
    let shared = state.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let port = listener.local_addr().expect("local address").port();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(shared.clone())
            .route("/jwks", actix_web::web::get().to(serve_jwks))
    })
    .workers(1)
    .listen(listener)
    .expect("listen")
    .run();
    actix_web::rt::spawn(server);
    (format!("http://127.0.0.1:{port}"), state)
}

#[actix_web::test]
async fn private_key_jwt_keys_are_fetched_from_the_jwks_uri_and_cached() {
    let app = spawn_app().await;
    let key = ClientKey::generate(SigningAlg::ES256);
    let (base, jwks) = jwks_server(key.jwks());
    let id = private_key_client(
        &app,
        &["client_credentials"],
        ClientKeys::Uri(format!("{base}/jwks")),
    );
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst),
        0,
        "registration does not fetch"
    );

    let res = client_credentials(&app, &key.sign(&claims(&app, &id))).await;
    let token = assert_token(&app, res, "key from the jwks_uri").await;
    assert_eq!(token["client_id"], id.as_str());
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1);
    let res = client_credentials(&app, &key.sign(&claims(&app, &id))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst),
        1,
        "served from the cache"
    );

    // A key with the registered kid but other key material is refused.
    let impostor = ClientKey::generate(SigningAlg::ES256);
    let forged = sign_as(
        impostor.alg,
        &impostor.private,
        Some(&key.kid),
        &claims(&app, &id),
    );
    let res = client_credentials(&app, &forged).await;
    assert_refused(
        res,
        401,
        "invalid_client",
        "wrong key behind the jwks_uri kid",
        "signature",
    )
    .await;

    // The client rotates to a new key: an unknown kid refetches at most every 30 s, so right after
    // the first fetch the new key is not yet known (and the endpoint is not hammered).
    let rotated = ClientKey::generate(SigningAlg::ES256);
    *jwks.body.lock().expect("JWKS lock") = rotated.jwks();
    let res = client_credentials(&app, &rotated.sign(&claims(&app, &id))).await;
    assert_refused(
        res,
        401,
        "invalid_client",
        "unknown kid within 30 s of a fetch",
        "",
    )
    .await;
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst),
        1,
        "no refetch within 30 s"
    );
    let res = client_credentials(&app, &key.sign(&claims(&app, &id))).await;
    assert_eq!(res.status(), 200, "the cached key still works");

    // A jwks_uri that does not answer with keys: refused as invalid_client.
    let broken = private_key_client(
        &app,
        &["client_credentials"],
        ClientKeys::Uri(format!("{base}/missing")),
    );
    let res = client_credentials(&app, &key.sign(&claims(&app, &broken))).await;
    assert_refused(res, 401, "invalid_client", "jwks_uri answers 404", "").await;
}

#[actix_web::test]
async fn the_jwt_bearer_grant_exchanges_a_client_signed_assertion_for_an_access_token() {
    let app = spawn_app().await;
    let key = ClientKey::generate(SigningAlg::EdDSA);
    let id = private_key_client(&app, &["jwt-bearer"], ClientKeys::Inline(key.jwks()));
    let (hs_id, hs_secret) = app
        .register_client(register(
            "client_secret_jwt",
            &["jwt-bearer"],
            ClientKeys::None,
        ))
        .expect("client_secret_jwt client with the jwt-bearer grant");
    let hs_secret = hs_secret.expect("secret");
    let hs256 = |claims: &Value| {
        sign_as(
            Algorithm::HS256,
            &EncodingKey::from_secret(hs_secret.as_bytes()),
            None,
            claims,
        )
    };

    let private_assertion = key.sign(&claims(&app, &id));
    let issuer_aud = hs256(&with(claims(&app, &hs_id), json!({ "aud": app.address })));
    for (client, assertion, case) in [
        (
            &id,
            &private_assertion,
            "private_key_jwt, aud = token endpoint",
        ),
        (&hs_id, &issuer_aud, "client_secret_jwt, aud = issuer"),
    ] {
        let res = jwt_bearer(&app, assertion).await;
        let token = assert_token(&app, res, case).await;
        assert_eq!(token["sub"], client.as_str(), "{case}");
        assert_eq!(token["client_id"], client.as_str(), "{case}");
        assert_eq!(token["scope"], "read", "{case}");
        assert_eq!(token["iss"], app.address.as_str(), "{case}");
    }

    let now = now();
    let cases = [
        ("replayed assertion", "jti", private_assertion.clone()),
        (
            "expired",
            "expired",
            key.sign(&with(
                claims(&app, &id),
                json!({ "iat": now - 600, "exp": now - 120 }),
            )),
        ),
        (
            "aud of another server",
            "aud",
            key.sign(&with(
                claims(&app, &id),
                json!({ "aud": "https://other.example" }),
            )),
        ),
        (
            "sub is not the client",
            "sub",
            key.sign(&with(claims(&app, &id), json!({ "sub": "usr_somebody" }))),
        ),
        (
            "jti missing",
            "jti",
            key.sign(&with(claims(&app, &id), json!({ "jti": null }))),
        ),
        (
            "signed by another key",
            "signature",
            sign_as(
                Algorithm::EdDSA,
                &ClientKey::generate(SigningAlg::EdDSA).private,
                Some(&key.kid),
                &claims(&app, &id),
            ),
        ),
        ("alg none", "", unsigned(&key.kid, &claims(&app, &id))),
        (
            "HS256 keyed with the public JWK",
            "",
            sign_as(
                Algorithm::HS256,
                &EncodingKey::from_secret(key.public_jwk.to_string().as_bytes()),
                Some(&key.kid),
                &claims(&app, &id),
            ),
        ),
    ];
    for (case, why, assertion) in &cases {
        let res = jwt_bearer(&app, assertion).await;
        assert_refused(res, 400, "invalid_grant", case, why).await;
    }

    // A JWT-authenticating client without the grant.
    let no_grant = private_key_client(
        &app,
        &["client_credentials"],
        ClientKeys::Inline(key.jwks()),
    );
    let res = jwt_bearer(&app, &key.sign(&claims(&app, &no_grant))).await;
    assert_refused(
        res,
        400,
        "unauthorized_client",
        "client without the jwt-bearer grant",
        "jwt-bearer",
    )
    .await;

    let res = post_form(&app, "/oauth/token", &[("grant_type", JWT_BEARER)]).await;
    assert_refused(res, 400, "invalid_request", "no assertion", "assertion").await;
}

#[actix_web::test]
async fn registration_refuses_missing_private_weak_or_insecure_client_keys() {
    let app = spawn_app().await;
    let key = ClientKey::generate(SigningAlg::EdDSA);
    let mut private_jwk = key.public_jwk.clone();
    private_jwk["d"] = json!(b64url(&[7; 32]));
    let weak_rsa = json!({
        "kty": "RSA", "kid": "weak", "use": "sig", "alg": "RS256",
        "n": b64url(&[0xc3; 128]), "e": "AQAB",
    });
    let oct = json!({ "kty": "oct", "kid": "hmac", "k": b64url(&[1; 32]) });
    let p384 = json!({
        "kty": "EC", "crv": "P-384", "kid": "p384",
        "x": b64url(&[1; 48]), "y": b64url(&[2; 48]),
    });
    let jwks = |k: &Value| json!({ "keys": [k] }).to_string();
    let pkjwt = |grants: &[&str], keys: ClientKeys| register("private_key_jwt", grants, keys);
    let cc = &["client_credentials"][..];

    let refused = [
        ("private_key_jwt without keys", pkjwt(cc, ClientKeys::None)),
        ("private_key_jwt with both jwks_uri and jwks", {
            let mut input = pkjwt(cc, ClientKeys::Inline(key.jwks()));
            input.jwks_uri = Some("https://keys.example.com/jwks".into());
            input
        }),
        (
            "a JWK with the private member d",
            pkjwt(cc, ClientKeys::Inline(jwks(&private_jwk))),
        ),
        (
            "a bare private JWK",
            pkjwt(cc, ClientKeys::Inline(private_jwk.to_string())),
        ),
        ("an oct key", pkjwt(cc, ClientKeys::Inline(jwks(&oct)))),
        (
            "a 1024-bit RSA key",
            pkjwt(cc, ClientKeys::Inline(jwks(&weak_rsa))),
        ),
        (
            "an EC key off P-256",
            pkjwt(cc, ClientKeys::Inline(jwks(&p384))),
        ),
        (
            "a PEM private key",
            pkjwt(
                cc,
                ClientKeys::Inline(key.pem.replace("PUBLIC KEY", "PRIVATE KEY")),
            ),
        ),
        (
            "an empty JWKS",
            pkjwt(cc, ClientKeys::Inline(r#"{"keys":[]}"#.into())),
        ),
        (
            "jwks_uri over http on a public host",
            pkjwt(cc, ClientKeys::Uri("http://keys.example.com/jwks".into())),
        ),
        (
            "jwt-bearer on a client_secret_basic client",
            register("client_secret_basic", &["jwt-bearer"], ClientKeys::None),
        ),
        (
            "jwt-bearer on a default (Basic) client",
            ClientInput {
                auth_method: None,
                ..register("client_secret_basic", &["jwt-bearer"], ClientKeys::None)
            },
        ),
        (
            "keys on a client_secret_jwt client",
            register("client_secret_jwt", cc, ClientKeys::Inline(key.jwks())),
        ),
    ];
    for (case, input) in refused {
        assert_eq!(app.register_client(input), Err("invalid_request"), "{case}");
    }

    // The safe shapes are taken.
    for (case, input) in [
        ("a JWKS", pkjwt(cc, ClientKeys::Inline(key.jwks()))),
        (
            "a single JWK",
            pkjwt(cc, ClientKeys::Inline(key.public_jwk.to_string())),
        ),
        (
            "a PEM public key",
            pkjwt(cc, ClientKeys::Inline(key.pem.clone())),
        ),
        (
            "an https jwks_uri",
            pkjwt(cc, ClientKeys::Uri("https://keys.example.com/jwks".into())),
        ),
        (
            "an http jwks_uri on loopback",
            pkjwt(
                &["jwt-bearer"],
                ClientKeys::Uri("http://127.0.0.1:9/jwks".into()),
            ),
        ),
    ] {
        let registered = app.register_client(input);
        assert!(
            registered
                .as_ref()
                .is_ok_and(|(_, secret)| secret.is_none()),
            "{case}: {registered:?}"
        );
    }
}

/// RFC 9864: `Ed25519` is accepted as the name of EdDSA over Ed25519 in a client's assertion
/// (advertised in the metadata); its signature is checked against the client's Ed25519 key, and a
/// forged one or one under another key is refused.
#[actix_web::test]
async fn private_key_jwt_accepts_the_ed25519_algorithm_name() {
    use ring::signature::{Ed25519KeyPair, KeyPair as _};
    let app = spawn_app().await;
    let key = tessera::jwt::keys::generate(SigningAlg::EdDSA).expect("key");
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key.pkcs8).expect("pkcs8");
    assert_eq!(
        b64url(pair.public_key().as_ref()),
        key.public_jwk["x"].as_str().expect("x")
    );
    let jwks = json!({ "keys": [key.public_jwk] }).to_string();
    let id = private_key_client(&app, &["client_credentials"], ClientKeys::Inline(jwks));
    let sign = |claims: &Value, with: &Ed25519KeyPair| {
        let header = json!({ "alg": "Ed25519", "typ": "JWT", "kid": key.kid });
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let signature = with.sign(input.as_bytes());
        format!("{input}.{}", b64url(signature.as_ref()))
    };
    let res = client_credentials(&app, &sign(&claims(&app, &id), &pair)).await;
    assert_token(&app, res, "Ed25519").await;

    let other = tessera::jwt::keys::generate(SigningAlg::EdDSA).expect("key");
    let other = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&other.pkcs8).expect("pkcs8");
    let res = client_credentials(&app, &sign(&claims(&app, &id), &other)).await;
    assert_refused(
        res,
        401,
        "invalid_client",
        "Ed25519 by another key",
        "signature",
    )
    .await;

    let metadata: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .expect("json");
    assert!(
        metadata["token_endpoint_auth_signing_alg_values_supported"]
            .as_array()
            .expect("list")
            .contains(&json!("Ed25519")),
        "{metadata}"
    );
}
