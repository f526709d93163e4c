//! `/api/v1/agents`: list, get; register, rotate the key, remove (admin).

use actix_web::{HttpResponse, web};
use outfitter_contract::ids;
use outfitter_contract::labels::Labels;
use outfitter_contract::metrics_history::Range;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::agents::history::{self, Point};
use crate::agents::lifecycle::{self, Actor, Removal, WaitingJobs};
use crate::agents::{self, AgentStatus};
use crate::audit;
use crate::auth::{Caller, Role};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult, Code};
use crate::http::body::JsonBody;
use crate::http::openapi::responses as resp;
use crate::http::openapi::schemas::AgentId;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentStatus>,
}

/// Every registered agent with its heartbeat and queue depth.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", operation_id = "list_agents",
    responses((status = 200, description = "Every registered agent", body = AgentList)),
    security(("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    let mut conn = state.redis.clone();
    Ok(HttpResponse::Ok().json(AgentList {
        agents: agents::list(&mut conn).await?,
    }))
}

/// Checks an agent id from a path.
pub fn check_agent_id(id: &str) -> ApiResult<()> {
    ids::validate_agent_id(id).map_err(|e| ApiError::new(Code::InvalidParameter, e.to_string()))
}

/// The range asked for (`hour` when none); anything else is a 400 naming the choices.
pub fn parse_range(asked: Option<&str>) -> ApiResult<Range> {
    match asked.filter(|r| !r.is_empty()) {
        None => Ok(Range::Hour),
        Some(name) => Range::parse(name).ok_or_else(|| {
            ApiError::new(
                Code::InvalidParameter,
                format!("range must be one of hour, day, month (got {name:?})"),
            )
        }),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct MetricsQuery {
    /// `hour` (raw points, one per heartbeat), `day` (minute averages) or `month` (hour
    /// averages); `hour` when absent.
    pub range: Option<String>,
}

/// A server's metrics over a range, oldest point first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricsHistory {
    #[schema(example = "web-1")]
    pub agent_id: String,
    #[schema(example = "hour")]
    pub range: &'static str,
    /// Milliseconds one point stands for (the heartbeat interval, a minute, an hour).
    pub point_ms: i64,
    pub points: Vec<Point>,
}

/// One agent's metrics history (CPU, load, memory, swap, fullest disk, disk and network
/// rates). The latest full metrics are `facts.metrics` of `GET /api/v1/agents/{id}`.
#[utoipa::path(get, path = "/api/v1/agents/{id}/metrics", tag = "agents", operation_id = "agent_metrics",
    params(("id" = AgentId, Path, description = "Agent id"), MetricsQuery),
    responses((status = 200, description = "The points of the range", body = MetricsHistory),
        (status = 400, response = resp::BadRequest), (status = 404, response = resp::AgentNotFound)),
    security(("bearer" = [])))]
pub async fn metrics(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<MetricsQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    check_agent_id(&id)?;
    let range = parse_range(query.range.as_deref())?;
    let mut conn = state.redis.clone();
    if !agents::exists(&mut conn, &id).await? {
        return Err(ApiError::new(
            Code::AgentNotFound,
            format!("no registered agent {:?}", id.as_str()),
        ));
    }
    let points = history::points(&mut conn, &id, range, now_ms()).await?;
    Ok(HttpResponse::Ok().json(MetricsHistory {
        agent_id: id.into_inner(),
        range: range.as_str(),
        point_ms: range.tier().width_ms,
        points,
    }))
}

/// One agent.
#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents", operation_id = "get_agent",
    params(("id" = AgentId, Path, description = "Agent id")),
    responses((status = 200, description = "The agent", body = AgentStatus),
        (status = 400, response = resp::BadRequest), (status = 404, response = resp::AgentNotFound)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    check_agent_id(&id)?;
    let mut conn = state.redis.clone();
    let status = agents::status(&mut conn, &id).await?.ok_or_else(|| {
        ApiError::new(
            Code::AgentNotFound,
            format!("no registered agent {:?}", id.as_str()),
        )
    })?;
    Ok(HttpResponse::Ok().json(status))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    #[schema(value_type = AgentId)]
    pub id: String,
    /// The server's labels (`{"env": "prod"}`): keys 1–63 of `a-z 0-9 . _ / -`, values 0–63
    /// of `A-Z a-z 0-9 . _ -`, at most 32.
    #[serde(default)]
    #[schema(value_type = crate::http::openapi::schemas::LabelMap)]
    pub labels: Labels,
    /// Also give the agent its own Redis user, confined by ACL to its keys and channels; the
    /// `redis_url` of `runner_config` then carries it (rotations change its password,
    /// removal deletes it).
    #[serde(default)]
    pub redis_user: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelsBody {
    /// Every label the server carries from now on (replaces the old ones).
    #[schema(value_type = crate::http::openapi::schemas::LabelMap)]
    pub labels: Labels,
}

/// Replaces an agent's labels (operator).
#[utoipa::path(put, path = "/api/v1/agents/{id}/labels", tag = "agents", operation_id = "set_agent_labels",
    request_body = LabelsBody,
    params(("id" = AgentId, Path, description = "Agent id")),
    responses((status = 200, description = "The agent with its new labels", body = AgentStatus),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::AgentNotFound), (status = 413, response = resp::PayloadTooLarge),
        (status = 415, response = resp::UnsupportedMediaType), (status = 422, response = resp::ValidationFailed)),
    security(("bearer" = [])))]
