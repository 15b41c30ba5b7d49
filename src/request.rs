//! Per-request context: request id, language, log span, metrics, the body-size and body-time gates,
//! the security headers and the JSON error shape.

use std::cell::{Cell, RefCell};
use std::future::Future as _;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{ConnectionType, Method, StatusCode};
use actix_web::rt::time::Sleep;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use tracing::Instrument as _;

use crate::crypto::{BASE62, random_bytes};
use crate::error::{self, AppError};
use crate::i18n::Lang;
use crate::metrics::Metrics;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What [`RequestScope`] and [`client_ip`] read of the settings and the node: registered by `startup` as
/// `web::Data<Edge>` on every app (this module sits below the features and `AppState`). Without it the
/// defaults hold: 64 KiB bodies within 10 s, no trusted proxy, nothing counted.
#[derive(Debug, Clone)]
pub struct Edge {
    pub body_limit: usize,
    pub body_timeout: Duration,
    /// `TESSERA_TRUSTED_PROXIES`.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where each request is counted (`tessera_http_requests_total`, …).
    pub metrics: Option<Metrics>,
}

impl Edge {
    pub fn new(settings: &crate::config::Settings, metrics: &Metrics) -> Self {
        Self {
            body_limit: settings.body_limit,
            body_timeout: settings.body_timeout,
            trusted_proxies: settings.trusted_proxies.clone(),
            metrics: Some(metrics.clone()),
        }
    }
}

/// Who is asking, in which language, under which request id. Available to handlers as an extractor.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub id: RequestId,
    pub lang: Lang,
}

/// A request id: one of ours (`req_` and 24 characters), held inline, so that making, storing and
/// handing it over allocates nothing (it is made on every request), or a caller's (at most 128 plain
/// ASCII characters).
#[derive(Clone)]
pub enum RequestId {
    Ours([u8; 28]),
    Theirs(Box<str>),
}

