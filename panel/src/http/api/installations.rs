//! `/api/v1/installations`: list, get, and the lifecycle actions (reconfigure, upgrade,
//! uninstall, backup, restore). Viewers read, operators act, as with jobs.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use outfitter_contract::installation::InstallationState;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Role};
use crate::error::{ApiError, ApiResult, Code};
use crate::http::body::JsonBody;
use crate::http::openapi::responses as resp;
use crate::http::openapi::schemas::{self, JobId};
use crate::installations::{self, Installation, Request, settle, store};
use crate::state::AppState;

/// A backup an installation's job took.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BackupView {
    pub id: String,
    pub version: String,
    pub job_id: String,
    pub at: i64,
}

/// One job of an installation's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryView {
    pub at: i64,
    #[schema(value_type = crate::http::openapi::schemas::ActionName)]
    pub action: String,
    pub job_id: String,
    pub by: String,
    /// `queued`, or the job's end (`succeeded`, `failed (rolled_back)`, …).
    pub result: String,
    pub version: String,
}

/// An installation as the API returns it. Times are unix milliseconds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstallationView {
    pub id: String,
    #[schema(example = "web-1")]
    pub agent_id: String,
    #[schema(example = "nginx")]
    pub app_id: String,
    pub instance: String,
    /// The version it stands at.
    pub version: String,
    #[schema(value_type = crate::http::openapi::schemas::InstallationStateName)]
    pub state: String,
    /// The settings it runs with; secrets are `********`.
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
    /// Send it back as `rev` to refuse the action if the installation changed meanwhile.
    pub rev: u64,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    /// The job acting on it now.
    pub pending_job_id: Option<String>,
    /// The catalog's version, when it is newer than the installed one.
    pub upgrade_available: Option<String>,
    /// The actions that apply now.
    #[schema(value_type = Vec<crate::http::openapi::schemas::ActionName>)]
    pub actions: Vec<String>,
    pub backups: Vec<BackupView>,
    /// Its jobs, newest first (only in `GET /installations/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Vec<HistoryView>>,
}

impl InstallationView {
    pub fn new(state: &AppState, i: Installation) -> Self {
        let catalog = state.catalog.current();
        let bundle = catalog.get(&i.app_id);
        let actions = installations::actions::offered(&i, bundle)
            .into_iter()
            .map(|a| a.as_str().to_owned())
            .collect();
        let upgrade_available = installations::upgrade_available(&i, bundle);
        InstallationView {
            pending_job_id: i.pending.as_ref().map(|p| p.job_id.clone()),
            backups: i
                .backups
                .iter()
                .map(|b| BackupView {
                    id: b.id.clone(),
                    version: b.version.clone(),
                    job_id: b.job_id.clone(),
                    at: b.at,
                })
                .collect(),
            id: i.id,
            agent_id: i.agent_id,
            app_id: i.app_id,
            instance: i.instance,
            version: i.version,
            state: i.state.as_str().to_owned(),
            inputs: i.inputs,
            rev: i.rev,
            created_at: i.created_at,
            created_by: i.created_by,
            updated_at: i.updated_at,
            upgrade_available,
            actions,
            jobs: None,
        }
    }
}

/// The query of `GET /installations`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstallationQuery {
    /// Only installations on this agent.
    #[param(schema_with = schemas::agent_id_filter)]
    pub agent_id: Option<String>,
    /// Only installations of this app.
    #[param(schema_with = schemas::app_id_filter)]
    pub app_id: Option<String>,
    /// Only installations in this state.
    #[param(schema_with = schemas::installation_state_filter)]
    pub state: Option<String>,
}

