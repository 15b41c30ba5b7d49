//! The token endpoint (client_credentials so far), access-token JWTs checked against the JWKS, metadata.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};

use crate::helpers::{TestApp, spawn_app, spawn_app_with, verify_with_jwks};

async fn token_request(
    app: &TestApp,
    auth: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app.client.post(app.url("/oauth/token")).form(form);
    if let Some((id, secret)) = auth {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.expect("token request sent")
}

#[actix_web::test]
async fn metadata_lists_the_endpoints_and_the_safe_choices() {
    let app = spawn_app().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let doc: serde_json::Value = app.get(path).await.json().await.expect("json");
        assert_eq!(doc["issuer"], app.address.as_str(), "{path}");
        assert_eq!(
            doc["token_endpoint"],
            format!("{}/oauth/token", app.address)
        );
        assert_eq!(
            doc["jwks_uri"],
            format!("{}/.well-known/jwks.json", app.address)
        );
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        let scopes = doc["scopes_supported"].as_array().expect("scopes");
        for s in ["read", "write", "delete", "admin", "offline_access"] {
            assert!(scopes.iter().any(|x| x == s), "default scope {s} in {doc}");
        }
        let grants = doc["grant_types_supported"].as_array().expect("grants");
        assert!(grants.iter().all(|g| g != "password" && g != "implicit"));
        assert!(
            grants
                .iter()
                .any(|g| g == "urn:ietf:params:oauth:grant-type:jwt-bearer")
        );
        assert_eq!(
            doc["revocation_endpoint"],
            format!("{}/oauth/revoke", app.address)
        );
        assert_eq!(
            doc["introspection_endpoint"],
            format!("{}/oauth/introspect", app.address)
        );
        assert_eq!(
            doc["token_endpoint_auth_methods_supported"],
            serde_json::json!([
                "client_secret_basic",
                "client_secret_post",
                "client_secret_jwt",
                "private_key_jwt",
                "none"
            ])
        );
        assert_eq!(
            doc["token_endpoint_auth_signing_alg_values_supported"],
            serde_json::json!(["RS256", "ES256", "EdDSA", "Ed25519", "HS256"])
        );
        assert!(
            doc["introspection_endpoint_auth_methods_supported"]
                .as_array()
                .is_some_and(|m| !m.iter().any(|x| x == "none")),
            "a public client cannot introspect"
        );
    }
}

#[actix_web::test]
async fn the_jwks_publishes_only_public_keys() {
    let app = spawn_app().await;
    let res = app.get("/.well-known/jwks.json").await;
    assert_eq!(res.status(), 200);
    let jwks: serde_json::Value = res.json().await.expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 3, "one key per algorithm on a fresh install");
    let k = keys
        .iter()
        .find(|k| k["alg"] == "EdDSA")
        .expect("an EdDSA key");
    assert_eq!(k["kty"], "OKP");
    assert_eq!(k["crv"], "Ed25519");
    assert_eq!(k["use"], "sig");
    assert!(k["kid"].is_string());
    for k in keys {
        assert!(
            k.get("d").is_none() && k.get("p").is_none(),
            "no private key material: {k}"
        );
    }
}