impl RequestId {
    pub fn as_str(&self) -> &str {
        match self {
            // Built from ASCII only (`new_request_id`); the fallback keeps this free of a panic.
            Self::Ours(bytes) => std::str::from_utf8(bytes).unwrap_or_default(),
            Self::Theirs(text) => text,
        }
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

thread_local! {
    /// This thread's request counter, from a random start drawn once per thread: request ids need
    /// to be unique (they are not secrets), and asking the OS for 32 random bytes on every request
    /// was a tenth of forward-auth's work beyond its floor.
    static NEXT_REQUEST: Cell<u64> = Cell::new(u64::from_le_bytes(random_bytes::<8>()));
}

/// SplitMix64's output function, a bijection of `u64`: consecutive counters give unrelated-looking ids.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `req_` and 24 base62 characters, unique per request: this thread's next counter value, mixed three
/// ways (two threads or nodes meet only if their random starts fall within the requests they serve,
/// and then only on the same counter value).
fn new_request_id() -> RequestId {
    let n = NEXT_REQUEST.with(|c| {
        let n = c.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        c.set(n);
        n
    });
    let mut out = *b"req_000000000000000000000000";
    for (i, chunk) in out[4..].chunks_exact_mut(8).enumerate() {
        // 8 characters of 6 bits each (62 and 63 fold onto 0 and 1: ids need not be uniform).
        let mut x = mix(n ^ (i as u64).wrapping_mul(0xd6e8_feb8_6659_fd93));
        for c in chunk {
            *c = ID_ALPHABET[(x & 63) as usize];
            x >>= 6;
        }
    }
    RequestId::Ours(out)
}

/// Base62 with its first two characters again at 62 and 63, indexed by 6 bits.
const ID_ALPHABET: [u8; 64] = {
    let mut a = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        a[i] = BASE62[i % 62];
        i += 1;
    }
    a
};

/// A header's text when it is visible ASCII, as `HeaderValue::to_str` gives it, checked a word at a
/// time rather than a byte at a time (a sixth of a token request's header work). A `HeaderValue`
/// holds no control character but tab (httparse refuses them in a request, `HeaderValue` when one
/// is made), so being ASCII is all that is left to check.
pub fn header_text(v: &HeaderValue) -> Option<&str> {
    let bytes = v.as_bytes();
    if bytes.is_ascii() {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

/// A caller's id is kept when it is short and plain (it ends up in logs and headers).
fn sane_request_id(v: &HeaderValue) -> Option<RequestId> {
    let s = header_text(v)?;
    let ok = (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| RequestId::Theirs(s.into()))
}

/// Headers every response carries, errors included: they are added here, by the outermost
/// middleware, so nothing the app answers leaves without them. A value a handler set is kept.
const SECURITY_HEADERS: [(HeaderName, HeaderValue); 2] = [
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
];

// The OAuth endpoints answer errors in RFC 6749's shape, a wrong method included.
use crate::error::OAUTH_JSON_ENDPOINTS;

/// What became of a request body, shared between its stream and the middleware.
#[derive(Default)]
struct BodyWatch {
    /// The deadline passed before the body was read in full.
    expired: Cell<bool>,
    /// The rest of a body that was not read to its end (timed out, refused, or ignored by the
    /// handler). The response holds it until it is sent: the server then closes the connection
    /// (as actix does for an unread `Content-Length` body) instead of reading on, possibly forever,
    /// a chunked body that never ends.
    unread: RefCell<Option<Payload>>,
}

/// A request body that must arrive in full by a deadline. When the deadline passes first, the
/// stream ends with an error, so whichever extractor or handler reads it stops waiting.
struct BodyDeadline {
    inner: Payload,
    deadline: actix_web::rt::time::Instant,
    /// The timer, made at the second poll that finds the body incomplete; the deadline itself is
    /// fixed when the request starts (no second clock read).
    timer: Option<Pin<Box<Sleep>>>,
    /// The body was found incomplete once, and the task asked to be polled again instead of making
    /// the timer: actix polls the payload before it feeds the body it has already read, so the
    /// first look at a body that came with its request finds it empty, and the second finds it
    /// whole (a timer per request was a fifth of the middleware's work on a small JSON body).
    looked: bool,
    finished: bool,
    watch: Rc<BodyWatch>,
}

impl futures_util::Stream for BodyDeadline {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished || self.watch.expired.get() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            self.finished = item.is_none();
            return Poll::Ready(item);
        }
        if self.timer.is_none() && !self.looked {
            // Polled again soon whatever comes: the wait cannot outlive the deadline unwatched.
            self.looked = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(actix_web::rt::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.watch.expired.set(true);
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the request body did not arrive in time",
        )))))
    }
}

impl Drop for BodyDeadline {
    fn drop(&mut self) {
        if !self.finished {
            let rest = std::mem::replace(&mut self.inner, Payload::None);
            *self.watch.unread.borrow_mut() = Some(rest);
        }
    }
}

/// A response body that keeps the unread rest of the request body alive until it is sent.
struct HoldingBody {
    body: BoxBody,
    _unread: Payload,
}

impl MessageBody for HoldingBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

/// Puts a deadline of `timeout` from `started` on reading the body of `req`, when it has one.
fn watch_body(
    req: &mut ServiceRequest,
    started: Instant,
    timeout: Duration,
) -> Option<Rc<BodyWatch>> {
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        req.set_payload(payload);
        None
    } else {
        let watch = Rc::new(BodyWatch::default());
        req.set_payload(Payload::Stream {
            payload: Box::pin(BodyDeadline {
                inner: payload,
                deadline: (started + timeout).into(),
                timer: None,
                looked: false,
                finished: false,
                watch: watch.clone(),
            }),
        });
        Some(watch)
    }
}

/// The error a response without an `AppError` stands for, when it is one: a request no route
/// matched. The app's last resource matches every path and has no routes (see `startup`): actix
/// answers it 405 with `Allow` listing the methods of the resources whose path matched this one (a
/// wrong method), or 405 without `Allow` when no resource has this path (which is a 404).
fn unrouted(res: &ServiceResponse<BoxBody>) -> Option<AppError> {
    if res.status() != StatusCode::METHOD_NOT_ALLOWED {
        return None;
    }
    if !res.headers().contains_key(header::ALLOW) {
        return Some(AppError::NotFound);
    }
    Some(if OAUTH_JSON_ENDPOINTS.contains(&res.request().path()) {
        AppError::OAuth {
            status: StatusCode::METHOD_NOT_ALLOWED,
            error: "method_not_allowed",
            detail: None,
        }
    } else {
        AppError::MethodNotAllowed
    })
}

