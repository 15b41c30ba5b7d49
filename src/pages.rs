//! Page plumbing shared by every feature that renders HTML (sign-in, consent, dashboard): HTML
//! responses with the security headers, CSRF tokens for forms, and where a sign-in may return to.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::error::AppError;
use crate::state::AppState;

pub const CSRF_COOKIE: &str = "tessera_csrf";
const CSRF_PURPOSE: &str = "csrf-form-token";

/// An HTML page with the headers every Tessera page carries (no framing, no inline script, no referrer).
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    crate::error::html_response(status, body)
}

/// A page with a form (as [`html`]), setting the CSRF cookie when [`csrf_token`] made one for it.
pub fn html_with_csrf(
    status: StatusCode,
    body: String,
    csrf_cookie: Option<Cookie<'static>>,
) -> Result<HttpResponse, AppError> {
    let mut res = html(status, body);
    if let Some(c) = csrf_cookie {
        res.add_cookie(&c).map_err(AppError::internal)?;
    }
    Ok(res)
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

/// Where a sign-in goes when it was not sent from elsewhere: the dashboard.
pub const AFTER_SIGN_IN: &str = "/dashboard";

/// A same-origin place to return to after sign-in, as a local path: a path on this site, or an
/// absolute URL on the issuer's origin (reduced to its path); anything else (other hosts, `//`,
/// other schemes, backslashes, control characters) becomes [`AFTER_SIGN_IN`].
pub fn safe_return_path(issuer: &url::Url, candidate: Option<&str>) -> String {
    let local = |p: &str| {
        p.starts_with('/')
            && !p.starts_with("//")
            && !p.contains('\\')
            && !p.chars().any(char::is_control)
            && p.len() <= 2048
    };
    match candidate {
        Some(p) if local(p) => p.to_owned(),
        Some(p) => match url::Url::parse(p) {
            Ok(u) if u.origin() == issuer.origin() => {
                let path = match u.query() {
                    Some(q) => format!("{}?{q}", u.path()),
                    None => u.path().to_owned(),
                };
                if local(&path) {
                    path
                } else {
                    AFTER_SIGN_IN.to_owned()
                }
            }
            _ => AFTER_SIGN_IN.to_owned(),
        },
        None => AFTER_SIGN_IN.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_return_path;

    #[test]
    fn only_same_origin_places_are_returned_to() {
        let issuer = url::Url::parse("https://auth.example.com").expect("url");
        let back = |p: &str| safe_return_path(&issuer, Some(p));
        assert_eq!(back("/oauth/authorize?x=1"), "/oauth/authorize?x=1");
        assert_eq!(
            back("https://auth.example.com/dashboard/keys?a=b"),
            "/dashboard/keys?a=b"
        );
        for bad in [
            "//evil.example",
            "https://evil.example",
            "https://auth.example.com.evil.example/x",
            "http://auth.example.com/x",
            "/\\evil",
            "evil",
            "javascript:alert(1)",
        ] {
            assert_eq!(back(bad), "/dashboard", "{bad}");
        }
        assert_eq!(safe_return_path(&issuer, None), "/dashboard");
    }
}
