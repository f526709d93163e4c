//! `/api/v1/schedules`: create, list, get (with recent runs), pause, resume, delete. Viewers
//! read, operators write; the domain (`crate::schedules`) does the rest.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Caller, Role};
use crate::error::ApiResult;
use crate::http::body::JsonBody;
use crate::http::openapi::responses as resp;
use crate::http::openapi::schemas::JobId;
use crate::schedules::{CatchUp, NewSchedule, Run, Schedule, Target, manage, store};
use crate::state::AppState;

/// Runs `GET /schedules/{id}` shows.
pub const RECENT_RUNS: usize = 20;

/// A schedule as the API returns it. Times are unix milliseconds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScheduleView {
    #[schema(value_type = crate::http::openapi::schemas::JobId)]
    pub id: String,
    pub name: String,
    #[schema(example = "0 3 * * *")]
    pub cron: String,
    #[schema(example = "Europe/Berlin")]
    pub timezone: String,
    pub target: Target,
    pub catch_up: CatchUp,
    pub paused: bool,
    /// Who created it (a token name).
    pub created_by: String,
    pub created_at: i64,
    /// The next due time; null while paused.
    pub next_due: Option<i64>,
    /// The last due time met (run, failed to queue, or skipped).
    pub last_run: Option<Run>,
    /// The newest runs, newest first (`GET /schedules/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs: Option<Vec<Run>>,
}

impl From<Schedule> for ScheduleView {
    fn from(s: Schedule) -> Self {
        ScheduleView {
            id: s.def.id,
            name: s.def.name,
            cron: s.def.cron,
            timezone: s.def.timezone,
            target: s.def.target,
            catch_up: s.def.catch_up,
            paused: s.paused,
            created_by: s.def.created_by,
            created_at: s.def.created_at,
            next_due: s.next_due,
            last_run: s.last,
            runs: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleView>,
}

/// Creates a schedule; its first due time is the next after now.
#[utoipa::path(post, path = "/api/v1/schedules", tag = "schedules", operation_id = "create_schedule",
    request_body = NewSchedule,
    responses((status = 201, description = "Created", body = ScheduleView,
            headers(("Location" = String, description = "The schedule's URL"))),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::ScheduleTargetNotFound),
        (status = 413, response = resp::PayloadTooLarge), (status = 415, response = resp::UnsupportedMediaType),
        (status = 422, response = resp::ValidationFailed)),
    security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<NewSchedule>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Operator)?;
    let schedule = manage::create(&state, body.0, &caller).await?;
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header(("Location", format!("/api/v1/schedules/{}", schedule.def.id)))
        .json(ScheduleView::from(schedule)))
}

/// Schedules, newest first, with their last and next run.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "schedules", operation_id = "list_schedules",
    responses((status = 200, description = "Schedules, newest first", body = ScheduleList)),
    security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    let mut conn = state.redis.clone();
    let schedules = store::list(&mut conn)
        .await?
        .into_iter()
        .map(ScheduleView::from)
        .collect();
    Ok(HttpResponse::Ok().json(ScheduleList { schedules }))
}

/// One schedule with its recent runs.
#[utoipa::path(get, path = "/api/v1/schedules/{id}", tag = "schedules", operation_id = "get_schedule",
    params(("id" = JobId, Path, description = "Schedule id")),
    responses((status = 200, description = "The schedule", body = ScheduleView),
        (status = 400, response = resp::BadRequest), (status = 404, response = resp::ScheduleNotFound)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    let (schedule, runs) = manage::detail(&state, &id, RECENT_RUNS).await?;
    let mut view = ScheduleView::from(schedule);
    view.runs = Some(runs);
    Ok(HttpResponse::Ok().json(view))
}

/// Pauses a schedule: no run until it is resumed.
#[utoipa::path(post, path = "/api/v1/schedules/{id}/pause", tag = "schedules", operation_id = "pause_schedule",
    params(("id" = JobId, Path, description = "Schedule id")),
    responses((status = 200, description = "Paused", body = ScheduleView),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::ScheduleNotFound)),
    security(("bearer" = [])))]
pub async fn pause(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Operator)?;
    let schedule = manage::pause(&state, &id, &caller).await?;
    Ok(HttpResponse::Ok().json(ScheduleView::from(schedule)))
}

/// Resumes a schedule from now (due times passed while paused are not run).
#[utoipa::path(post, path = "/api/v1/schedules/{id}/resume", tag = "schedules", operation_id = "resume_schedule",
    params(("id" = JobId, Path, description = "Schedule id")),
    responses((status = 200, description = "Resumed", body = ScheduleView),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::ScheduleNotFound)),
    security(("bearer" = [])))]
pub async fn resume(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Operator)?;
    let schedule = manage::resume(&state, &id, &caller).await?;
    Ok(HttpResponse::Ok().json(ScheduleView::from(schedule)))
}

/// Deletes a schedule and its run history (the jobs it queued stay).
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "schedules", operation_id = "delete_schedule",
    params(("id" = JobId, Path, description = "Schedule id")),
    responses((status = 204, description = "Deleted"),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::ScheduleNotFound)),
    security(("bearer" = [])))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Operator)?;
    manage::delete(&state, &id, &caller).await?;
    Ok(HttpResponse::NoContent().finish())
}
