//! `/healthz`, `/metrics`, `/openapi.json`.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::agents;
use crate::error::{ApiError, ApiResult, Code};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// Whether the live-progress subscription is up (SSE still works from the streams if not).
    pub pubsub: bool,
    pub apps: usize,
}

/// 200 when Redis answers, else 503.
#[utoipa::path(get, path = "/healthz", tag = "system", operation_id = "healthz",
    responses((status = 200, description = "Redis answers", body = Health),
        (status = 503, response = crate::http::openapi::responses::StoreUnavailable)))]
pub async fn healthz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let mut conn = state.redis.clone();
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| {
            ApiError::new(
                Code::StoreUnavailable,
                format!("Redis does not answer: {e}"),
            )
        })?;
    if pong != "PONG" {
        return Err(ApiError::new(
            Code::StoreUnavailable,
            format!("Redis answered {pong:?} to PING"),
        ));
    }
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
        pubsub: state.live.is_connected(),
        apps: state.catalog.current().catalog.len(),
    }))
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "system", operation_id = "metrics",
    responses((status = 200, description = "Prometheus metrics", content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let mut conn = state.redis.clone();
    // Agent gauges are read fresh; if Redis is down, the last values are served.
    if let Ok(statuses) = agents::list(&mut conn).await {
        state.metrics.set_agents(&statuses);
    }
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.encode()))
}

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "system", operation_id = "openapi",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(crate::http::openapi::ApiDoc::openapi())
}
