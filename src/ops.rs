//! Operations endpoints: liveness (`/healthz`), readiness (`/readyz`) and Prometheus metrics (`/metrics`).

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde_json::json;

use crate::error::AppError;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}

/// The process is up and serving HTTP. Touches nothing else, so it is the benchmark baseline.
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({"status": "ok"}))
}

/// The database answers. 503 while it does not; 200 again as soon as it does, without a restart.
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
            .json(json!({
                "status": "ready",
                "database": state.settings.database_url.backend_name(),
            }))),
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
