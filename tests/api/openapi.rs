//! `GET /openapi.json`: an OpenAPI 3.1 document that describes every JSON route the app serves.
//!
//! actix-web cannot list its routes, so the JSON routes are kept in [`JSON_ROUTES`] and checked both
//! ways: against the route macros and resources found in `src/` (for `/v1`, where new routes are
//! added), against the document (every listed route documented, nothing documented that is not
//! listed), and against the running server (every documented operation is routed: it never answers
//! the "no such route" 404 or 405). schemathesis (`tests/openapi/run.sh`) checks the answers
//! themselves against the document.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{assert_error, key, spawn_app, spawn_app_with};

/// Every JSON route: method and path as the document writes them.
const JSON_ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("POST", "/oauth/token"),
    ("POST", "/oauth/revoke"),
    ("POST", "/oauth/introspect"),
    ("GET", "/oauth/userinfo"),
    ("POST", "/oauth/userinfo"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/.well-known/jwks.json"),
    ("POST", "/v1/keys/verify"),
    ("GET", "/v1/auth/check"),
    ("POST", "/v1/auth/check"),
    ("POST", "/v1/keys"),
    ("GET", "/v1/keys"),
    ("GET", "/v1/keys/{id}"),
    ("POST", "/v1/keys/{id}/revoke"),
    ("POST", "/v1/keys/{id}/rotate"),
    ("GET", "/v1/users"),
    ("POST", "/v1/users"),
];

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

fn routes(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect()
}

/// The operations of the document, as (METHOD, path).
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// The `/v1` routes declared in `src/`: `#[get("/v1/…")]`-style macros, and `web::resource("/v1/…")`
/// with the methods of the `.route(web::get()…)` calls that follow it.
fn v1_routes_in_source() -> BTreeSet<(String, String)> {
    fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let quoted = |line: &str, after: &str| -> Option<String> {
        let start = line.find(after)? + after.len();
        let end = line[start..].find('"')? + start;
        Some(line[start..end].to_owned())
    };
    let mut out = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        let mut resource: Option<String> = None;
        for line in text.lines().map(str::trim) {
            for method in METHODS {
                if let Some(path) = quoted(line, &format!("#[{method}(\""))
                    && path.starts_with("/v1")
                {
                    out.insert((method.to_uppercase(), path));
                }
            }
            if let Some(path) = quoted(line, "web::resource(\"") {
                resource = path.starts_with("/v1").then_some(path);
            }
            if let Some(path) = &resource {
                for method in METHODS {
                    if line.contains(&format!(".route(web::{method}()")) {
                        out.insert((method.to_uppercase(), path.clone()));
                    }
                }
                if line.ends_with(';') {
                    resource = None;
                }
            }
        }
    }
    out
}

/// Every `$ref` in the document.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref"
                    && let Some(r) = v.as_str()
                {
                    out.push(r.to_owned());
                }
                refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[actix_web::test]
async fn openapi_json_is_3_1_and_documents_every_json_route() {
    let app = spawn_app().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("application/json")),
        "content type {:?}",
        res.headers()["content-type"]
    );
    let doc: Value = res.json().await.expect("the document is JSON");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "OpenAPI 3.1, not {}",
        doc["openapi"]
    );

    let listed = routes(JSON_ROUTES);
    let in_doc = documented(&doc);
    let missing: Vec<_> = listed.difference(&in_doc).collect();
    let unlisted: Vec<_> = in_doc.difference(&listed).collect();
    assert!(missing.is_empty(), "routes the document lacks: {missing:?}");
    assert!(unlisted.is_empty(), "documented, not listed: {unlisted:?}");

    let v1_listed: BTreeSet<_> = listed
        .iter()
        .filter(|(_, p)| p.starts_with("/v1"))
        .cloned()
        .collect();
    let v1_source = v1_routes_in_source();
    assert_eq!(
        v1_source, v1_listed,
        "the /v1 routes declared in src/ differ from JSON_ROUTES"
    );

    // Unique operation ids (clients are generated from them), and every reference resolves.
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().expect("paths").values() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let id = op["operationId"].as_str().expect("an operationId");
                assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            }
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve"
        );
    }
}

