//! Shared page plumbing (HTML responses with security headers, CSRF tokens, static files) and the
//! dashboard.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};

use crate::error::AppError;
use crate::state::AppState;

pub const CSRF_COOKIE: &str = "tessera_csrf";
const CSRF_PURPOSE: &str = "csrf-form-token";

pub mod dashboard;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(stylesheet).service(script);
    dashboard::configure(cfg);
}

/// The dashboard's only script (copy buttons), served from here so the CSP can stay `script-src 'self'`.
#[get("/static/tessera.js")]
async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../static/tessera.js"))
}

#[get("/static/tessera.css")]
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../static/tessera.css"))
}

/// An HTML page with the headers every Tessera page carries (no framing, no inline script, no referrer).
pub fn html(status: StatusCode, body: String) -> HttpResponse {
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

/// A CSRF token for a form on this page, and the cookie to set when the browser has none yet.
///
/// The cookie holds 256 random bits; the token is their HMAC under the server pepper. A cross-site page
/// can neither read the cookie nor compute the token.
pub fn csrf_token(state: &AppState, req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    match req.cookie(CSRF_COOKIE).filter(|c| c.value().len() == 43) {
        Some(c) => (state.hasher.tag(CSRF_PURPOSE, c.value().as_bytes()), None),
        None => new_csrf(state),
    }
}

/// A fresh CSRF cookie and its token (at login and logout the binding is renewed).
pub fn new_csrf(state: &AppState) -> (String, Option<Cookie<'static>>) {
    let value = crate::crypto::random_token();
    let token = state.hasher.tag(CSRF_PURPOSE, value.as_bytes());
    let cookie = Cookie::build(CSRF_COOKIE, value)
        .path("/")
        .http_only(true)
        .secure(state.settings.secure_cookies())
        .same_site(SameSite::Lax)
        .finish();
    (token, Some(cookie))
}

/// 403 `csrf_failed` unless `submitted` is the token for this browser's CSRF cookie.
pub fn verify_csrf(state: &AppState, req: &HttpRequest, submitted: &str) -> Result<(), AppError> {
    let ok = req.cookie(CSRF_COOKIE).is_some_and(|c| {
        state
            .hasher
            .verify_tag(CSRF_PURPOSE, c.value().as_bytes(), submitted)
    });
    if ok {
        Ok(())
    } else {
        Err(AppError::Forbidden("csrf_failed"))
    }
}

/// A local path to return to after sign-in; anything else (other hosts, `//`, schemes) becomes `/`.
pub fn safe_return_path(candidate: Option<&str>) -> String {
    match candidate {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control)
                && p.len() <= 2048 =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_return_path;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(
            safe_return_path(Some("/oauth/authorize?x=1")),
            "/oauth/authorize?x=1"
        );
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "evil"] {
            assert_eq!(safe_return_path(Some(bad)), "/");
        }
        assert_eq!(safe_return_path(None), "/");
    }
}
