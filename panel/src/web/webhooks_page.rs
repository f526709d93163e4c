//! The webhooks page (admin): the webhooks with their recent deliveries, a form to register
//! one (its secret shown once, on the page that answers the form), delete and redeliver.
//! Every form posts through the same domain calls as the API.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::{WebResult, base_context, form_caller, form_value, redirect, render, signed_in, when};
use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::state::AppState;
use crate::webhooks::actions;
use crate::webhooks::model::EventKind;
use crate::webhooks::store::{self, NewWebhook};

/// Deliveries shown per webhook.
const SHOWN: usize = 20;

#[derive(Serialize)]
struct DeliveryRow {
    id: String,
    event: String,
    status: String,
    attempts: u32,
    code: String,
    error: String,
    created: String,
}

#[derive(Serialize)]
struct WebhookRow {
    id: String,
    url: String,
    events: String,
    created: String,
    created_by: String,
    deliveries: Vec<DeliveryRow>,
}

/// What the create form shows after an answer.
#[derive(Default, Serialize)]
struct Outcome {
    error: String,
    created_id: String,
    secret: String,
    url: String,
    events: String,
}

async fn page_for(
    state: &AppState,
    caller: &Caller,
    outcome: &Outcome,
    status: StatusCode,
) -> WebResult<HttpResponse> {
    let mut conn = state.redis.clone();
    let mut rows = Vec::new();
    for w in store::list(&mut conn).await? {
        let deliveries = store::deliveries(&mut conn, &w.id, SHOWN)
            .await?
            .into_iter()
            .map(|d| DeliveryRow {
                id: d.id,
                event: d.event,
                status: d.status.as_str().to_owned(),
                attempts: d.attempts,
                code: d
                    .last_status_code
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                error: d.last_error.unwrap_or_default(),
                created: when(Some(d.created_at)),
            })
            .collect();
        rows.push(WebhookRow {
            events: w.events.join(", "),
            created: when(Some(w.created_at)),
            id: w.id,
            url: w.url,
            created_by: w.created_by,
            deliveries,
        });
    }
    let mut ctx = base_context(Some(caller));
    ctx.insert("webhooks", &rows);
    ctx.insert("outcome", outcome);
    ctx.insert(
        "known_events",
        &EventKind::ALL.map(|k| k.as_str()).join(", "),
    );
    render(state, "webhooks.html", &ctx, status)
}

pub(super) async fn page(req: HttpRequest, state: web::Data<AppState>) -> WebResult<HttpResponse> {
    let caller = signed_in(&state, &req).await?;
    caller.require(Role::Admin)?;
    page_for(&state, &caller, &Outcome::default(), StatusCode::OK).await
}

/// The create form: events are comma- or space-separated; an empty secret is made here.
pub(super) async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let caller = form_caller(&state, &req, &form, Role::Admin).await?;
    let url = form_value(&form, "url").unwrap_or("").trim().to_owned();
    let events_text = form_value(&form, "events").unwrap_or("").to_owned();
    let events: Vec<String> = events_text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    let secret = form_value(&form, "secret")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let new = NewWebhook {
        url: url.clone(),
        secret,
        events,
    };
    match actions::create(&state, new, &caller).await {
        Ok(created) => {
            let outcome = Outcome {
                created_id: created.webhook.id,
                secret: created.secret,
                ..Outcome::default()
            };
            page_for(&state, &caller, &outcome, StatusCode::CREATED).await
        }
        Err(e) => {
            let e = ApiError::from(e);
            if e.fields.is_empty() {
                return Err(e.into());
            }
            let message = e
                .fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; ");
            let outcome = Outcome {
                error: message,
                url,
                events: events_text,
                ..Outcome::default()
            };
            page_for(&state, &caller, &outcome, e.code.status()).await
        }
    }
}

pub(super) async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let caller = form_caller(&state, &req, &form, Role::Admin).await?;
    actions::delete(&state, &id, &caller).await?;
    Ok(redirect("/webhooks"))
}

pub(super) async fn redeliver(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let caller = form_caller(&state, &req, &form, Role::Admin).await?;
    let (id, delivery) = path.into_inner();
    actions::redeliver(&state, &id, &delivery, &caller).await?;
    Ok(redirect(&format!("/webhooks#{id}")))
}
