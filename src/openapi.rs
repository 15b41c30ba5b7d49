//! The OpenAPI 3.1 description of every JSON endpoint, served at `GET /openapi.json`: the operations
//! come from the handlers' `#[utoipa::path]` attributes (paths and methods from their route macros),
//! the schemas from the request and response types themselves.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, OAuthErrorBody};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(spec);
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "Self-hosted authorization server: OAuth 2.0, API keys and JWT in one binary. \
            Errors of the JSON API are `{\"error\", \"message\", \"request_id\"}`; errors of the OAuth \
            endpoints are RFC 6749 `{\"error\", \"error_description\"}` with `message` and `request_id`. \
            Every response carries `X-Request-Id`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(spec),
    components(schemas(ErrorBody, OAuthErrorBody)),
    tags(
        (name = "keys", description = "API keys: verify, create, list, rotate, revoke"),
        (name = "forward-auth", description = "Forward authentication for gateways"),
        (name = "users", description = "User accounts (administrators)"),
        (name = "oauth", description = "OAuth 2.0 token, revocation, introspection and metadata"),
        (name = "ops", description = "Liveness, readiness and this description"),
    )
)]
struct Root;

/// The whole document: this module's root and every feature's operations.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = Root::openapi();
    for part in [
        crate::ops::openapi(),
        crate::gateway::Docs::openapi(),
        crate::apikeys::openapi(),
        crate::oauth::openapi(),
        crate::jwt::openapi(),
        crate::accounts::openapi(),
    ] {
        doc.merge(part);
    }
    // After the merge: the conventions hold for every operation.
    Conventions.modify(&mut doc);
    doc
}

/// The document as JSON, built once per process.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_json()
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    })
}

/// This document.
#[utoipa::path(
    operation_id = "openapi",
    tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 description of the JSON endpoints",
        body = Object, content_type = "application/json"))
)]
#[get("/openapi.json")]
async fn spec() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .content_type("application/json")
        .body(json())
}

/// Where `AppError::render` puts an error, and the headers the server adds, applied to every operation.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API key (`Authorization: Bearer sk_live_…`), or for forward-auth a JWT access token",
            ))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        components.add_security_scheme(
            "x_api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key in the `X-API-Key` header",
            ))),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::accounts::SESSION_COOKIE,
                "An administrator's session cookie (set by `POST /login`)",
            ))),
        );
        let basic = HttpBuilder::new()
            .scheme(HttpAuthScheme::Basic)
            .description(Some(
                "OAuth client authentication `client_secret_basic` (RFC 6749 §2.3.1); \
                 `client_secret_post` and client assertions go in the form",
            ))
            .build();
        components.add_security_scheme("client_basic", SecurityScheme::Http(basic));

        for (path, item) in doc.paths.paths.iter_mut() {
            let oauth = crate::error::OAUTH_JSON_ENDPOINTS.contains(&path.as_str());
            let ops: Vec<(&str, &mut Operation)> = [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("put", &mut item.put),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ]
            .into_iter()
            .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
            .collect();
            // A handler that serves several methods (`method(get, post)`) gave each the same id:
            // operation ids must be unique, so each gets its method as a suffix.
            let shared = ops.len() > 1
                && ops
                    .windows(2)
                    .all(|w| w[0].1.operation_id == w[1].1.operation_id);
            for (method, op) in ops {
                if shared && let Some(id) = &mut op.operation_id {
                    id.push('_');
                    id.push_str(method);
                }
                conventions(op, oauth);
            }
        }
    }
}

fn integer_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::Integer))
        .description(Some(description))
        .build()
}

fn string_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(description))
        .build()
}

/// Every error response gets the body `request::RequestScope` renders (RFC 6749's on the OAuth form
/// endpoints), and the headers `AppError::render` adds to its status; every response gets
/// `X-Request-Id`.
fn conventions(op: &mut Operation, oauth: bool) {
    // `request::RequestScope` bounds every body in size and time.
    if op.request_body.is_some() {
        let answers = &mut op.responses.responses;
        for (status, description) in [
            ("408", "The body did not arrive within TESSERA_BODY_TIMEOUT"),
            ("413", "The body is larger than TESSERA_BODY_LIMIT"),
        ] {
            if !answers.contains_key(status) {
                answers.insert(
                    status.to_owned(),
                    RefOr::T(utoipa::openapi::Response::new(description)),
                );
            }
        }
    }
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        response.headers.insert(
            "X-Request-Id".to_owned(),
            string_header("The request's id (the caller's when it sent a sane one)"),
        );
        let code: u16 = status.parse().unwrap_or(0);
        if code < 400 {
            continue;
        }
        if response.content.is_empty() {
            let schema = if oauth { "OAuthErrorBody" } else { "ErrorBody" };
            response.content.insert(
                "application/json".to_owned(),
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            );
        }
        match code {
            401 => {
                response.headers.insert(
                    "WWW-Authenticate".to_owned(),
                    string_header(
                        "The scheme to authenticate with (`Bearer`, or `Basic` for OAuth clients)",
                    ),
                );
            }
            429 => {
                response.headers.insert(
                    "Retry-After".to_owned(),
                    integer_header("Seconds to wait before trying again"),
                );
                response.headers.insert(
                    "X-RateLimit-Limit".to_owned(),
                    integer_header("The limit that was reached (when there is one to name)"),
                );
                response
                    .headers
                    .insert("X-RateLimit-Remaining".to_owned(), integer_header("0"));
                response.headers.insert(
                    "X-RateLimit-Reset".to_owned(),
                    integer_header("When the limit is full again (Unix seconds)"),
                );
            }
            503 => {
                response.headers.insert(
                    "Retry-After".to_owned(),
                    integer_header("Seconds to wait before trying again"),
                );
            }
            _ => {}
        }
    }
}
