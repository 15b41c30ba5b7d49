//! The JSON error shape: 404, 405, 413, 400, 415 (a media type, a content encoding), and the
//! Spanish catalogue; the security headers on every response.

use crate::helpers::{assert_error, assert_page_error, client, spawn_app, spawn_app_with};

#[actix_web::test]
async fn unknown_routes_are_json_404s_in_the_callers_language() {
    let app = spawn_app().await;
    let en = assert_error(app.get("/v1/nothing").await, 404, "not_found").await;
    assert_eq!(en["message"], "The requested resource does not exist.");
    let es = app
        .client
        .get(app.url("/v1/nothing"))
        .header("Accept-Language", "es-ES,es;q=0.9,en;q=0.5")
        .send()
        .await
        .expect("sent");
    assert_eq!(es.headers()["content-language"], "es-ES");
    let es = assert_error(es, 404, "not_found").await;
    assert_eq!(es["message"], "El recurso solicitado no existe.");
    let fr = app
        .client
        .get(app.url("/v1/nothing"))
        .header("Accept-Language", "fr-FR")
        .send()
        .await
        .expect("sent");
    let fr = assert_error(fr, 404, "not_found").await;
    assert_eq!(
        fr["message"], "The requested resource does not exist.",
        "fallback en-US"
    );
}

#[actix_web::test]
async fn a_body_over_the_limit_gets_413_in_json() {
    let app = spawn_app().await;
    let big = "a".repeat(64 * 1024 + 1);
    let res = app
        .client
        .post(app.url("/v1/users"))
        .header("Content-Type", "application/json")
        .header("Accept-Language", "es-ES")
        .body(big.clone())
        .send()
        .await
        .expect("sent");
    let body = assert_error(res, 413, "payload_too_large").await;
    assert_eq!(
        body["message"],
        "El cuerpo de la solicitud supera el límite de 65536 bytes."
    );
    // Also on a form endpoint, before the form is read.
    let res = app
        .client
        .post(app.url("/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .expect("sent");
    // A browser's route: the same refusal as a page.
    let page = assert_page_error(res, 413, "payload_too_large").await;
    assert!(page.contains("65536"), "{page}");
}

#[actix_web::test]
async fn a_chunked_body_over_the_limit_is_cut_off_with_413() {
    let app = spawn_app().await;
    app.create_user("root@example.com", "correct horse battery", true);
    let admin = client();
    app.sign_in(&admin, "root@example.com", "correct horse battery")
        .await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![b' '; 8 * 1024])).collect();
    let stream = futures_util::stream::iter(chunks);
    let res = admin
        .post(app.url("/v1/users"))
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("sent");
    let body = assert_error(res, 413, "payload_too_large").await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("65536")),
        "{body}"
    );
}

