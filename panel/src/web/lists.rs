//! The job list (filters, pages), the server list and the audit log.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use outfitter_contract::host::RunnerStats;
use outfitter_contract::job::JobState;
use serde::{Deserialize, Serialize};

use super::{WebResult, base_context, encode_query, form_caller, render, signed_in, when};
use crate::agents;
use crate::agents::lifecycle::Actor;
use crate::audit;
use crate::auth::Role;
use crate::clock::format_duration;
use crate::error::{ApiError, Code};
use crate::http::api::admin::{AuditQuery, audit_params};
use crate::jobs::JobQuery;
use crate::state::AppState;

#[derive(Serialize)]
struct JobRow {
    id: String,
    app_id: String,
    agent_id: String,
    state: String,
    progress: u8,
    attempts: u32,
    exit_code: String,
    created: String,
    duration: String,
}

#[derive(Serialize)]
struct FilterView {
    state: String,
    app_id: String,
    agent_id: String,
}

pub(super) async fn jobs(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<JobQuery>,
) -> WebResult<HttpResponse> {
    let caller = signed_in(&state, &req).await?;
    let filter = q.filter()?;
    let mut conn = state.redis.clone();
    let page = q.page(&mut conn).await?;
    let rows: Vec<JobRow> = page
        .jobs
        .iter()
        .map(|j| JobRow {
            id: j.id.clone(),
            app_id: j.app_id.clone(),
            agent_id: j.agent_id.clone(),
            state: j.state.as_str().to_owned(),
            progress: j.progress,
            attempts: j.attempts,
            exit_code: j.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            created: when(Some(j.created_at)),
            duration: j.duration_ms().map(format_duration).unwrap_or_default(),
        })
        .collect();
    let fv = FilterView {
        state: filter
            .state
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        app_id: filter.app_id.clone().unwrap_or_default(),
        agent_id: filter.agent_id.clone().unwrap_or_default(),
    };
    let next = page.next.map(|n| {
        format!(
            "/jobs?state={}&app_id={}&agent_id={}&before={}",
            encode_query(&fv.state),
            encode_query(&fv.app_id),
            encode_query(&fv.agent_id),
            encode_query(&n)
        )
    });
    let catalog = state.catalog.current();
    let app_ids: Vec<String> = catalog.catalog.apps().map(|b| b.id().to_owned()).collect();
    let agent_ids = agents::ids(&mut conn).await?;
    let states: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
    let mut ctx = base_context(Some(&caller));
    ctx.insert("jobs", &rows);
    ctx.insert("filter", &fv);
    ctx.insert("states", &states);
    ctx.insert("app_ids", &app_ids);
    ctx.insert("agent_ids", &agent_ids);
    ctx.insert("next", &next.unwrap_or_default());
    render(&state, "jobs.html", &ctx, StatusCode::OK)
}

#[derive(Serialize)]
struct AgentRow {
    id: String,
    online: bool,
    os: String,
    arch: String,
    cpus: String,
    ram: String,
    disk: String,
    load: String,
    runner_version: String,
    last_seen: String,
    queue_depth: u64,
    processing: u64,
    labels: String,
    /// The attention conditions raised, for people (`disk_low: /var 95.0% used`).
    attention: Vec<String>,
    /// What the runner counted since it started (`None`: a runner older than the counts).
    runner: Option<RunnerRow>,
}

/// A heartbeat's [`RunnerStats`], as shown.
#[derive(Serialize)]
struct RunnerRow {
    succeeded: u64,
    failed: u64,
    retried: u64,
    rejected: u64,
    outbox: u64,
    redis_errors: u64,
    last_job: String,
    since: String,
}

impl RunnerRow {
    fn of(s: &RunnerStats) -> Self {
        RunnerRow {
            succeeded: s.jobs_succeeded,
            failed: s.jobs_failed,
            retried: s.jobs_retried,
            rejected: s.jobs_rejected,
            outbox: s.outbox_depth,
            redis_errors: s.redis_errors,
            last_job: s
                .last_job_ms
                .map(|ms| format_duration(ms.min(i64::MAX as u64) as i64))
                .unwrap_or_else(|| "—".into()),
            since: when(Some(s.started_at)),
        }
    }
}

/// `/agents?status=online|offline|attention&upgrade=available`: the dashboard's links.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerFilter {
    status: Option<String>,
    upgrade: Option<String>,
}

/// Which servers a [`ServerFilter`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerStatus {
    Online,
    Offline,
    Attention,
}

impl ServerFilter {
    fn status(&self) -> Result<Option<ServerStatus>, ApiError> {
        match self.status.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some("online") => Ok(Some(ServerStatus::Online)),
            Some("offline") => Ok(Some(ServerStatus::Offline)),
            Some("attention") => Ok(Some(ServerStatus::Attention)),
            Some(_) => Err(ApiError::new(
                Code::InvalidParameter,
                "status must be one of online, offline, attention",
            )),
        }
    }

    fn only_upgradable(&self) -> Result<bool, ApiError> {
        match self.upgrade.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(false),
            Some("available") => Ok(true),
            Some(_) => Err(ApiError::new(
                Code::InvalidParameter,
                "upgrade must be `available`",
            )),
        }
    }
}

pub(super) async fn agents(
    req: HttpRequest,
    state: web::Data<AppState>,
    filter: web::Query<ServerFilter>,
) -> WebResult<HttpResponse> {
    agents_page(&state, &req, None, &filter).await
}

