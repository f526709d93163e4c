//! `/api/v1/rollouts`: start one app (or one action on its installations) on many servers in
//! batches, follow it, pause, resume, abort, retry. Viewers read, operators act.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Role};
use crate::error::ApiResult;
use crate::http::body::JsonBody;
use crate::http::openapi::responses as resp;
use crate::http::openapi::schemas::JobId;
use crate::rollouts::model::{HistoryEntry, Selection, Strategy, Target, Unfit};
use crate::rollouts::request::NewRolloutBody;
use crate::rollouts::{self, Control, Plan, Rollout, RolloutState, TargetState, Work};
use crate::state::AppState;

/// One server of a rollout.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TargetView {
    #[schema(example = "web-1")]
    pub agent_id: String,
    /// 1 is the first batch.
    pub batch: u32,
    pub state: TargetState,
    pub job_id: Option<String>,
    pub attempt: u32,
    pub installation_id: Option<String>,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
}

impl From<&Target> for TargetView {
    fn from(t: &Target) -> Self {
        Self {
            agent_id: t.agent_id.clone(),
            batch: t.batch + 1,
            state: t.state,
            job_id: t.job_id.clone(),
            attempt: t.attempt,
            installation_id: t.installation_id.clone(),
            reason: t.reason.clone(),
        }
    }
}

/// A rollout as the API returns it. Times are unix milliseconds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RolloutView {
    pub id: String,
    pub app_id: String,
    pub instance: Option<String>,
    pub action: Work,
    pub state: RolloutState,
    /// The label selector it was given, as text (`env=prod, region in (eu,us)`).
    pub selector: Option<String>,
    /// The servers it was given by id.
    pub agents: Option<Vec<String>>,
    pub strategy: Strategy,
    /// The plain input values (secrets are never shown).
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
    /// Servers by state: `pending`, `queued`, `running`, `succeeded`, `failed`, `skipped`.
    #[schema(value_type = Object)]
    pub counts: std::collections::BTreeMap<&'static str, usize>,
    pub targets: Vec<TargetView>,
    /// Servers picked but left out before the start, with why.
    pub unfit: Vec<Unfit>,
    pub next_batch_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    pub rev: u64,
    /// What happened, oldest first (only in `GET /rollouts/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
}

impl From<&Rollout> for RolloutView {
    fn from(r: &Rollout) -> Self {
        let (selector, agents) = match &r.selection {
            Selection::Agents(a) => (None, Some(a.clone())),
            Selection::Labels(l) => (Some(l.to_string()), None),
        };
        Self {
            id: r.id.clone(),
            app_id: r.app_id.clone(),
            instance: r.instance.clone(),
            action: r.work,
            state: r.state,
            selector,
            agents,
            strategy: r.strategy,
            inputs: r.inputs.clone(),
            counts: r.counts(),
            targets: r.targets.iter().map(TargetView::from).collect(),
            unfit: r.unfit.clone(),
            next_batch_at: r.next_batch_at,
            created_at: r.created_at,
            created_by: r.created_by.clone(),
            updated_at: r.updated_at,
            finished_at: r.finished_at,
            rev: r.rev,
            history: None,
        }
    }
}

/// What `dry_run` answers: the batches it would run, and the servers it would leave out.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    /// Agent ids, batch by batch.
    pub batches: Vec<Vec<String>>,
    pub unfit: Vec<Unfit>,
}

impl From<Plan> for PlanView {
    fn from(p: Plan) -> Self {
        let mut batches: Vec<Vec<String>> = Vec::new();
        for t in p.targets {
            let b = t.batch as usize;
            if batches.len() <= b {
                batches.resize(b + 1, Vec::new());
            }
            batches[b].push(t.agent_id);
        }
        Self {
            batches,
            unfit: p.unfit,
        }
    }
}

