//! Per-request context: request id, language, log span, metrics, the body-size gate and the JSON error shape.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, web};
use tracing::Instrument as _;

use crate::crypto::random_id;
use crate::error::{self, AppError};
use crate::i18n::Lang;
use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Who is asking, in which language, under which request id. Available to handlers as an extractor.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub id: String,
    pub lang: Lang,
}

impl RequestContext {
    /// The context of `req`, or a fresh one when the middleware did not run (never in the real app).
    pub fn of(req: &HttpRequest) -> Self {
        req.extensions()
            .get::<RequestContext>()
            .cloned()
            .unwrap_or_else(|| RequestContext {
                id: new_request_id(),
                lang: Lang::En,
            })
    }
}

impl FromRequest for RequestContext {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(Self::of(req)))
    }
}

fn new_request_id() -> String {
    random_id("req", 24)
}

/// A caller's id is kept when it is short and plain (it ends up in logs and headers).
fn sane_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| s.to_owned())
}

/// The outermost middleware. Every response leaves with `X-Request-Id`; every error leaves as
/// `{"error", "message", "request_id"}` in the caller's language.
pub async fn context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(sane_request_id)
        .unwrap_or_else(new_request_id);
    let lang = Lang::negotiate(
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    req.extensions_mut().insert(RequestContext {
        id: id.clone(),
        lang,
    });
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let body_limit = state.as_ref().map_or(64 * 1024, |s| s.settings.body_limit);
    let method = req.method().to_string();
    let span =
        tracing::info_span!("request", request_id = %id, method = %method, path = %req.path());

    // Refuse an oversized body before any handler reads it (chunked bodies are capped by the extractors).
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut res = if declared.is_some_and(|n| n > body_limit as u64) {
        let body = AppError::PayloadTooLarge { limit: body_limit }.render(lang, &id);
        req.into_response(body)
    } else {
        next.call(req)
            .instrument(span.clone())
            .await?
            .map_into_boxed_body()
    };

    if let Some(err) = res.response().error() {
        let rendered = match err.as_error::<AppError>() {
            Some(app) => app.render(lang, &id),
            None => error::from_actix(err, res.status(), body_limit).render(lang, &id),
        };
        res = res.into_response(rendered);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }

    let status = res.status().as_u16();
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let elapsed = started.elapsed();
    if let Some(state) = &state {
        state
            .metrics
            .observe(&method, &route, status, elapsed.as_secs_f64());
    }
    let micros = elapsed.as_micros() as u64;
    span.in_scope(|| {
        if route == "/healthz" || route == "/metrics" || route == "/readyz" {
            tracing::debug!(status, micros, route = %route, "request finished");
        } else {
            tracing::info!(status, micros, route = %route, "request finished");
        }
    });
    Ok(res)
}

/// The client's IP: the peer address, or, when the peer is a trusted proxy
/// (`TESSERA_TRUSTED_PROXIES`), the nearest `X-Forwarded-For` address that is not a trusted proxy.
pub fn client_ip(req: &actix_web::HttpRequest) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
        return "unknown".to_owned();
    };
    let trusted: &[ipnet::IpNet] = req
        .app_data::<actix_web::web::Data<crate::state::AppState>>()
        .map(|s| s.settings.trusted_proxies.as_slice())
        .unwrap_or(&[]);
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<std::net::IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|ip| ip.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(forwarded.first())
        .unwrap_or(&peer)
        .to_string()
}