#[actix_web::test]
async fn malformed_json_and_forms_get_400_saying_what_is_wrong() {
    let app = spawn_app().await;
    app.create_user("root@example.com", "correct horse battery", true);
    let admin = client();
    app.sign_in(&admin, "root@example.com", "correct horse battery")
        .await;

    let res = admin
        .post(app.url("/v1/users"))
        .header("Content-Type", "application/json")
        .body(r#"{"email": "a@example.com", "password": }"#)
        .send()
        .await
        .expect("sent");
    let body = assert_error(res, 400, "invalid_json").await;
    let msg = body["message"].as_str().expect("message");
    assert!(
        msg.starts_with("The request body is not valid JSON: ") && msg.contains("line 1 column"),
        "{msg}"
    );

    let res = admin
        .post(app.url("/v1/users"))
        .header("Content-Type", "application/json")
        .header("Accept-Language", "es")
        .body(r#"{"email": 5, "password": "x"}"#)
        .send()
        .await
        .expect("sent");
    let body = assert_error(res, 400, "invalid_request").await;
    let msg = body["message"].as_str().expect("message");
    assert!(
        msg.starts_with("La solicitud no es válida: un valor tiene un tipo incorrecto"),
        "{msg}"
    );

    let res = admin
        .post(app.url("/v1/users"))
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("sent");
    let body = assert_error(res, 415, "unsupported_media_type").await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("application/json")),
        "{body}"
    );

    let res = app
        .client
        .post(app.url("/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("email=a%40example.com")
        .send()
        .await
        .expect("sent");
    // A browser's route: a page saying the form could not be read, and why, from the catalogue.
    let page = assert_page_error(res, 400, "invalid_form").await;
    assert!(
        page.contains("The form body could not be read: missing field &#39;password&#39;."),
        "{page}"
    );
}

#[actix_web::test]
async fn wrong_method_is_a_json_error() {
    let app = spawn_app().await;
    let res = app
        .client
        .delete(app.url("/healthz"))
        .send()
        .await
        .expect("sent");
    let status = res.status().as_u16();
    assert!(status == 404 || status == 405, "{status}");
    let body: serde_json::Value = res.json().await.expect("json body");
    assert!(
        body["error"].is_string() && body["request_id"].is_string(),
        "{body}"
    );
}

/// Asserts the headers every response carries, success or error.
pub fn assert_security_headers(res: &reqwest::Response, what: &str) {
    let h = res.headers();
    assert_eq!(
        h.get("x-content-type-options").map(|v| v.as_bytes()),
        Some(&b"nosniff"[..]),
        "nosniff on {what}"
    );
    assert_eq!(
        h.get("referrer-policy").map(|v| v.as_bytes()),
        Some(&b"no-referrer"[..]),
        "Referrer-Policy on {what}"
    );
    assert!(h.contains_key("x-request-id"), "X-Request-Id on {what}");
}

#[actix_web::test]
async fn every_response_has_the_security_headers_and_every_error_the_json_shape() {
    let app = spawn_app_with(|s| s.ip_rate_limit = 1).await;
    let c = &app.client;
    let json = |body: &str| {
        c.post(app.url("/v1/keys/verify"))
            .header("Content-Type", "application/json")
            .body(body.to_owned())
    };
    let key = r#"{"key": "sk_live_nothing"}"#;
    // (what, request, status, error code, the Allow header of a 405, RFC 6749 shape)
    let cases = [
        (
            "404",
            c.get(app.url("/v1/nothing")),
            404,
            "not_found",
            None,
            false,
        ),
        (
            "GET /oauth/token",
            c.get(app.url("/oauth/token")),
            405,
            "method_not_allowed",
            Some("POST"),
            true,
        ),
        (
            "PUT /oauth/revoke",
            c.put(app.url("/oauth/revoke")),
            405,
            "method_not_allowed",
            Some("POST"),
            true,
        ),
        (
            "GET /oauth/introspect",
            c.get(app.url("/oauth/introspect")),
            405,
            "method_not_allowed",
            Some("POST"),
            true,
        ),
        (
            "DELETE /v1/keys/verify",
            c.delete(app.url("/v1/keys/verify")),
            405,
            "method_not_allowed",
            Some("POST"),
            false,
        ),
        (
            "PUT /v1/auth/check",
            c.put(app.url("/v1/auth/check")),
            405,
            "method_not_allowed",
            Some("GET, POST"),
            false,
        ),
        (
            "DELETE /healthz",
            c.delete(app.url("/healthz")),
            405,
            "method_not_allowed",
            Some("GET"),
            false,
        ),
        (
            "bad JSON",
            json(r#"{"key": }"#),
            400,
            "invalid_json",
            None,
            false,
        ),
        (
            "413",
            json(&"a".repeat(64 * 1024 + 1)),
            413,
            "payload_too_large",
            None,
            false,
        ),
        (
            "401",
            c.get(app.url("/v1/keys")),
            401,
            "unauthenticated",
            None,
            false,
        ),
        (
            "OAuth 400",
            c.post(app.url("/oauth/token"))
                .form(&[("grant_type", "password")]),
            400,
            "unsupported_grant_type",
            None,
            true,
        ),
        ("200", json(key), 200, "", None, false),
        ("429", json(key), 429, "rate_limited", None, false),
    ];
    for (what, req, status, code, allow, oauth) in cases {
        let res = req.send().await.expect("sent");
        assert_security_headers(&res, what);
        if status == 200 {
            assert_eq!(res.status(), 200, "{what}");
            continue;
        }
        if let Some(allow) = allow {
            let methods = res.headers()["allow"].to_str().expect("ascii").to_owned();
            assert!(methods.contains(allow), "Allow of {what}: {methods}");
        }
        let body = assert_error(res, status, code).await;
        assert_eq!(
            body["error_description"].is_string(),
            oauth,
            "RFC 6749 shape on {what}: {body}"
        );
    }
}

#[actix_web::test]
async fn a_compressed_body_gets_415_naming_identity_and_an_identity_one_is_read() {
    let app = spawn_app().await;
    let (id, secret) = app.create_client(&["client_credentials"], &["read"], &[], false);
    let secret = secret.expect("a confidential client");
    // Whatever the bytes: a body with a Content-Encoding is never decoded, nor parsed as a form.
    for encoding in ["gzip", "br", "GZIP"] {
        let res = app
            .client
            .post(app.url("/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Content-Encoding", encoding)
            .header("Accept-Language", "es-ES")
            .body("grant_type=client_credentials")
            .send()
            .await
            .expect("sent");
        assert_eq!(
            res.headers()
                .get("accept-encoding")
                .and_then(|v| v.to_str().ok()),
            Some("identity"),
            "{encoding}"
        );
        let body = assert_error(res, 415, "unsupported_content_encoding").await;
        assert_eq!(
            body["message"],
            "El cuerpo de la solicitud debe enviarse sin comprimir, sin Content-Encoding."
        );
    }
    // On a browser's route the same refusal is a page.
    let res = app
        .client
        .post(app.url("/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Content-Encoding", "deflate")
        .body("email=a%40example.com&password=x")
        .send()
        .await
        .expect("sent");
    assert_page_error(res, 415, "unsupported_content_encoding").await;
    // `identity` is no encoding at all: the request is answered as without the header.
    let res = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Content-Encoding", "identity")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    // Without a body the header describes nothing: a proxy's forward-auth request that copied it
    // from the client's request is answered as any other.
    let (_, key) = crate::helpers::key(&app, "rk", "live", &["read"]);
    let res = app
        .client
        .get(app.url("/v1/auth/check"))
        .bearer_auth(&key)
        .header("Content-Encoding", "gzip")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
}
