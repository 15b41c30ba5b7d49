//! Operations endpoints: liveness (`/healthz`), readiness (`/readyz`) and Prometheus metrics (`/metrics`).

use std::time::Duration;

use actix_web::{HttpResponse, get, web};

use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
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
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
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
            Err(AppError::Unavailable(reason))
        }
    }
}

#[get("/metrics")]
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let st = state.clone();
    let body = web::block(move || st.metrics.render(&st.pool))
        .await
        .unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}