pub async fn set_labels(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<LabelsBody>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Operator)?;
    check_agent_id(&id)?;
    let mut conn = state.redis.clone();
    let actor = Actor {
        who: &caller.name,
        from: &caller.from,
    };
    agents::set_labels(&mut conn, &id, &body.0.labels, actor).await?;
    state.agents_seen.invalidate();
    let status = agents::status(&mut conn, &id)
        .await?
        .ok_or_else(|| agents::keys::not_registered(&id))?;
    Ok(HttpResponse::Ok().json(status))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredAgent {
    pub agent: AgentStatus,
    /// The runner's configuration file (TOML) with the agent's key: handle as a secret.
    pub runner_config: String,
}

/// Registers an agent and returns its runner configuration (as `outfitter-panel agent add`).
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", operation_id = "create_agent", request_body = NewAgent,
    responses((status = 201, description = "Registered; `runner_config` is the runner's configuration", body = RegisteredAgent),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 409, response = resp::AlreadyExists), (status = 413, response = resp::PayloadTooLarge),
        (status = 415, response = resp::UnsupportedMediaType), (status = 422, response = resp::ValidationFailed)),
    security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<NewAgent>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let NewAgent {
        id,
        labels,
        redis_user,
    } = body.0;
    ids::validate_agent_id(&id).map_err(|e| ApiError::field("id", "id", e.to_string()))?;
    outfitter_contract::labels::check_labels(&labels).map_err(agents::Error::from)?;
    let mut conn = state.redis.clone();
    if !agents::register(&mut conn, &id, &labels, &caller.name, now_ms()).await? {
        return Err(ApiError::new(
            Code::AlreadyExists,
            format!("agent {id:?} is registered already"),
        ));
    }
    let detail = outfitter_contract::labels::labels_text(&labels);
    audit::record(
        &mut conn,
        &caller.name,
        "agent.add",
        &id,
        &caller.from,
        &detail,
    )
    .await;
    let agent = agents::status(&mut conn, &id)
        .await?
        .ok_or_else(|| ApiError::new(Code::Internal, "agent vanished after registration"))?;
    let keys = if redis_user {
        agents::redis_user::enable(&mut conn, &state.secret, &id).await?
    } else {
        agents::keys::load(&mut conn, &state.secret, &id).await?
    };
    state.agents_seen.invalidate();
    Ok(HttpResponse::Created().json(RegisteredAgent {
        agent,
        runner_config: keys.runner_config(&state.settings.redis_url, state.settings.redis_cluster),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedAgent {
    /// The agent, with its new `key_generation`.
    pub agent: AgentStatus,
    /// The runner's new configuration file (TOML, as `outfitter-panel agent rotate` prints
    /// it): handle as a secret.
    pub runner_config: String,
    /// The agent's unfinished jobs at the moment of the rotation.
    pub waiting: WaitingJobs,
    /// What happens to those jobs and what to do, for people.
    pub notice: String,
}

/// Gives the agent a new key (the next generation) and returns the runner's new
/// configuration (as `outfitter-panel agent rotate`). Jobs queued before it keep the old
/// signature: `notice` says what becomes of them.
#[utoipa::path(post, path = "/api/v1/agents/{id}/rotate", tag = "agents", operation_id = "rotate_agent",
    params(("id" = AgentId, Path, description = "Agent id")),
    responses((status = 200, description = "The new key generation and the runner's new configuration", body = RotatedAgent),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::AgentNotFound)),
    security(("bearer" = [])))]
pub async fn rotate(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    check_agent_id(&id)?;
    let mut conn = state.redis.clone();
    let actor = Actor {
        who: &caller.name,
        from: &caller.from,
    };
    let rotation = lifecycle::rotate(&mut conn, &state.secret, &id, actor).await?;
    state.agents_seen.invalidate();
    let agent = agents::status(&mut conn, &id)
        .await?
        .ok_or_else(|| agents::keys::not_registered(&id))?;
    Ok(HttpResponse::Ok().json(RotatedAgent {
        agent,
        runner_config: rotation
            .keys
            .runner_config(&state.settings.redis_url, state.settings.redis_cluster),
        notice: rotation.notice(),
        waiting: rotation.waiting,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    /// Remove even with unfinished jobs: waiting ones end `canceled`, running ones finish.
    #[serde(default)]
    pub force: bool,
}

/// Unregisters an agent (as `outfitter-panel agent remove`). Refused with `agent_busy` while
/// it has queued, retrying or running jobs, unless `force=true`. Job history stays, and its
/// runner keeps running until it is stopped on its server.
#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "agents", operation_id = "remove_agent",
    params(("id" = AgentId, Path, description = "Agent id"), RemoveQuery),
    responses((status = 200, description = "Unregistered; what became of its jobs", body = Removal),
        (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
        (status = 404, response = resp::AgentNotFound), (status = 409, response = resp::AgentBusy)),
    security(("bearer" = [])))]
pub async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<RemoveQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    check_agent_id(&id)?;
    let mut conn = state.redis.clone();
    let actor = Actor {
        who: &caller.name,
        from: &caller.from,
    };
    let removal = lifecycle::remove(&mut conn, &id, query.force, now_ms(), actor).await?;
    state.agents_seen.invalidate();
    Ok(HttpResponse::Ok().json(removal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_default_to_the_hour_and_others_are_refused_by_name() {
        assert_eq!(parse_range(None).unwrap(), Range::Hour);
        assert_eq!(parse_range(Some("")).unwrap(), Range::Hour);
        assert_eq!(parse_range(Some("month")).unwrap(), Range::Month);
        let e = parse_range(Some("year")).unwrap_err();
        assert_eq!(e.code, Code::InvalidParameter);
        assert!(e.message.contains("range must be one of hour, day, month"));
    }
}