/// The outermost middleware. Every response leaves with `X-Request-Id` and the security headers;
/// every error leaves as `{"error", "message", "request_id"}` in the caller's language (RFC 6749
/// errors with `error_description` too), or as an HTML page on the browser's routes; a body that
/// does not arrive within `TESSERA_BODY_TIMEOUT` gets 408 and its connection is closed.
///
/// Written as a `Transform` rather than with `middleware::from_fn`: the app's service is called
/// directly (no boxed `Next` in between, no reference counts taken per request), the work before
/// the handler runs in `call` rather than in the future, and what only errors need is out of line,
/// so the code every request runs stays small (instruction-cache misses were most of what
/// separated the read paths from their floors).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestScope;

impl<S, B> Transform<S, ServiceRequest> for RequestScope
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = RequestScopeService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(RequestScopeService { service }))
    }
}

/// [`RequestScope`] around the app's service.
#[derive(Debug)]
pub struct RequestScopeService<S> {
    service: S,
}

/// What the work after the handler needs from the work before it.
struct Scope {
    started: Instant,
    /// The response's `X-Request-Id` (the caller's id when it was plain, else a new one).
    id_header: Option<HeaderValue>,
    lang: Lang,
    method: Method,
    surface: error::Surface,
    span: tracing::Span,
    body_limit: usize,
    body_timeout: Duration,
    body: Option<Rc<BodyWatch>>,
}

impl Scope {
    fn id(&self) -> &str {
        self.id_header
            .as_ref()
            .and_then(header_text)
            .unwrap_or_default()
    }
}

impl<S, B> Service<ServiceRequest> for RequestScopeService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<ServiceResponse<BoxBody>, actix_web::Error>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let id = req
            .headers()
            .get(&REQUEST_ID)
            .and_then(sane_request_id)
            .unwrap_or_else(new_request_id);
        let lang = Lang::negotiate(
            req.headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(header_text),
        );
        // The response's `X-Request-Id`, made now: the context owns the id from here on (a
        // caller's id was checked to be plain ASCII).
        let id_header = HeaderValue::from_bytes(id.as_str().as_bytes()).ok();
        req.extensions_mut().insert(RequestContext { id, lang });
        // Read here and again at the end, not cloned: two worker threads counting the same `Arc`
        // up and down on every request share a cache line.
        let edge = req.app_data::<web::Data<Edge>>();
        let body_limit = edge.map_or(64 * 1024, |e| e.body_limit);
        let body_timeout = edge.map_or(Duration::from_secs(10), |e| e.body_timeout);
        let method = req.method().clone();
        // JSON for programs, an HTML page on the routes a browser visits (`error::Surface`).
        let surface = error::Surface::of(req.path());
        let id_text = id_header.as_ref().and_then(header_text).unwrap_or_default();
        // `grant_type`: recorded by the token endpoint (a span of its own would grow every token
        // request's boxed future).
        let span = tracing::info_span!("request", request_id = %id_text, method = %method.as_str(),
            path = %req.path(), grant_type = tracing::field::Empty);
        let mut scope = Scope {
            started,
            id_header,
            lang,
            method,
            surface,
            span,
            body_limit,
            body_timeout,
            body: None,
        };

        // Refuse an oversized body before any handler reads it (chunked bodies are capped by the
        // extractors).
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(header_text)
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > body_limit as u64) {
            return Box::pin(std::future::ready(Ok(too_large(scope, req))));
        }
        // Bodies are read as sent (actix-web is built without its decompression): a compressed
        // one is refused here, not parsed as the form or JSON it is not. Only a body: a proxy's
        // forward-auth request copies the client's headers, `Content-Encoding` too, without its body.
        if req
            .headers()
            .get(header::CONTENT_ENCODING)
            .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
            && (declared.is_some_and(|n| n > 0)
                || req.headers().contains_key(header::TRANSFER_ENCODING))
        {
            return Box::pin(std::future::ready(Ok(encoded(scope, req))));
        }
        scope.body = watch_body(&mut req, started, body_timeout);
        // Handlers' and extractors' errors arrive inside the response (there is no middleware
        // below this one that could fail instead). A span below the log level records nothing:
        // its future is not wrapped.
        if scope.span.is_disabled() {
            let answer = self.service.call(req);
            Box::pin(async move {
                let res = answer.await?;
                Ok(finish(scope, res.map_into_boxed_body()))
            })
        } else {
            let answer = self.service.call(req).instrument(scope.span.clone());
            Box::pin(async move {
                let res = answer.await?;
                Ok(finish(scope, res.map_into_boxed_body()))
            })
        }
    }
}