#[actix_web::test]
async fn every_error_answer_is_documented_with_its_body() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.expect("json");
    let oauth = ["/oauth/token", "/oauth/revoke", "/oauth/introspect"];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path} documents no success"
            );
            for (status, response) in responses {
                assert!(
                    response["headers"].get("X-Request-Id").is_some(),
                    "{method} {path} {status}: X-Request-Id"
                );
                if status.as_str() < "400" {
                    continue;
                }
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                let expected = if oauth.contains(&path.as_str()) {
                    "#/components/schemas/OAuthErrorBody"
                } else {
                    "#/components/schemas/ErrorBody"
                };
                assert_eq!(schema, expected, "{method} {path} {status}");
                if status == "429" {
                    assert!(response["headers"].get("Retry-After").is_some());
                }
            }
        }
    }
    let error = &doc["components"]["schemas"]["ErrorBody"];
    let required: BTreeSet<&str> = error["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, BTreeSet::from(["error", "message", "request_id"]));
}

#[actix_web::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.expect("json");
    for (method, path) in documented(&doc) {
        let url = app.url(&path.replace("{id}", "key_unknown"));
        let req = match method.as_str() {
            "GET" => app.client.get(url),
            "POST" => app.client.post(url),
            other => panic!("unexpected method {other}"),
        };
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        // Without credentials or a body, a routed operation answers 200, 400, 401 or 415; an
        // unrouted one 404 `not_found` or 405.
        assert!(
            ![404, 405].contains(&status),
            "{method} {path} answered {status}: not routed"
        );
    }
}

// What schemathesis found (tests/openapi/run.sh), each kept here as a plain regression test.

/// A key for an owner that does not exist was a foreign-key violation answered 500.
#[actix_web::test]
async fn a_key_for_an_owner_that_does_not_exist_is_a_400_not_a_500() {
    let app = spawn_app().await;
    let (_, admin) = key(&app, "sk", "live", &[]);
    for owner in ["owner_user_id", "owner_client_id"] {
        for id in ["", "usr_nobody"] {
            let res = app
                .client
                .post(app.url("/v1/keys"))
                .bearer_auth(&admin)
                .json(&serde_json::json!({ "name": "k", owner: id }))
                .send()
                .await
                .expect("sent");
            assert_error(res, 400, "invalid_request").await;
        }
    }
}

/// A 429 or a 413 from the OAuth endpoints lacked RFC 6749's `error_description`.
#[actix_web::test]
async fn the_oauth_endpoints_answer_every_error_in_rfc_6749_shape() {
    let app = spawn_app_with(|s| {
        s.auth_rate_limit = 1;
        s.body_limit = 1024;
    })
    .await;
    for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
        let big = "a".repeat(2048);
        let res = app
            .client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big)
            .send()
            .await
            .expect("sent");
        let body = assert_error(res, 413, "payload_too_large").await;
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{path}: {body}"
        );
    }
    let mut last = None;
    for _ in 0..3 {
        let res = app
            .client
            .post(app.url("/oauth/token"))
            .basic_auth("nobody", Some("wrong"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("sent");
        last = Some(res);
    }
    let res = last.expect("answered");
    assert!(res.headers().contains_key("retry-after"));
    let body = assert_error(res, 429, "rate_limited").await;
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

/// A rotation body that did not parse (malformed, a misspelt field, another media type) was
/// silently dropped: the key was rotated with the default grace instead of being refused.
#[actix_web::test]
async fn a_rotation_body_that_does_not_parse_is_refused_not_ignored() {
    let app = spawn_app().await;
    let (_, admin) = key(&app, "sk", "live", &[]);
    let (id, _) = key(&app, "sk", "live", &[]);
    let rotate = |body: Option<(&'static str, &'static str)>| {
        let mut req = app
            .client
            .post(app.url(&format!("/v1/keys/{id}/rotate")))
            .bearer_auth(&admin);
        if let Some((content_type, body)) = body {
            req = req.header("content-type", content_type).body(body);
        }
        req.send()
    };
    for (body, status, code) in [
        (("application/json", r#"{"grace": 5"#), 400, "invalid_json"),
        (
            ("application/json", r#"{"grece": 5}"#),
            400,
            "invalid_request",
        ),
        (
            ("application/json", r#"{"grace": -5}"#),
            400,
            "invalid_request",
        ),
        (
            ("text/plain", r#"{"grace": 5}"#),
            415,
            "unsupported_media_type",
        ),
    ] {
        let res = rotate(Some(body)).await.expect("sent");
        assert_error(res, status, code).await;
    }
    // Nothing was rotated by those; without a body the default grace applies.
    let res = rotate(None).await.expect("sent");
    assert_eq!(res.status(), 201);
    let res = app
        .client
        .get(app.url(&format!("/v1/keys/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("sent");
    let old: Value = res.json().await.expect("json");
    let expires = old["expires_at"].as_i64().expect("the old key now expires");
    let created = old["created_at"].as_i64().expect("created");
    assert!(expires - created >= 86_000, "default grace: {old}");
}