#[actix_web::test]
async fn client_credentials_issues_an_rfc9068_jwt_verifiable_with_the_jwks() {
    let app = spawn_app().await;
    let (id, secret) = app.create_client(&["client_credentials"], &["read", "write"], &[], false);
    let secret = secret.expect("confidential clients get a secret");
    assert_eq!(secret.len(), 43, "256 bits, base64url");

    let res = token_request(
        &app,
        Some((&id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "read write", "all allowed scopes by default");
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh token for client_credentials"
    );
    let token = body["access_token"].as_str().expect("access_token");

    let (header, claims) = verify_with_jwks(&app, token).await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(claims["iss"], app.address.as_str());
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["aud"], app.address.as_str());
    assert_eq!(claims["scope"], "read write");
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() > 20));
    let (iat, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert_eq!(exp - iat, 900);

    // A second token has its own jti; issuing writes nothing (checked in the bench, not here).
    let again: serde_json::Value = token_request(
        &app,
        Some((&id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await
    .json()
    .await
    .expect("json");
    let (_, claims2) = verify_with_jwks(&app, again["access_token"].as_str().expect("token")).await;
    assert_ne!(claims2["jti"], claims["jti"]);
}

#[actix_web::test]
async fn client_secret_post_and_scope_narrowing_work() {
    let app = spawn_app().await;
    let (id, secret) = app.create_client(
        &["client_credentials"],
        &["read", "write", "offline_access"],
        &[],
        false,
    );
    let secret = secret.expect("secret");
    let res = token_request(
        &app,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "write"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["scope"], "write");
    // Without a scope parameter: everything allowed except offline_access.
    let body: serde_json::Value = token_request(
        &app,
        Some((&id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(body["scope"], "read write");
}

#[actix_web::test]
async fn bad_client_credentials_get_401_invalid_client_in_the_rfc_shape() {
    let app = spawn_app().await;
    let (id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let secret = secret.expect("secret");
    type Case<'a> = (Option<(&'a str, &'a str)>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (Some((&id, "wrong-secret")), vec![]),
        (Some(("cli_unknown", &secret)), vec![]),
        (None, vec![("client_id", &id), ("client_secret", "wrong")]),
        (None, vec![]),
    ];
    for (auth, extra) in cases {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(extra);
        let res = token_request(&app, auth, &form).await;
        assert_eq!(res.status(), 401);
        assert!(res.headers().contains_key("www-authenticate"));
        assert_eq!(res.headers()["cache-control"], "no-store");
        let id_header = res.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["error"], "invalid_client");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.is_ascii())
        );
        assert_eq!(body["request_id"], id_header.as_str());
    }
    // Spanish callers get a Spanish message; error_description stays ASCII as RFC 6749 requires.
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .header("Accept-Language", "es-ES")
        .basic_auth(&id, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("sent");
    let body: serde_json::Value = res.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("La autenticación del cliente falló")),
        "{body}"
    );
}

#[actix_web::test]
async fn token_requests_that_break_the_rules_are_refused() {
    let app = spawn_app().await;
    let (id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let secret = secret.expect("secret");
    let (code_only, code_secret) = app.create_client(
        &["authorization_code"],
        &["read"],
        &["https://app.example/cb"],
        false,
    );
    let code_secret = code_secret.expect("secret");
    let (public, _) = app.create_client(
        &["authorization_code"],
        &["read"],
        &["http://127.0.0.1:9/cb"],
        true,
    );

    let check = |res: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(res.status().as_u16(), status, "{code}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["error"], code, "{body}");
        assert!(
            body["request_id"]
                .as_str()
                .is_some_and(|r| r.starts_with("req_"))
        );
    };
    check(
        token_request(&app, Some((&id, &secret)), &[("grant_type", "password")]).await,
        400,
        "unsupported_grant_type",
    )
    .await;
    check(
        token_request(&app, Some((&id, &secret)), &[]).await,
        400,
        "invalid_request",
    )
    .await;
    check(
        token_request(
            &app,
            Some((&id, &secret)),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "read admin"),
            ],
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;
    check(
        token_request(
            &app,
            Some((&id, &secret)),
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://unknown.example"),
            ],
        )
        .await,
        400,
        "invalid_target",
    )
    .await;
    check(
        token_request(
            &app,
            Some((&code_only, &code_secret)),
            &[("grant_type", "client_credentials")],
        )
        .await,
        400,
        "unauthorized_client",
    )
    .await;
    check(
        token_request(
            &app,
            None,
            &[("grant_type", "client_credentials"), ("client_id", &public)],
        )
        .await,
        400,
        "unauthorized_client",
    )
    .await;
    // Basic and client_secret together, a repeated parameter, a JSON body.
    check(
        token_request(
            &app,
            Some((&id, &secret)),
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", &secret),
            ],
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=read&scope=read")
        .send()
        .await
        .expect("sent");
    check(res, 400, "invalid_request").await;
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("sent");
    check(res, 400, "invalid_request").await;
}

#[actix_web::test]
async fn the_resource_parameter_picks_a_registered_api() {
    let app = spawn_app().await;
    {
        let mut conn = app.conn();
        tessera::oauth::create_api(
            &mut conn,
            "https://billing.example/api",
            "Billing",
            tessera::audit::Actor::System,
        )
        .expect("api");
        tessera::oauth::create_scope(
            &mut conn,
            &app.address,
            "invoices:read",
            "Read invoices",
            Some("https://billing.example/api"),
            tessera::audit::Actor::System,
        )
        .expect("scope");
    }
    let (id, secret) = app.create_client(
        &["client_credentials"],
        &["read", "invoices:read"],
        &[],
        false,
    );
    let secret = secret.expect("secret");
    let body: serde_json::Value = token_request(
        &app,
        Some((&id, &secret)),
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://billing.example/api"),
        ],
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(
        body["scope"], "invoices:read",
        "only the scopes that API defines"
    );
    let token = body["access_token"].as_str().expect("token");
    let claims: serde_json::Value = {
        let jwks: JwkSet = app
            .get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .expect("jwks");
        let header = jsonwebtoken::decode_header(token).expect("header");
        let key =
            DecodingKey::from_jwk(jwks.find(&header.kid.expect("kid")).expect("jwk")).expect("key");
        let mut v = Validation::new(header.alg);
        v.set_audience(&["https://billing.example/api"]);
        jsonwebtoken::decode(token, &key, &v)
            .expect("valid for the billing API")
            .claims
    };
    assert_eq!(claims["aud"], "https://billing.example/api");
}

#[actix_web::test]
async fn client_registration_validates_its_input() {
    let app = spawn_app().await;
    let hasher = tessera::crypto::Hasher::new(&tessera::config::SecretBytes::new(
        crate::helpers::TEST_PEPPER.to_vec(),
    ));
    let mut conn = app.conn();
    let attempt = |conn: &mut tessera::db::DbConn,
                   uris: &[&str],
                   grants: &[&str],
                   scopes: &[&str],
                   public: bool| {
        tessera::oauth::create_client(
            conn,
            &hasher,
            &tessera::config::SecretBytes::new(crate::helpers::TEST_MASTER_KEY.to_vec()),
            &tessera::oauth::ClientInput {
                name: "x".into(),
                redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
                grant_types: grants.iter().map(|s| s.to_string()).collect(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                public,
                ..Default::default()
            },
            tessera::audit::Actor::System,
            tessera::audit::Origin::default(),
        )
        .map(|_| ())
        .map_err(|e| e.code())
    };
    assert_eq!(
        attempt(&mut conn, &["https://a.example/cb#x"], &[], &[], false),
        Err("invalid_request")
    );
    assert_eq!(
        attempt(&mut conn, &["http://a.example/cb"], &[], &[], false),
        Err("invalid_request")
    );
    assert_eq!(
        attempt(&mut conn, &["https://*.a.example/cb"], &[], &[], false),
        Err("invalid_request")
    );
    assert_eq!(
        attempt(
            &mut conn,
            &["https://a.example/cb", "https://a.example/cb"],
            &[],
            &[],
            false
        ),
        Err("invalid_request")
    );
    assert_eq!(
        attempt(&mut conn, &[], &["authorization_code"], &[], false),
        Err("invalid_request")
    );
    assert_eq!(
        attempt(&mut conn, &[], &["client_credentials"], &[], true),
        Err("invalid_request")
    );
    assert_eq!(
        attempt(&mut conn, &[], &["implicit"], &[], false),
        Err("invalid_request")
    );
    assert_eq!(
        attempt(&mut conn, &[], &["client_credentials"], &["nope"], false),
        Err("invalid_request")
    );
    assert_eq!(
        attempt(&mut conn, &["https://a.example/cb"], &[], &["read"], false),
        Ok(())
    );
    // Secrets are stored only as HMAC-SHA256 hex.
    use diesel::prelude::*;
    use tessera::db::schema::oauth_clients;
    let hashes: Vec<Option<String>> = oauth_clients::table
        .select(oauth_clients::secret_hash)
        .load(&mut conn)
        .expect("rows");
    assert!(
        hashes
            .iter()
            .all(|h| h.as_ref().is_some_and(|h| h.len() == 64))
    );
}

#[actix_web::test]
async fn es256_and_rs256_can_be_chosen_instead_of_eddsa() {
    use tessera::jwt::SigningAlg;
    for (alg, kty, expected) in [
        (SigningAlg::ES256, "EC", jsonwebtoken::Algorithm::ES256),
        (SigningAlg::RS256, "RSA", jsonwebtoken::Algorithm::RS256),
    ] {
        signs_with(alg, kty, expected).await;
    }
}

async fn signs_with(alg: tessera::jwt::SigningAlg, kty: &str, expected: jsonwebtoken::Algorithm) {
    let app = spawn_app_with(|s| s.signing_alg = alg.as_str()).await;
    let jwks: serde_json::Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("json");
    let key = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["alg"] == alg.as_str())
        .expect("a key of the algorithm");
    assert_eq!(key["kty"], kty);
    assert!(
        key.get("d").is_none() && key.get("p").is_none(),
        "public parts only: {key}"
    );
    let (id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let body: serde_json::Value = token_request(
        &app,
        Some((&id, &secret.expect("secret"))),
        &[("grant_type", "client_credentials")],
    )
    .await
    .json()
    .await
    .expect("json");
    let (header, claims) =
        verify_with_jwks(&app, body["access_token"].as_str().expect("token")).await;
    assert_eq!(header.alg, expected);
    assert_eq!(claims["sub"], id.as_str());
}

#[actix_web::test]
async fn cookies_are_secure_when_the_issuer_is_https() {
    let app = spawn_app_with(|s| {
        s.issuer = url::Url::parse("https://auth.example.com").expect("url");
    })
    .await;
    let res = app.get("/login").await;
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("tessera_csrf="))
        .expect("csrf cookie")
        .to_owned();
    assert!(cookie.contains("; Secure"), "{cookie}");
}
