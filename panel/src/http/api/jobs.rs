//! `/api/v1/jobs`: create, list, get, events (SSE), log, cancel, retry.

use std::sync::LazyLock;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::TryStreamExt as _;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::job_view::JobView;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, Code};
use crate::http::body::JsonBody;
use crate::http::openapi::responses as resp;
use crate::http::openapi::schemas::{self, JobId};
use crate::jobs::enqueue::{self, NewJob};
use crate::jobs::{JobQuery, control, events, store};
use crate::sse;
use crate::state::AppState;

/// The optional header of `POST /jobs` (documentation only; the handler reads it itself).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// Same key and body within 24 h return the same job.
    #[param(rename = "Idempotency-Key", schema_with = schemas::idempotency_key)]
    pub idempotency_key: Option<String>,
}

/// The optional header of the event stream (documentation only).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ResumeHeader {
    /// Resume after this event sequence number (what browsers send on reconnect).
    #[param(rename = "Last-Event-ID", schema_with = schemas::event_seq)]
    pub last_event_id: Option<String>,
}

/// What a caller asks for.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewJob)]
pub struct NewJobRequest {
    #[schema(value_type = crate::http::openapi::schemas::AppId)]
    pub app_id: String,
    #[schema(value_type = crate::http::openapi::schemas::AgentId)]
    pub agent_id: String,
    /// Input values by name (see `GET /apps/{id}/schema`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
    /// The instance name, for apps whose manifest says `multiple_instances: true`
    /// (`[a-z0-9-]`, at most 40); default the app id. Installing an instance that is
    /// installed already changes its settings.
    #[serde(default)]
    pub instance: Option<String>,
}

impl From<NewJobRequest> for NewJob {
    fn from(r: NewJobRequest) -> Self {
        NewJob {
            app_id: r.app_id,
            agent_id: r.agent_id,
            inputs: r.inputs,
            instance: r.instance,
            on: None,
            pinned: None,
        }
    }
}

/// Creates a job. `Idempotency-Key` makes a retried request return the first job.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs", operation_id = "create_job", request_body = NewJobRequest,
    params(IdempotencyHeader),
    responses((status = 202, description = "Queued (or the job an earlier request with the same key queued)", body = JobView,
            headers(("Location" = String, description = "The job's URL"),
                ("Idempotent-Replayed" = String, description = "`true` when an earlier request made the job"))),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::TargetNotFound), (status = 409, response = resp::NotQueued),
        (status = 413, response = resp::PayloadTooLarge), (status = 415, response = resp::UnsupportedMediaType),
        (status = 422, response = resp::ValidationFailed)),
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

/// The query of `GET /jobs` (documentation only; the handler reads a [`JobQuery`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobListParams {
    /// Only jobs in this state.
    #[param(schema_with = schemas::job_state_filter)]
    pub state: Option<String>,
    /// Only jobs of this app.
    #[param(schema_with = schemas::app_id_filter)]
    pub app_id: Option<String>,
    /// Only jobs on this agent.
    #[param(schema_with = schemas::agent_id_filter)]
    pub agent_id: Option<String>,
    /// Cursor: the `next` of the previous page.
    #[param(schema_with = schemas::job_cursor)]
    pub before: Option<String>,
    /// Page size, 1 to 200 (default 50); other counts are clamped into that range.
    #[param(schema_with = job_page_size)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<JobView>,
    /// Pass as `before` for the next page; absent at the end.
    pub next: Option<String>,
}

fn job_page_size() -> utoipa::openapi::schema::Schema {
    schemas::page_size(&format!(
        "Page size, 1 to {} (default {}); other counts are clamped into that range",
        store::MAX_PAGE,
        store::DEFAULT_PAGE
    ))
}

/// Jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", operation_id = "list_jobs", params(JobListParams),
    responses((status = 200, description = "A page of jobs, newest first", body = JobPage),
        (status = 400, response = resp::BadRequest),
        (status = 404, description = "The `before` cursor names no listed job (code `job_not_found`)",
            body = crate::error::ErrorBody)),
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
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", operation_id = "get_job",
    params(("id" = JobId, Path, description = "Job id")),
    responses((status = 200, description = "The job", body = JobView),
        (status = 400, response = resp::BadRequest), (status = 404, response = resp::JobNotFound)),
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
    #[param(schema_with = schemas::event_seq)]
    pub last_event_id: Option<String>,
}

/// What `Last-Event-ID` may be: blank (from the start), `<seq>` or `0-<seq>` (the stream id);
/// 19 digits always fit a u64. The OpenAPI document states the same pattern.
pub const EVENT_SEQ_PATTERN: &str = "^((0-)?[0-9]{1,19})?$";

static EVENT_SEQ: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(EVENT_SEQ_PATTERN).expect("static pattern"));

/// The `after` of an SSE request: `Last-Event-ID` header, else the query parameter, else 0.
/// Both are checked, so a malformed one is refused even when the other decides.
pub fn last_event_id(req: &HttpRequest, query: &EventsQuery) -> ApiResult<u64> {
    let parse = |s: &str| {
        if EVENT_SEQ.is_match(s) {
            Ok(sse::parse_last_event_id(s).unwrap_or(0))
        } else {
            Err(ApiError::new(
                Code::InvalidParameter,
                "Last-Event-ID must be an event sequence number (or `0-<seq>`)",
            ))
        }
    };
    let from_query = query.last_event_id.as_deref().map(parse).transpose()?;
    match req.headers().get("last-event-id") {
        Some(v) => parse(v.to_str().unwrap_or("?")),
        None => Ok(from_query.unwrap_or(0)),
    }
}

/// Server-sent events: every event after `Last-Event-ID`, then live ones; the stream ends
/// after a final state. 204 when the job is finished and nothing is newer.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "jobs", operation_id = "job_events",
    params(("id" = JobId, Path, description = "Job id"), EventsQuery, ResumeHeader),
    responses((status = 200, description = "text/event-stream; `id:` is the event seq, `data:` the event JSON",
            content_type = "text/event-stream", body = schemas::SseEvent),
        (status = 204, description = "Finished and nothing newer"),
        (status = 400, response = resp::BadRequest), (status = 404, response = resp::JobNotFound)),
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
#[utoipa::path(get, path = "/api/v1/jobs/{id}/log", tag = "jobs", operation_id = "job_log",
    params(("id" = JobId, Path, description = "Job id")),
    responses((status = 200, description = "The output so far, one line per event", content_type = "text/plain", body = String),
        (status = 400, response = resp::BadRequest), (status = 404, response = resp::JobNotFound)),
    security(("bearer" = [])))]
pub async fn log(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    let mut conn = state.redis.clone();
    let agent = store::agent_of(&mut conn, &id).await?;
    // Streamed page by page: six readers of a 200 MB log cost six pages, not six logs.
    let body = events::log_text(conn, agent, id.into_inner()).map_err(ApiError::from);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .streaming(body))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CancelResult {
    /// `canceled` (it had not started) or `requested` (the runner stops it).
    pub outcome: String,
    pub job: JobView,
}

/// Cancels a job: at once if it has not started, else the runner kills it.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs", operation_id = "cancel_job",
    params(("id" = JobId, Path, description = "Job id")),
    responses((status = 202, description = "Canceled, or the runner was asked to stop it", body = CancelResult),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::JobNotFound), (status = 409, response = resp::NotCancelable)),
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
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs", operation_id = "retry_job",
    params(("id" = JobId, Path, description = "Job id")),
    responses((status = 202, description = "Queued again as a new attempt", body = JobView),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::JobNotFound), (status = 409, response = resp::NotRetryable)),
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
