//! Operations endpoints: liveness (`/healthz`), readiness (`/readyz`) and Prometheus metrics (`/metrics`).

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};

use crate::error::AppError;
use crate::node::Node;
use crate::request::header_text;

/// `/healthz`, the first route of the main listener (a load balancer's probe, and the benchmarks'
/// baseline).
pub fn configure_liveness(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz);
}

/// `/readyz` and `/metrics`, registered after the hot paths: they are polled every few seconds,
/// and routing tries each route in turn on every request.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(readyz).service(metrics);
}

/// The OpenAPI description of `/healthz` and `/readyz` (`/metrics` is Prometheus text, not JSON).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    Docs::openapi()
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz))]
struct Docs;

/// The answer of `/healthz`.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Health {
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

/// The answer of `/readyz`.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Ready {
    #[schema(value_type = String, example = "ready")]
    status: &'static str,
    /// `sqlite` or `postgres`.
    #[schema(value_type = String, example = "sqlite")]
    database: &'static str,
}

/// [`configure`] when `/metrics` has a listener of its own (`TESSERA_METRICS_BIND`).
pub fn configure_readiness(cfg: &mut web::ServiceConfig) {
    cfg.service(readyz);
}

/// The routes of the metrics listener.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.service(metrics);
}

/// The process is up and serving HTTP. Touches nothing else, so it is the benchmark baseline.
#[utoipa::path(
    operation_id = "healthz",
    tag = "ops",
    responses((status = 200, description = "The process serves HTTP", body = Health))
)]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(Health { status: "ok" })
}

/// The database answers. 503 while it does not; 200 again as soon as it does, without a restart.
#[utoipa::path(
    operation_id = "readyz",
    tag = "ops",
    responses(
        (status = 200, description = "The database answers", body = Ready),
        (status = 503, description = "The database does not answer"),
    )
)]
#[get("/readyz")]
async fn readyz(state: web::Data<Node>) -> Result<HttpResponse, AppError> {
    let timeout = state.settings.database_timeout.min(Duration::from_secs(2));
    let st = state.clone();
    let result =
        web::block(move || crate::db::check_ready(&st.pool, &st.settings.database_url, timeout))
            .await?;
    match result {
        Ok(()) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(Ready {
                status: "ready",
                database: state.settings.database_url.backend_name(),
            })),
        Err(reason) => {
            tracing::warn!(%reason, "readiness check failed");
            Err(AppError::Unavailable(reason.to_string()))
        }
    }
}

/// The Prometheus text exposition. With `TESSERA_METRICS_TOKEN`, only for `Authorization: Bearer
/// <token>` (401 with `WWW-Authenticate` otherwise); queue lengths and cache sizes are read now.
#[get("/metrics")]
async fn metrics(req: HttpRequest, state: web::Data<Node>) -> Result<HttpResponse, AppError> {
    if let Some(expected) = &state.settings.metrics_token
        && !bearer_matches(&req, &state, expected.expose())
    {
        return Err(AppError::Unauthorized("unauthenticated"));
    }
    let st = state.clone();
    let body = web::block(move || {
        sample(&st);
        st.metrics.render(&st.pool)
    })
    .await
    .unwrap_or_default();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}

/// True when the request carries `Authorization: Bearer <expected>`. Both sides are compared as HMACs
/// under the pepper (ring's constant-time check), so neither the token's bytes nor its length leak
/// through timing.
fn bearer_matches(req: &HttpRequest, state: &Node, expected: &[u8]) -> bool {
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(header_text)
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    else {
        return false;
    };
    let tag = state.hasher.tag("metrics-token", expected);
    state
        .hasher
        .verify_tag("metrics-token", given.as_bytes(), &tag)
}

/// Reads the gauges that are sampled rather than counted: background-queue lengths and cache sizes.
fn sample(state: &Node) {
    let m = &state.metrics;
    m.set_queue_length(
        "usage_flush",
        state.keys.usage.pending() + state.oauth.usage.pending(),
    );
    m.set_queue_length("cache_invalidation", state.bus.queued());
    m.set_invalidation_up(state.bus.connected());
    m.set_queue_length("password_hashing", state.accounts.password_gate.in_use());
    m.set_cache_entries("keys", state.keys.key_cache.len());
    m.set_cache_entries("tokens", state.oauth.token_cache.len());
    m.set_cache_entries("clients", state.oauth.client_cache.len());
    m.set_cache_entries("apis", state.apis.api_cache.len());
    m.set_cache_entries("jwks", state.oauth.jwks_cache.len());
}
