//! `/api/v1/jobs`: create, list, get, events (SSE), log, cancel, retry.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::job_view::JobView;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, Code, ErrorBody};
use crate::http::body::JsonBody;
use crate::jobs::enqueue::{self, NewJob};
use crate::jobs::{JobQuery, control, events, store};
use crate::sse;
use crate::state::AppState;

/// What a caller asks for.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewJob)]
pub struct NewJobRequest {
    #[schema(example = "nginx")]
    pub app_id: String,
    #[schema(example = "web-1")]
    pub agent_id: String,
    /// Input values by name (see `GET /apps/{id}/schema`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
}

impl From<NewJobRequest> for NewJob {
    fn from(r: NewJobRequest) -> Self {
        NewJob {
            app_id: r.app_id,
            agent_id: r.agent_id,
            inputs: r.inputs,
        }
    }
}

/// Creates a job. `Idempotency-Key` makes a retried request return the first job.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs", request_body = NewJobRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body within 24 h return the same job")),
    responses((status = 202, body = JobView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<NewJobRequest>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Operator)?;
    let key =
        match req.headers().get("idempotency-key") {
            Some(v) => Some(v.to_str().map_err(|_| {
                ApiError::new(Code::InvalidParameter, "Idempotency-Key must be ASCII")
            })?),
            None => None,
        };
    let done = enqueue::enqueue(&state, &body.0.into(), &caller, key).await?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED)
        .insert_header(("Location", format!("/api/v1/jobs/{}", done.job.id)))
        .insert_header((
            "Idempotent-Replayed",
            if done.replayed { "true" } else { "false" },
        ))
        .json(JobView::from(done.job)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<JobView>,
    /// Pass as `before` for the next page; absent at the end.
    pub next: Option<String>,
}

/// Jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    params(("state" = Option<String>, Query, description = "Only jobs in this state."),
        ("app_id" = Option<String>, Query, description = "Only jobs of this app."),
        ("agent_id" = Option<String>, Query, description = "Only jobs on this agent."),
        ("before" = Option<String>, Query, description = "Cursor: the `next` of the previous page."),
        ("limit" = Option<usize>, Query, description = "Page size, 1 to 200 (default 50).")),
    responses((status = 200, body = JobPage), (status = 400, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<JobQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    let mut conn = state.redis.clone();
    let page = query.page(&mut conn).await?;
    Ok(HttpResponse::Ok().json(JobPage {
        jobs: page.jobs.into_iter().map(JobView::from).collect(),
        next: page.next,
    }))
}

/// One job.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id (UUID)")),
    responses((status = 200, body = JobView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    let mut conn = state.redis.clone();
    let job = store::load(&mut conn, &id).await?;
    Ok(HttpResponse::Ok().json(JobView::from(job)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// Same as the `Last-Event-ID` header, for clients that cannot set headers.
    pub last_event_id: Option<String>,
}

/// The `after` of an SSE request: `Last-Event-ID` header, else the query parameter, else 0.
pub fn last_event_id(req: &HttpRequest, query: &EventsQuery) -> ApiResult<u64> {
    let raw = match req.headers().get("last-event-id") {
        Some(v) => Some(v.to_str().unwrap_or("?").to_owned()),
        None => query.last_event_id.clone(),
    };
    match raw {
        None => Ok(0),
        Some(s) if s.trim().is_empty() => Ok(0),
        Some(s) => sse::parse_last_event_id(&s).ok_or_else(|| {
            ApiError::new(
                Code::InvalidParameter,
                "Last-Event-ID must be an event sequence number (or `0-<seq>`)",
            )
        }),
    }
}

/// Server-sent events: every event after `Last-Event-ID`, then live ones; the stream ends
/// after a final state. 204 when the job is finished and nothing is newer.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "jobs",
    params(("id" = String, Path, description = "Job id"), EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this sequence number")),
    responses((status = 200, description = "text/event-stream; `id:` is the event seq, `data:` the event JSON",
            content_type = "text/event-stream", body = String),
        (status = 204, description = "Finished and nothing newer"),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<EventsQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    event_stream(&req, state, &id, &query).await
}

/// Shared by the API and the job page.
pub async fn event_stream(
    req: &HttpRequest,
    state: web::Data<AppState>,
    id: &str,
    query: &EventsQuery,
) -> ApiResult<HttpResponse> {
    let after = last_event_id(req, query)?;
    let mut conn = state.redis.clone();
    let job = store::load(&mut conn, id).await?;
    if job.state.is_terminal()
        && events::read_after(&mut conn, &job.agent_id, id, after, 1)
            .await?
            .is_empty()
    {
        return Ok(HttpResponse::NoContent().finish());
    }
    let body = sse::open(state, job.agent_id, job.id, after);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// The output as plain text (runner notes and state changes prefixed with `# `).
#[utoipa::path(get, path = "/api/v1/jobs/{id}/log", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, content_type = "text/plain", body = String), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn log(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    let mut conn = state.redis.clone();
    let agent = store::agent_of(&mut conn, &id).await?;
    let all = events::read_all_after(&mut conn, &agent, &id, 0).await?;
    let mut text = String::new();
    for line in all.iter().filter_map(|e| events::log_line(&e.json)) {
        text.push_str(&line);
        text.push('\n');
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(text))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CancelResult {
    /// `canceled` (it had not started) or `requested` (the runner stops it).
    pub outcome: String,
    pub job: JobView,
}

/// Cancels a job: at once if it has not started, else the runner kills it.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 202, body = CancelResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Operator)?;
    let (outcome, job) = control::cancel(&state, &id, &caller).await?;
    Ok(HttpResponse::Accepted().json(CancelResult {
        outcome: outcome.as_str().into(),
        job: job.into(),
    }))
}

/// Runs a finished job again (a new attempt).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses((status = 202, body = JobView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn retry(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Operator)?;
    let job = control::retry(&state, &id, &caller).await?;
    Ok(HttpResponse::Accepted().json(JobView::from(job)))
}