impl InstallationQuery {
    pub fn filter(&self) -> ApiResult<store::Filter> {
        let blank = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        for (name, v) in [("agent_id", &self.agent_id), ("app_id", &self.app_id)] {
            if let Some(v) = blank(v) {
                outfitter_contract::ids::validate_agent_id(&v)
                    .map_err(|e| ApiError::new(Code::InvalidParameter, format!("{name}: {e}")))?;
            }
        }
        let state = blank(&self.state)
            .map(|s| s.parse::<InstallationState>())
            .transpose()
            .map_err(|e| ApiError::new(Code::InvalidParameter, e))?;
        Ok(store::Filter {
            agent_id: blank(&self.agent_id),
            app_id: blank(&self.app_id),
            state,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstallationList {
    pub installations: Vec<InstallationView>,
}

/// Installations, newest first (at most 1,000 looked at).
#[utoipa::path(get, path = "/api/v1/installations", tag = "installations", operation_id = "list_installations",
    params(InstallationQuery),
    responses((status = 200, description = "Installations, newest first", body = InstallationList),
        (status = 400, response = resp::BadRequest)),
    security(("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<InstallationQuery>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    let filter = query.filter()?;
    let mut conn = state.redis.clone();
    let installations = settle::list(&mut conn, &filter)
        .await?
        .into_iter()
        .map(|i| InstallationView::new(&state, i))
        .collect();
    Ok(HttpResponse::Ok().json(InstallationList { installations }))
}

/// One installation, with its history.
#[utoipa::path(get, path = "/api/v1/installations/{id}", tag = "installations", operation_id = "get_installation",
    params(("id" = JobId, Path, description = "Installation id")),
    responses((status = 200, description = "The installation", body = InstallationView),
        (status = 400, response = resp::BadRequest), (status = 404, response = resp::InstallationNotFound)),
    security(("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Viewer)?;
    Ok(HttpResponse::Ok().json(detail(&state, &id).await?))
}

/// An installation with its history, settled.
pub async fn detail(state: &AppState, id: &str) -> ApiResult<InstallationView> {
    let mut conn = state.redis.clone();
    let inst = settle::current(&mut conn, id).await?;
    let history = store::history(&mut conn, &inst).await?;
    let mut view = InstallationView::new(state, inst);
    view.jobs = Some(
        history
            .into_iter()
            .map(|h| HistoryView {
                at: h.at,
                action: h.action.as_str().to_owned(),
                job_id: h.job_id,
                by: h.by,
                result: h.result,
                version: h.version,
            })
            .collect(),
    );
    Ok(view)
}

/// What an accepted action answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionAccepted {
    pub installation_id: String,
    #[schema(value_type = crate::http::openapi::schemas::ActionName)]
    pub action: String,
    /// The job that carries it out.
    pub job_id: String,
}

/// `POST …/reconfigure`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconfigureBody {
    /// The new values by name; a secret left out, empty or `********` keeps its value, and
    /// an input left out keeps its current value.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
    /// The `rev` the caller read: refused with `installation_changed` if it moved on.
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    pub rev: Option<u64>,
}

/// `POST …/upgrade`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpgradeBody {
    /// The version to upgrade to; it must be the catalog's (the default).
    #[serde(default)]
    pub version: Option<String>,
    /// Values for inputs the new version adds (others are carried over).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    pub rev: Option<u64>,
}

/// `POST …/uninstall`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UninstallBody {
    /// Remove the app's data too (`PURGE=true`); default false keeps it.
    #[serde(default)]
    pub purge: bool,
    /// Uninstall although other installations on the server stand on this one (their
    /// manifests `require` its app); without it that is `409 dependency_in_use` naming them.
    #[serde(default)]
    pub force: bool,
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    pub rev: Option<u64>,
}

/// `POST …/backup`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupBody {
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    pub rev: Option<u64>,
}

/// `POST …/restore`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    /// One of the installation's `backups`.
    pub backup_id: String,
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    pub rev: Option<u64>,
}

async fn act(
    state: &AppState,
    caller: &Caller,
    id: &str,
    req: Request,
    rev: Option<u64>,
) -> ApiResult<HttpResponse> {
    caller.require(Role::Operator)?;
    store::check_id(id)?;
    let done = installations::actions::request(state, id, req, rev, caller, None).await?;
    let lifecycle = done
        .job
        .lifecycle
        .as_ref()
        .ok_or_else(|| ApiError::new(Code::Internal, "the job carries no installation"))?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED)
        .insert_header(("Location", format!("/api/v1/jobs/{}", done.job.id)))
        .json(ActionAccepted {
            installation_id: lifecycle.installation_id.clone(),
            action: lifecycle.action.as_str().to_owned(),
            job_id: done.job.id.clone(),
        }))
}

/// One action handler: its OpenAPI operation and the [`Request`] its body makes.
macro_rules! action_handler {
    ($fn:ident, $path:literal, $op:literal, $body:ty, $what:literal, |$b:ident| $req:expr) => {
        #[doc = $what]
        #[utoipa::path(post, path = $path, tag = "installations", operation_id = $op, request_body = $body,
            params(("id" = JobId, Path, description = "Installation id")),
            responses((status = 202, description = "Queued; `job_id` carries it out", body = ActionAccepted,
                    headers(("Location" = String, description = "The job's URL"))),
                (status = 400, response = resp::BadRequest), (status = 403, response = resp::Forbidden),
                (status = 404, response = resp::InstallationNotFound), (status = 409, response = resp::ActionRefused),
                (status = 413, response = resp::PayloadTooLarge), (status = 415, response = resp::UnsupportedMediaType),
                (status = 422, response = resp::ValidationFailed)),
            security(("bearer" = [])))]
        pub async fn $fn(
            state: web::Data<AppState>,
            caller: Caller,
            id: web::Path<String>,
            body: JsonBody<$body>,
        ) -> ApiResult<HttpResponse> {
            let $b = body.0;
            let rev = $b.rev;
            act(&state, &caller, &id, $req, rev).await
        }
    };
}

action_handler!(
    reconfigure,
    "/api/v1/installations/{id}/reconfigure",
    "reconfigure_installation",
    ReconfigureBody,
    "Changes the settings: runs the install script with the new values; on success the installation holds them.",
    |b| Request::Reconfigure { inputs: b.inputs }
);
action_handler!(
    upgrade,
    "/api/v1/installations/{id}/upgrade",
    "upgrade_installation",
    UpgradeBody,
    "Upgrades to the catalog's version: backup, upgrade, health check, and a rollback by itself when one fails.",
    |b| Request::Upgrade {
        version: b.version,
        inputs: b.inputs
    }
);
action_handler!(
    uninstall,
    "/api/v1/installations/{id}/uninstall",
    "uninstall_installation",
    UninstallBody,
    "Runs the uninstall script; data stays unless `purge`.",
    |b| Request::Uninstall {
        purge: b.purge,
        force: b.force
    }
);
action_handler!(
    backup,
    "/api/v1/installations/{id}/backup",
    "backup_installation",
    BackupBody,
    "Takes a backup now.",
    |b| Request::Backup
);
action_handler!(
    restore,
    "/api/v1/installations/{id}/restore",
    "restore_installation",
    RestoreBody,
    "Restores a listed backup, then runs the health check.",
    |b| Request::Restore {
        backup_id: b.backup_id
    }
);
