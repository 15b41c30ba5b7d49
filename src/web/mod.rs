//! The static files of the pages and the dashboard (page plumbing shared with the features is in
//! [`crate::pages`]).

use actix_web::{HttpResponse, get, web};

pub use crate::pages::{AFTER_SIGN_IN, CSRF_COOKIE, csrf_token, html, new_csrf, verify_csrf};

pub mod dashboard;
pub mod flash;

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
