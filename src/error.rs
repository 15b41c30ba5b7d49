//! `AppError`, the one error type of every handler, and what it renders to: the JSON error body on
//! APIs, an HTML page on the routes a browser visits (the choice is made here, by path, for every
//! error the app answers with, see [`Surface`]).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use askama::Template as _;
use serde::Serialize;

use crate::i18n::{self, Detail, Lang};

/// Everything a request can fail with. The `code` of each variant is the `error` field of the body.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 400 with a catalogue code (`invalid_json`, `invalid_form`, `invalid_email`, …) and an optional detail.
    #[error("bad request: {code}")]
    BadRequest {
        code: &'static str,
        detail: Option<Detail>,
    },
    #[error("payload too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    /// 408: the request body did not arrive in full within `seconds` (`TESSERA_BODY_TIMEOUT`).
    #[error("request body timed out after {seconds}s")]
    RequestTimeout { seconds: u64 },
    #[error("unsupported media type, expected {expected}")]
    UnsupportedMediaType { expected: &'static str },
    /// 415: the body came with a `Content-Encoding` (gzip, br, …); bodies are read as sent, never
    /// decompressed.
    #[error("unsupported content encoding")]
    UnsupportedEncoding,
    #[error("unauthenticated: {0}")]
    Unauthorized(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 403 with a catalogue code and a detail (the environment, the audience, …).
    #[error("forbidden: {code}")]
    ForbiddenDetail { code: &'static str, detail: Detail },
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 503: slow work (password hashing) has no free place now; the request may be retried soon.
    #[error("busy")]
    Busy,
    /// An RFC 6749 error from an OAuth endpoint, rendered as `{error, error_description, message}`:
    /// `error_description` in plain ASCII English as the RFC requires, `message` in the caller's language.
    #[error("oauth error {error}")]
    OAuth {
        status: StatusCode,
        error: &'static str,
        detail: Option<Detail>,
    },
    /// 429: the caller's limit is used up; `Retry-After` says when to come back, and the
    /// `X-RateLimit-*` headers name the limit (`limit` 0: none to name) and when it is full again.
    #[error("rate limited")]
    RateLimited {
        retry_after: u64,
        limit: u32,
        reset: i64,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// 400 with a catalogue code and the detail of its message.
    pub fn bad_request(code: &'static str, detail: impl Into<Detail>) -> Self {
        Self::BadRequest {
            code,
            detail: Some(detail.into()),
        }
    }

    /// 403 with a catalogue code and a detail for its message.
    pub fn forbidden(code: &'static str, detail: impl Into<Detail>) -> Self {
        Self::ForbiddenDetail {
            code,
            detail: detail.into(),
        }
    }

    /// An OAuth error with a status chosen by RFC 6749 §5.2 (401 for `invalid_client`, else 400).
    pub fn oauth(error: &'static str, detail: impl Into<Detail>) -> Self {
        Self::oauth_with(error, Some(detail.into()))
    }

    /// An OAuth error whose code says it all (no detail).
    pub fn oauth_bare(error: &'static str) -> Self {
        Self::oauth_with(error, None)
    }

    fn oauth_with(error: &'static str, detail: Option<Detail>) -> Self {
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        Self::OAuth {
            status,
            error,
            detail,
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BadRequest { code, .. } | Self::ForbiddenDetail { code, .. } => code,
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::RequestTimeout { .. } => "request_timeout",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::UnsupportedEncoding => "unsupported_content_encoding",
            Self::Unauthorized(code) | Self::Forbidden(code) | Self::Conflict(code) => code,
            Self::Unavailable(_) => "service_unavailable",
            Self::Busy => "server_busy",
            Self::OAuth { error, .. } => error,
            Self::RateLimited { .. } => "rate_limited",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The RFC 6750 §3 challenge of a refusal on a Bearer-protected resource: bare when no
    /// credential came, `error="invalid_token"` when the one presented is not good,
    /// `error="insufficient_scope"` (403) when it lacks a scope.
    fn bearer_challenge(&self) -> Option<&'static str> {
        match self {
            Self::Unauthorized(
                "invalid_api_key" | "expired_api_key" | "revoked_api_key" | "disabled_api_key"
                | "invalid_token",
            ) => Some(r#"Bearer realm="tessera", error="invalid_token""#),
            Self::Unauthorized(_) => Some(r#"Bearer realm="tessera""#),
            Self::Forbidden("insufficient_permissions" | "insufficient_scope")
            | Self::ForbiddenDetail {
                code: "insufficient_permissions" | "insufficient_scope",
                ..
            } => Some(r#"Bearer realm="tessera", error="insufficient_scope""#),
            _ => None,
        }
    }

    /// The detail of this error's message, if it has one.
    pub fn detail(&self) -> Option<Detail> {
        match self {
            Self::BadRequest { detail, .. } | Self::OAuth { detail, .. } => detail.clone(),
            Self::ForbiddenDetail { detail, .. } => Some(detail.clone()),
            Self::PayloadTooLarge { limit } => Some(Detail::Bytes { n: *limit }),
            Self::RequestTimeout { seconds } => Some(Detail::Seconds { n: *seconds }),
            Self::UnsupportedMediaType { expected } => Some(Detail::Value {
                value: (*expected).to_owned(),
            }),
            Self::RateLimited { retry_after, .. } => Some(Detail::Seconds { n: *retry_after }),
            _ => None,
        }
    }

    /// This error's user-facing message in `lang` (the `message` field of the body).
    pub fn message(&self, lang: Lang) -> String {
        i18n::message(lang, self.code(), self.detail().as_ref())
    }

    /// The response for this error in `lang`, carrying `request_id`. 5xx causes are logged, never sent.
    pub fn render(&self, lang: Lang, request_id: &str) -> HttpResponse {
        self.render_as(lang, request_id, false)
    }

    /// As [`AppError::render`]; with `oauth` (the OAuth JSON endpoints), every error, a 413 or a 429
    /// included, in RFC 6749's shape with `error_description`.
    pub fn render_as(&self, lang: Lang, request_id: &str, oauth: bool) -> HttpResponse {
        if self.status_code().is_server_error() && !matches!(self, Self::Busy) {
            tracing::error!(request_id, error = %self, "request failed");
        }
        self.response(lang, request_id, oauth)
    }

    /// The response of [`AppError::render_as`], without logging.
    fn response(&self, lang: Lang, request_id: &str, oauth: bool) -> HttpResponse {
        let status = self.status_code();
        let mut res = HttpResponse::build(status);
        res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        res.insert_header((header::CONTENT_LANGUAGE, lang.tag()));
        if let Self::RateLimited {
            retry_after,
            limit,
            reset,
        } = self
        {
            res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            if *limit > 0 {
                res.insert_header(("X-RateLimit-Limit", limit.to_string()));
                res.insert_header(("X-RateLimit-Remaining", "0"));
                res.insert_header(("X-RateLimit-Reset", reset.to_string()));
            }
        }
        if let Self::Unavailable(_) | Self::Busy = self {
            res.insert_header((header::RETRY_AFTER, "1"));
        }
        if let Some(challenge) = self.bearer_challenge() {
            res.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        if let Self::OAuth { error, .. } = self
            && *error == "invalid_client"
        {
            res.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="tessera""#));
        }
        if oauth || matches!(self, Self::OAuth { .. }) {
            let error = self.code();
            res.insert_header((header::PRAGMA, "no-cache"));
            let english = self.message(Lang::En);
            // RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E only.
            let ascii: String = english
                .chars()
                .map(|c| match c {
                    ' ' | '!' | '#'..='[' | ']'..='~' => c,
                    _ => '?',
                })
                .collect();
            return res.json(OAuthErrorBody {
                error,
                error_description: &ascii,
                message: self.message(lang),
                request_id,
            });
        }
        res.json(ErrorBody {
            error: self.code(),
            message: self.message(lang),
            request_id,
        })
    }
}

/// Who reads an error: a program (JSON) or a person in a browser (an HTML page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Api,
    /// The OAuth JSON endpoints: every error in RFC 6749's shape (`error_description`).
    OAuth,
    Page,
}

/// The OAuth endpoints whose errors are RFC 6749 JSON (`error_description`), whatever the error
/// (a 413 or a 429 included).
pub const OAUTH_JSON_ENDPOINTS: [&str; 3] = ["/oauth/token", "/oauth/revoke", "/oauth/introspect"];

/// The routes a browser visits: their errors are pages, never JSON. `/` itself, and every path under
/// these prefixes (unknown ones included, so `/dashboard/nope` is a page too).
const PAGE_PREFIXES: [&str; 6] = [
    "/dashboard",
    "/account",
    "/login",
    "/logout",
    "/oauth/authorize",
    "/oauth/logout",
];

impl Surface {
    /// The surface of a request path: a page for `/` and the [`PAGE_PREFIXES`] (the prefix itself,
    /// or followed by `/`, `?`, or for `/account` an `s`), JSON for everything else.
    pub fn of(path: &str) -> Self {
        let page = path == "/"
            || PAGE_PREFIXES.iter().any(|prefix| {
                path.strip_prefix(prefix).is_some_and(|rest| {
                    rest.is_empty()
                        || rest.starts_with('/')
                        || (*prefix == "/account" && (rest == "s" || rest.starts_with("s/")))
                })
            });
        if page {
            Self::Page
        } else if OAUTH_JSON_ENDPOINTS.contains(&path) {
            Self::OAuth
        } else {
            Self::Api
        }
    }
}

/// An HTML page with the headers every Tessera page carries (no framing, no inline script, no
/// referrer, not cached).
pub fn html_response(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

/// The error page (templates/error/page.html): a title for the status, the catalogue message, the
/// request id to quote, and the way back.
#[derive(askama::Template)]
#[template(path = "error/page.html")]
struct ErrorPage<'a> {
    lang: &'static str,
    code: &'a str,
    title: String,
    message: String,
    request_id_label: String,
    request_id: &'a str,
    home_label: String,
}

/// The catalogue key of an error page's title, by status.
fn page_title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "page_bad_request",
        401 => "page_unauthenticated",
        403 => "page_forbidden",
        404 => "page_not_found",
        405 => "page_method_not_allowed",
        429 => "page_too_many_requests",
        503 => "page_unavailable",
        s if s >= 500 => "page_server_error",
        _ => "page_request_refused",
    }
}

impl AppError {
    /// The response for this error on `surface`: [`AppError::render`] for APIs, an HTML page with
    /// the same status and headers (`Retry-After`, …) for pages.
    pub fn render_for(&self, surface: Surface, lang: Lang, request_id: &str) -> HttpResponse {
        let json = self.render_as(lang, request_id, surface == Surface::OAuth);
        if surface != Surface::Page {
            return json;
        }
        let status = json.status();
        let page = ErrorPage {
            lang: lang.tag(),
            code: self.code(),
            title: i18n::message(lang, page_title(status), None),
            // Details are catalogue entries too, in the page's language.
            message: self.message(lang),
            request_id_label: i18n::message(lang, "page_request_id", None),
            request_id,
            home_label: i18n::message(lang, "page_home", None),
        };
        let body = match page.render() {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(request_id, error = %e, "error page failed to render");
                return json;
            }
        };
        let mut res = html_response(status, body);
        for (name, value) in json.headers() {
            // A browser would answer a `WWW-Authenticate: Basic` challenge with a password dialog.
            let skip = [
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::WWW_AUTHENTICATE,
            ];
            if !skip.contains(name) {
                res.headers_mut().insert(name.clone(), value.clone());
            }
        }
        res
    }
}

/// The error body of the JSON API: a stable code, a message in the caller's language, the request id.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": "invalid_api_key", "message": "The API key is not valid.", "request_id": "req_0123456789abcdefghijklmn"}))]
pub struct ErrorBody<'a> {
    /// A stable, machine-readable code (`invalid_api_key`, `not_found`, `rate_limited`, …).
    error: &'a str,
    /// What went wrong, in the language negotiated from `Accept-Language`.
    message: String,
    /// The id of this request, also in the `X-Request-Id` header.
    request_id: &'a str,
}

/// An RFC 6749 §5.2 error body, with Tessera's `message` and `request_id` beside the standard fields.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": "invalid_client", "error_description": "unknown client, wrong secret or disabled client", "message": "unknown client, wrong secret or disabled client", "request_id": "req_0123456789abcdefghijklmn"}))]
pub struct OAuthErrorBody<'a> {
    /// The RFC 6749 error code (`invalid_request`, `invalid_client`, `invalid_grant`, …).
    error: &'a str,
    /// Plain ASCII English, as RFC 6749 requires.
    error_description: &'a str,
    /// The same in the caller's language.
    message: String,
    request_id: &'a str,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType { .. } | Self::UnsupportedEncoding => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::ForbiddenDetail { .. } => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::OAuth { status, .. } => *status,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Without the request context, and not logged: the request middleware re-renders it with the
    /// language and request id, and logs a 5xx then (once).
    fn error_response(&self) -> HttpResponse {
        self.response(Lang::En, "req_unknown", false)
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => Self::NotFound,
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                Self::Conflict("conflict")
            }
            // The request named a record that does not exist (an unknown owner, say): the
            // caller's mistake, not the server's.
            Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                Self::bad_request("invalid_request", Detail::ReferenceUnknown)
            }
            e if database_unavailable(&e) => Self::Unavailable(format!("database: {e}")),
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

/// Whether a database error says the database cannot serve now (a connection cut by a restart or
/// a failover, a server shutting down or starting up, a read-only replica, a busy SQLite file)
/// rather than that the request or the code is wrong: those are 503 with `Retry-After`, never 500.
pub fn database_unavailable(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as Kind, Error};
    match e {
        Error::DatabaseError(
            Kind::ClosedConnection | Kind::UnableToSendCommand | Kind::ReadOnlyTransaction,
            _,
        )
        | Error::BrokenTransactionManager => true,
        Error::RollbackErrorOnCommit { commit_error, .. } => database_unavailable(commit_error),
        Error::DatabaseError(_, info) => {
            // PostgreSQL's class 08 and 57P0x (admin or crash shutdown, cannot connect now) and
            // 53300 come as `Unknown`: diesel keeps no SQLSTATE, so their messages are matched.
            const UNAVAILABLE: [&str; 10] = [
                "terminating connection",
                "server closed the connection",
                "no connection to the server",
                "connection to server",
                "could not connect",
                "the database system is",
                "too many clients",
                "remaining connection slots",
                "database is locked",
                "database table is locked",
            ];
            let message = info.message().to_ascii_lowercase();
            UNAVAILABLE.iter().any(|m| message.contains(m))
        }
        _ => false,
    }
}

impl From<r2d2::Error> for AppError {
    fn from(e: r2d2::Error) -> Self {
        Self::Unavailable(format!("database pool: {e}"))
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::Internal(format!("blocking pool: {e}"))
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        Self::Internal(format!("template: {e}"))
    }
}

/// Maps actix's own errors (routing, extractors) onto `AppError` by what went wrong.
pub fn from_actix(err: &actix_web::Error, status: StatusCode, body_limit: usize) -> AppError {
    use actix_web::error::{JsonPayloadError, PayloadError, QueryPayloadError, UrlencodedError};
    if let Some(e) = err.as_error::<JsonPayloadError>() {
        return json_error(e);
    }
    if let Some(e) = err.as_error::<UrlencodedError>() {
        return form_error(e);
    }
    if let Some(e) = err.as_error::<QueryPayloadError>() {
        let QueryPayloadError::Deserialize(inner) = e else {
            return AppError::BadRequest {
                code: "invalid_query",
                detail: None,
            };
        };
        return AppError::bad_request("invalid_query", serde_detail(&inner.to_string()));
    }
    if let Some(PayloadError::Overflow) = err.as_error::<PayloadError>() {
        return AppError::PayloadTooLarge { limit: body_limit };
    }
    match status {
        StatusCode::NOT_FOUND => AppError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => AppError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge { limit: body_limit },
        StatusCode::UNAUTHORIZED => AppError::Unauthorized("unauthenticated"),
        StatusCode::FORBIDDEN => AppError::Forbidden("forbidden"),
        s if s.is_server_error() => AppError::Internal(err.to_string()),
        _ => AppError::BadRequest {
            code: "invalid_request",
            detail: None,
        },
    }
}

/// What a JSON body extractor failure means for the caller.
pub fn json_error(e: &actix_web::error::JsonPayloadError) -> AppError {
    use actix_web::error::JsonPayloadError as E;
    match e {
        E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => {
            AppError::PayloadTooLarge { limit: *limit }
        }
        E::ContentType => AppError::UnsupportedMediaType {
            expected: "application/json",
        },
        E::Deserialize(inner) if inner.is_data() => {
            let detail = match serde_detail(&inner.to_string()) {
                Detail::InvalidValue => Detail::JsonValue {
                    line: inner.line(),
                    column: inner.column(),
                },
                named => named,
            };
            AppError::bad_request("invalid_request", detail)
        }
        E::Deserialize(inner) => AppError::bad_request(
            "invalid_json",
            Detail::JsonSyntax {
                line: inner.line(),
                column: inner.column(),
            },
        ),
        _ => AppError::BadRequest {
            code: "invalid_json",
            detail: None,
        },
    }
}

/// What a urlencoded form extractor failure means for the caller.
pub fn form_error(e: &actix_web::error::UrlencodedError) -> AppError {
    use actix_web::error::UrlencodedError as E;
    match e {
        E::Overflow { limit, .. } => AppError::PayloadTooLarge { limit: *limit },
        E::ContentType => AppError::UnsupportedMediaType {
            expected: "application/x-www-form-urlencoded",
        },
        E::Parse(inner) => AppError::bad_request("invalid_form", serde_detail(&inner.to_string())),
        _ => AppError::BadRequest {
            code: "invalid_form",
            detail: None,
        },
    }
}

/// The field a serde error names, from its message (serde has no structured form of it): a missing
/// or unknown field, or a value not among the accepted ones; anything else is a wrong value.
fn serde_detail(message: &str) -> Detail {
    let quoted = |prefix: &str| -> Option<String> {
        let rest = &message[message.find(prefix)? + prefix.len()..];
        let name = &rest[..rest.find('`')?];
        Some(name.chars().take(64).collect())
    };
    if let Some(field) = quoted("missing field `") {
        Detail::MissingField { field }
    } else if let Some(field) = quoted("unknown field `") {
        Detail::UnknownField { field }
    } else if let Some(value) = quoted("unknown variant `") {
        Detail::UnknownVariant { value }
    } else {
        Detail::InvalidValue
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error};

    use super::*;

    #[test]
    fn a_5xx_is_logged_once_with_the_request_id() {
        crate::telemetry::capture::start();
        let err = AppError::internal("cause-of-one-5xx");
        // What actix does with a handler's error, then what the request middleware does with it.
        let first = err.error_response();
        let rendered = err.render_for(Surface::Api, Lang::En, "req_once5xx");
        assert_eq!(first.status(), 500);
        assert_eq!(rendered.status(), 500);
        let lines = crate::telemetry::capture::lines_with("cause-of-one-5xx");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("req_once5xx"), "{lines:?}");
    }

    #[test]
    fn browser_routes_get_pages_and_everything_else_json() {
        for page in [
            "/",
            "/dashboard",
            "/dashboard/nope",
            "/account",
            "/accounts/x",
            "/login",
            "/logout",
            "/oauth/authorize",
        ] {
            assert_eq!(Surface::of(page), Surface::Page, "{page}");
        }
        for oauth in OAUTH_JSON_ENDPOINTS {
            assert_eq!(Surface::of(oauth), Surface::OAuth, "{oauth}");
        }
        for api in [
            "/v1/keys",
            "/oauth/authorizer",
            "/dashboards",
            "/loginx",
            "/nothing",
            "/healthz",
        ] {
            assert_eq!(Surface::of(api), Surface::Api, "{api}");
        }
    }

    fn database(kind: DatabaseErrorKind, message: &str) -> Error {
        Error::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn a_database_that_cannot_serve_is_503_and_a_bad_query_is_500() {
        for unavailable in [
            database(
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
            database(
                DatabaseErrorKind::Unknown,
                "FATAL: the database system is shutting down",
            ),
            database(DatabaseErrorKind::ClosedConnection, "connection closed"),
            database(DatabaseErrorKind::Unknown, "database is locked"),
            database(DatabaseErrorKind::ReadOnlyTransaction, "read-only"),
            Error::BrokenTransactionManager,
        ] {
            let e = AppError::from(unavailable);
            assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE, "{e}");
            let res = e.render(Lang::En, "req_x");
            assert_eq!(
                res.headers().get(header::RETRY_AFTER),
                Some(&HeaderValue::from_static("1"))
            );
        }
        let bad = AppError::from(database(DatabaseErrorKind::Unknown, "syntax error"));
        assert_eq!(bad.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        let conflict = database(DatabaseErrorKind::UniqueViolation, "duplicate key");
        assert_eq!(AppError::from(conflict).status_code(), StatusCode::CONFLICT);
        let dangling = database(DatabaseErrorKind::ForeignKeyViolation, "FOREIGN KEY failed");
        assert_eq!(
            AppError::from(dangling).status_code(),
            StatusCode::BAD_REQUEST
        );
    }
}
