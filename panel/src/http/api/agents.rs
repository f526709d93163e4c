//! `/api/v1/agents`: list, get, register (admin).

use actix_web::{HttpResponse, web};
use outfitter_contract::ids;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::agents::{self, AgentStatus};
use crate::audit;
use crate::auth::{Caller, Role};
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult, Code, ErrorBody};
use crate::http::body::JsonBody;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentStatus>,
}

/// Every registered agent with its heartbeat and queue depth.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents",
    responses((status = 200, body = AgentList), (status = 401, body = ErrorBody)),
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

/// One agent.
#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    responses((status = 200, body = AgentStatus), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
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
    #[schema(example = "web-1")]
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredAgent {
    pub agent: AgentStatus,
    /// The runner's configuration file (TOML) with the agent's key: handle as a secret.
    pub runner_config: String,
}

/// Registers an agent and returns its runner configuration (as `outfitter-panel agent add`).
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", request_body = NewAgent,
    responses((status = 201, body = RegisteredAgent), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<NewAgent>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Admin)?;
    let id = body.0.id;
    ids::validate_agent_id(&id).map_err(|e| ApiError::field("id", "id", e.to_string()))?;
    let mut conn = state.redis.clone();
    if !agents::register(&mut conn, &id, &caller.name, now_ms()).await? {
        return Err(ApiError::new(
            Code::AlreadyExists,
            format!("agent {id:?} is registered already"),
        ));
    }
    audit::record(&mut conn, &caller.name, "agent.add", &id, &caller.from, "").await;
    let agent = agents::status(&mut conn, &id)
        .await?
        .ok_or_else(|| ApiError::new(Code::Internal, "agent vanished after registration"))?;
    let key = state.secret.agent_key(&id).to_hex();
    Ok(HttpResponse::Created().json(RegisteredAgent {
        agent,
        runner_config: agents::runner_config(&id, &key, &state.settings.redis_url),
    }))
}
