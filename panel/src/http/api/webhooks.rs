//! Webhook endpoints (admin only: a webhook holds a secret): register, list, read, delete,
//! its delivery log, redeliver.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, Code};
use crate::http::body::JsonBody;
use crate::http::openapi::responses as resp;
use crate::state::AppState;
use crate::webhooks::actions;
use crate::webhooks::model::{Delivery, Webhook};
use crate::webhooks::store::{self, NewWebhook};

/// A webhook registration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookBody {
    /// `http` or `https` URL the deliveries are POSTed to.
    #[schema(
        example = "https://hooks.example.com/outfitter",
        max_length = 2048,
        pattern = r"^https?://[A-Za-z0-9][A-Za-z0-9.-]{0,62}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/-]*)?$"
    )]
    pub url: String,
    /// HMAC key of the signatures (16 to 256 printable ASCII characters); left out, the
    /// panel makes one and answers it this once.
    #[schema(min_length = 16, max_length = 256, pattern = "^[!-~]{16,256}$")]
    pub secret: Option<String>,
    /// Events (`job.failed`), families (`installation.*`) or `*`.
    #[schema(example = json!(["job.failed", "installation.*"]), min_items = 1,
        max_items = 32 /* store::MAX_EVENTS */, value_type = Vec<crate::http::openapi::schemas::EventPatternName>)]
    pub events: Vec<String>,
}

/// A webhook as shown (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub created_by: String,
}

impl From<&Webhook> for WebhookView {
    fn from(w: &Webhook) -> Self {
        Self {
            id: w.id.clone(),
            url: w.url.clone(),
            events: w.events.clone(),
            created_at: w.created_at,
            created_by: w.created_by.clone(),
        }
    }
}

/// A new webhook with its secret, which is never shown again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: i64,
    pub created_by: String,
    /// Shown once; store it now.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// One delivery of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Also `X-Outfitter-Delivery` and the payload's `id`; the same for every attempt.
    pub id: String,
    pub webhook_id: String,
    pub event: String,
    /// The occurrence's key (one delivery per webhook and key).
    pub key: String,
    /// `pending`, `delivered` or `failed`.
    #[schema(example = "delivered")]
    pub status: String,
    /// Attempts since created or last redelivered.
    pub attempts: u32,
    pub created_at: i64,
    pub updated_at: i64,
    pub next_attempt_at: Option<i64>,
    pub delivered_at: Option<i64>,
    /// HTTP status of the last answer, if there was one.
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    /// The payload's `data`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            webhook_id: d.webhook_id,
            event: d.event,
            key: d.key,
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            created_at: d.created_at,
            updated_at: d.updated_at,
            next_attempt_at: d.next_attempt_at,
            delivered_at: d.delivered_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            data: d.data,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DeliveryQuery {
    /// 1 to 1000 (default 100), newest first.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Registers a webhook.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "create_webhook",
    request_body = NewWebhookBody,
    responses((status = 201, description = "Registered; `secret` is shown this once", body = CreatedWebhook),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 413, response = resp::PayloadTooLarge), (status = 415, response = resp::UnsupportedMediaType),
        (status = 422, response = resp::ValidationFailed)),
    security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<NewWebhookBody>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let NewWebhookBody {
        url,
        secret,
        events,
    } = body.0;
    let created = actions::create(
        &state,
        NewWebhook {
            url,
            secret,
            events,
        },
        &caller,
    )
    .await?;
    let w = created.webhook;
    Ok(HttpResponse::Created().json(CreatedWebhook {
        id: w.id,
        url: w.url,
        events: w.events,
        created_at: w.created_at,
        created_by: w.created_by,
        secret: created.secret,
    }))
}

/// Every webhook, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    responses((status = 200, description = "Every webhook (without secrets)", body = WebhookList),
        (status = 403, response = resp::Forbidden)),
    security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let mut conn = state.redis.clone();
    let hooks = store::list(&mut conn).await?;
    Ok(HttpResponse::Ok().json(WebhookList {
        webhooks: hooks.iter().map(WebhookView::from).collect(),
    }))
}

/// One webhook.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "get_webhook",
    params(("id" = String, Path, description = "Webhook id", pattern = "^wh_[0-9a-f]{16}$")),
    responses((status = 200, description = "The webhook (without its secret)", body = WebhookView),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::WebhookNotFound)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let mut conn = state.redis.clone();
    let hook = store::load(&mut conn, &id).await?;
    Ok(HttpResponse::Ok().json(WebhookView::from(&hook)))
}

/// Deletes a webhook with its delivery log; pending deliveries are never sent.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "delete_webhook",
    params(("id" = String, Path, description = "Webhook id", pattern = "^wh_[0-9a-f]{16}$")),
    responses((status = 204, description = "Deleted"),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::WebhookNotFound)),
    security(("bearer" = [])))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    actions::delete(&state, &id, &caller).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The webhook's delivery log, newest first (the last 1,000 are kept).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", operation_id = "list_webhook_deliveries",
    params(("id" = String, Path, description = "Webhook id", pattern = "^wh_[0-9a-f]{16}$"), DeliveryQuery),
    responses((status = 200, description = "Deliveries, newest first", body = DeliveryList),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::WebhookNotFound)),
    security(("bearer" = [])))]
pub async fn deliveries(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    q: web::Query<DeliveryQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=store::MAX_LOG).contains(&limit) {
        return Err(ApiError::new(
            Code::InvalidParameter,
            format!("limit is 1 to {}", store::MAX_LOG),
        ));
    }
    let mut conn = state.redis.clone();
    let list = store::deliveries(&mut conn, &id, limit).await?;
    Ok(HttpResponse::Ok().json(DeliveryList {
        deliveries: list.into_iter().map(DeliveryView::from).collect(),
    }))
}

/// Queues one delivery again now, with a fresh attempt count (same delivery id).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "webhooks",
    operation_id = "redeliver_webhook_delivery",
    params(("id" = String, Path, description = "Webhook id", pattern = "^wh_[0-9a-f]{16}$"),
        ("delivery_id" = String, Path, description = "Delivery id", pattern = "^dl_[0-9a-f]{32}$")),
    responses((status = 202, description = "Queued again", body = DeliveryView),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::DeliveryNotFound)),
    security(("bearer" = [])))]
pub async fn redeliver(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let (id, delivery_id) = path.into_inner();
    let d = actions::redeliver(&state, &id, &delivery_id, &caller).await?;
    Ok(HttpResponse::Accepted().json(DeliveryView::from(d)))
}