/// The answer to a request whose declared body is over the limit, before any handler reads it.
#[cold]
#[inline(never)]
fn too_large(scope: Scope, req: ServiceRequest) -> ServiceResponse<BoxBody> {
    let body = AppError::PayloadTooLarge {
        limit: scope.body_limit,
    }
    .render_for(scope.surface, scope.lang, scope.id());
    finish(scope, req.into_response(body))
}

/// 415 for a body with a `Content-Encoding` (RFC 9110 §12.5.3: `Accept-Encoding` says what would do).
#[cold]
#[inline(never)]
fn encoded(scope: Scope, req: ServiceRequest) -> ServiceResponse<BoxBody> {
    let mut body = AppError::UnsupportedEncoding.render_for(scope.surface, scope.lang, scope.id());
    body.headers_mut().insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    finish(scope, req.into_response(body))
}

/// The response rendered again when it is an error: a body that timed out (408), a handler's or
/// an extractor's error, or a request no route matched. Returns whether it was the last.
#[cold]
#[inline(never)]
fn render_error(
    scope: &Scope,
    mut res: ServiceResponse<BoxBody>,
    timed_out: bool,
) -> (ServiceResponse<BoxBody>, bool) {
    let (surface, lang, id) = (scope.surface, scope.lang, scope.id());
    let mut unrouted_error = None;
    let rendered: Option<HttpResponse> = if timed_out {
        scope
            .span
            .in_scope(|| tracing::info!("request body timed out"));
        let seconds = scope.body_timeout.as_secs().max(1);
        Some(AppError::RequestTimeout { seconds }.render_for(surface, lang, id))
    } else if let Some(err) = res.response().error() {
        Some(match err.as_error::<AppError>() {
            Some(app) => app.render_for(surface, lang, id),
            None => {
                error::from_actix(err, res.status(), scope.body_limit).render_for(surface, lang, id)
            }
        })
    } else {
        unrouted_error = unrouted(&res);
        unrouted_error
            .as_ref()
            .map(|e| e.render_for(surface, lang, id))
    };
    if let Some(mut rendered) = rendered {
        if let Some(allow) = res.headers().get(header::ALLOW) {
            rendered.headers_mut().insert(header::ALLOW, allow.clone());
        }
        res = res.into_response(rendered);
    }
    if timed_out {
        // The rest of the body may still come: this connection serves no further request.
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    (res, unrouted_error.is_some())
}

/// The work after the handler: errors rendered, the request id and security headers set, the
/// request counted and logged.
fn finish(mut scope: Scope, mut res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let timed_out = scope.body.as_ref().is_some_and(|b| b.expired.get());
    let mut unrouted_error = false;
    if timed_out
        || res.response().error().is_some()
        || res.status() == StatusCode::METHOD_NOT_ALLOWED
    {
        (res, unrouted_error) = render_error(&scope, res, timed_out);
    }
    if let Some(unread) = scope.body.take().and_then(|b| b.unread.take()) {
        res = res.map_body(|_, body| {
            BoxBody::new(HoldingBody {
                body,
                _unread: unread,
            })
        });
    }
    let headers = res.headers_mut();
    if let Some(v) = scope.id_header.take() {
        headers.insert(REQUEST_ID, v);
    }
    for (name, value) in SECURITY_HEADERS {
        if !headers.contains_key(&name) {
            headers.insert(name, value);
        }
    }

    let status = res.status().as_u16();
    let route = match res.request().match_pattern() {
        Some(pattern) if !unrouted_error => pattern,
        _ => "unmatched".to_owned(),
    };
    let elapsed = scope.started.elapsed();
    if let Some(metrics) = res
        .request()
        .app_data::<web::Data<Edge>>()
        .and_then(|e| e.metrics.as_ref())
    {
        metrics.observe(scope.method.as_str(), &route, status, elapsed.as_secs_f64());
    }
    let micros = elapsed.as_micros() as u64;
    scope.span.in_scope(|| {
        if route == "/healthz" || route == "/metrics" || route == "/readyz" {
            tracing::debug!(status, micros, route = %route, "request finished");
        } else {
            tracing::info!(status, micros, route = %route, "request finished");
        }
    });
    res
}

/// The client's IP: the peer address, or, when the peer is a trusted proxy
/// (`TESSERA_TRUSTED_PROXIES`), the nearest `X-Forwarded-For` address that is not a trusted proxy.
pub fn client_ip(req: &actix_web::HttpRequest) -> String {
    client_addr(req).map_or_else(|| "unknown".to_owned(), ip_text)
}

/// [`client_ip`] as an address, `None` when the connection has no peer address (a test request).
pub fn client_addr(req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted: &[ipnet::IpNet] = req
        .app_data::<web::Data<Edge>>()
        .map(|e| e.trusted_proxies.as_slice())
        .unwrap_or(&[]);
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<std::net::IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(header_text)
        .flat_map(|v| v.split(','))
        .filter_map(|ip| ip.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer),
    )
}