/// The labels form of one server: `key=value, key=value` replaces its labels.
pub(super) async fn set_labels(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let caller = form_caller(&state, &req, &form, Role::Operator).await?;
    outfitter_contract::ids::validate_agent_id(&id)
        .map_err(|e| ApiError::new(Code::InvalidParameter, e.to_string()))?;
    let text = super::form_value(&form, "labels").unwrap_or("");
    let mut conn = state.redis.clone();
    let actor = Actor {
        who: &caller.name,
        from: &caller.from,
    };
    let set = match outfitter_contract::labels::parse_labels(text) {
        Ok(labels) => agents::set_labels(&mut conn, &id, &labels, actor).await,
        Err(e) => Err(e.into()),
    };
    match set {
        Ok(()) => state.agents_seen.invalidate(),
        Err(e @ agents::Error::Labels(_)) => {
            return agents_page(
                &state,
                &req,
                Some(&ApiError::from(e)),
                &ServerFilter::default(),
            )
            .await;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(super::redirect("/agents"))
}

async fn agents_page(
    state: &AppState,
    req: &HttpRequest,
    error: Option<&ApiError>,
    filter: &ServerFilter,
) -> WebResult<HttpResponse> {
    let caller = signed_in(state, req).await?;
    let status = filter.status()?;
    let only_upgradable = filter.only_upgradable()?;
    let attention = match status {
        Some(ServerStatus::Attention) => {
            crate::dashboard::summary(state)
                .await
                .map_err(ApiError::from)?
                .servers
                .attention
        }
        _ => Default::default(),
    };
    let mut conn = state.redis.clone();
    let rows: Vec<AgentRow> = agents::list(&mut conn)
        .await?
        .into_iter()
        .filter(|a| match status {
            None => true,
            Some(ServerStatus::Online) => a.online,
            Some(ServerStatus::Offline) => !a.online,
            Some(ServerStatus::Attention) => attention.contains(&a.id),
        })
        .map(|a| {
            let f = a.facts.as_ref();
            let os = f
                .map(|f| {
                    if f.os_pretty.is_empty() {
                        format!("{} {}", f.os_family, f.os_version)
                    } else {
                        f.os_pretty.clone()
                    }
                })
                .unwrap_or_default();
            AgentRow {
                labels: outfitter_contract::labels::labels_text(&a.labels),
                os,
                arch: f.map(|f| f.arch.clone()).unwrap_or_default(),
                cpus: f.map(|f| f.cpus.to_string()).unwrap_or_default(),
                ram: f.map(|f| format!("{} MiB", f.ram_mb)).unwrap_or_default(),
                disk: f
                    .map(|f| format!("{} MiB", f.disk_free_mb))
                    .unwrap_or_default(),
                load: f.map(|f| format!("{:.2}", f.load1)).unwrap_or_default(),
                runner_version: f.map(|f| f.runner_version.clone()).unwrap_or_default(),
                last_seen: when(a.last_seen),
                attention: a
                    .attention
                    .iter()
                    .map(|r| format!("{}: {}", r.condition.as_str(), r.detail))
                    .collect(),
                id: a.id,
                online: a.online,
                queue_depth: a.queue_depth,
                processing: a.processing,
                runner: f.and_then(|f| f.runner.as_ref()).map(RunnerRow::of),
            }
        })
        .collect();
    let mut installations =
        super::installation_page::rows(state, &crate::installations::store::Filter::default())
            .await?;
    if only_upgradable {
        installations.retain(|i| i.has_upgrade());
    }
    let mut ctx = base_context(Some(&caller));
    ctx.insert("can_label", &(caller.role >= Role::Operator));
    ctx.insert(
        "error",
        &error.map(|e| e.message.clone()).unwrap_or_default(),
    );
    ctx.insert("agents", &rows);
    ctx.insert("installations", &installations);
    ctx.insert(
        "showing",
        &match (status, only_upgradable) {
            (None, false) => "",
            (Some(ServerStatus::Online), _) => "servers online",
            (Some(ServerStatus::Offline), _) => "servers offline",
            (Some(ServerStatus::Attention), _) => "servers that need attention",
            (None, true) => "installations with an upgrade available",
        },
    );
    let status = error.map_or(StatusCode::OK, |e| e.code.status());
    render(state, "agents.html", &ctx, status)
}

#[derive(Serialize)]
struct AuditRow {
    when: String,
    who: String,
    action: String,
    target: String,
    from: String,
    detail: String,
}

pub(super) async fn audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<AuditQuery>,
) -> WebResult<HttpResponse> {
    let caller = signed_in(&state, &req).await?;
    caller.require(Role::Admin)?;
    let (before, limit) = audit_params(&q)?;
    let mut conn = state.redis.clone();
    let entries = audit::list(&mut conn, before.as_deref(), limit).await?;
    let next = if entries.len() == limit {
        entries.last().map(|e| e.id.clone()).unwrap_or_default()
    } else {
        String::new()
    };
    let rows: Vec<AuditRow> = entries
        .into_iter()
        .map(|e| AuditRow {
            when: when(Some(e.ts)),
            who: e.who,
            action: e.action,
            target: e.target,
            from: e.from,
            detail: e.detail,
        })
        .collect();
    let mut ctx = base_context(Some(&caller));
    ctx.insert("entries", &rows);
    ctx.insert("next", &next);
    render(&state, "audit.html", &ctx, StatusCode::OK)
}