/// Starts a rollout: planned whole first (servers that are offline, miss the app's
/// requirements or lack the installation are refused, or left out with `skip_unfit`), then
/// run batch after batch by the panels.
#[utoipa::path(post, path = "/api/v1/rollouts", tag = "rollouts", operation_id = "create_rollout",
    request_body = NewRolloutBody,
    responses((status = 202, description = "Started; the panels run its batches", body = RolloutView,
            headers(("Location" = String, description = "The rollout's URL"))),
        (status = 200, description = "`dry_run`: the plan", body = PlanView),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::AppNotFound),
        (status = 409, response = resp::ActionRefused),
        (status = 413, response = resp::PayloadTooLarge), (status = 415, response = resp::UnsupportedMediaType),
        (status = 422, response = resp::ValidationFailed)),
    security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<NewRolloutBody>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Operator)?;
    let (req, dry_run) = body.0.into_request()?;
    if dry_run {
        let plan = rollouts::preview(&state, &req).await?;
        return Ok(HttpResponse::Ok().json(PlanView::from(plan)));
    }
    let r = rollouts::create(&state, req, &caller).await?;
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/api/v1/rollouts/{}", r.id)))
        .json(RolloutView::from(&r)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// How many, newest first (1–200, default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RolloutList {
    pub rollouts: Vec<RolloutView>,
}

/// The newest rollouts first.
#[utoipa::path(get, path = "/api/v1/rollouts", tag = "rollouts", operation_id = "list_rollouts",
    params(ListQuery),
    responses((status = 200, description = "Rollouts, newest first", body = RolloutList),
        (status = 400, response = resp::BadRequest)),
    security(("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(crate::error::ApiError::new(
            crate::error::Code::InvalidParameter,
            "limit is 1 to 200",
        ));
    }
    let mut conn = state.redis.clone();
    let all = rollouts::store::list(&mut conn, limit).await?;
    Ok(HttpResponse::Ok().json(RolloutList {
        rollouts: all.iter().map(RolloutView::from).collect(),
    }))
}

/// One rollout with every server's state and its history.
#[utoipa::path(get, path = "/api/v1/rollouts/{id}", tag = "rollouts", operation_id = "get_rollout",
    params(("id" = JobId, Path, description = "Rollout id")),
    responses((status = 200, description = "The rollout", body = RolloutView),
        (status = 400, response = resp::BadRequest), (status = 404, response = resp::RolloutNotFound)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    Ok(HttpResponse::Ok().json(view_with_history(&state, &id).await?))
}

/// The view of one rollout with its latest history (also for the page).
pub async fn view_with_history(state: &AppState, id: &str) -> ApiResult<RolloutView> {
    let mut conn = state.redis.clone();
    let r = rollouts::store::load(&mut conn, id).await?;
    let mut view = RolloutView::from(&r);
    view.history = Some(rollouts::store::history(&mut conn, id, 100).await?);
    Ok(view)
}

async fn control(
    state: &AppState,
    caller: &Caller,
    id: &str,
    what: Control,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Operator)?;
    let r = rollouts::control(state, id, what, caller).await?;
    Ok(HttpResponse::Ok().json(RolloutView::from(&r)))
}

macro_rules! control_handler {
    ($fn:ident, $path:literal, $op:literal, $control:expr, $what:literal) => {
        #[doc = $what]
        #[utoipa::path(post, path = $path, tag = "rollouts", operation_id = $op,
            params(("id" = JobId, Path, description = "Rollout id")),
            responses((status = 200, description = "The rollout after the change", body = RolloutView),
                (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
                (status = 404, response = resp::RolloutNotFound), (status = 409, response = resp::RolloutRefused)),
            security(("bearer" = [])))]
        pub async fn $fn(
            state: web::Data<AppState>,
            caller: Caller,
            id: web::Path<String>,
        ) -> ApiResult<HttpResponse> {
            control(&state, &caller, &id, $control).await
        }
    };
}

control_handler!(
    pause,
    "/api/v1/rollouts/{id}/pause",
    "pause_rollout",
    Control::Pause,
    "Pauses a running rollout: no new batch starts; jobs already started finish."
);
control_handler!(
    resume,
    "/api/v1/rollouts/{id}/resume",
    "resume_rollout",
    Control::Resume,
    "Resumes a paused rollout from where it was."
);
control_handler!(
    abort,
    "/api/v1/rollouts/{id}/abort",
    "abort_rollout",
    Control::Abort,
    "Aborts a running or paused rollout: servers not started are skipped, jobs still queued are canceled, running ones finish."
);
control_handler!(
    retry,
    "/api/v1/rollouts/{id}/retry",
    "retry_rollout",
    Control::Retry,
    "Runs the failed servers again (and, after a halt, the skipped ones); the rollout goes on batch by batch."
);