/// An address as text, as `Display` writes it; IPv4 without the formatting machinery.
fn ip_text(ip: std::net::IpAddr) -> String {
    let std::net::IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut out = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `header_text` answers as `to_str` for every value a `HeaderValue` can hold: every byte alone
    /// and beside text, and values of many bytes.
    #[test]
    fn header_text_reads_as_to_str() {
        let mut values: Vec<Vec<u8>> = (0..=255u8)
            .flat_map(|b| {
                [
                    vec![b],
                    vec![b'a', b],
                    vec![b, b'z', b'z', b'z', b'z', b'z', b'z', b'z', b'z'],
                ]
            })
            .collect();
        values.push(b"Basic Y2xpXzAxMjM0NTY3ODk6c2VjcmV0LXNlY3JldC1zZWNyZXQ=".to_vec());
        values.push("es-ES,es;q=0.9 \u{e9}".as_bytes().to_vec());
        values.push("caf\u{e9} au lait, \t tab".as_bytes().to_vec());
        let mut held = 0;
        for bytes in values {
            // What a request can carry: httparse and `HeaderValue` refuse the same bytes.
            let Ok(v) = HeaderValue::from_bytes(&bytes) else {
                continue;
            };
            held += 1;
            assert_eq!(header_text(&v), v.to_str().ok(), "{bytes:?}");
        }
        assert!(held > 600, "only {held} values were held");
    }

    #[test]
    fn addresses_read_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "192.168.100.9",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:10.0.0.1",
        ] {
            let ip: std::net::IpAddr = ip.parse().expect("a valid address");
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn request_ids_are_unique_and_keep_their_shape() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| new_request_id().to_string()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            assert_eq!(id.len(), 28, "{id}");
            assert!(id.starts_with("req_"), "{id}");
            assert!(id[4..].bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
        }
    }

    /// A caller's id is kept when it is 1 to 128 plain characters, and refused otherwise.
    #[test]
    fn a_callers_request_id_is_kept_only_when_short_and_plain() {
        let kept = |v: &str| {
            sane_request_id(&HeaderValue::from_str(v).expect("a header value"))
                .map(|id| id.to_string())
        };
        let longest = "a".repeat(128);
        for ok in ["abc-1_2.3:4", "x", longest.as_str()] {
            assert_eq!(kept(ok).as_deref(), Some(ok));
        }
        for bad in ["", "a b", "a/b", "ü", &"a".repeat(129), &"a".repeat(300)] {
            assert_eq!(kept(bad), None, "{bad}");
        }
    }
}
