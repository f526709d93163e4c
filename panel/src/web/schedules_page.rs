//! The schedules page: the list (cadence, target, last and next run) with pause, resume and
//! delete buttons, and the form that creates one. Forms go through the same domain calls as
//! the API (`crate::schedules::manage`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{WebResult, base_context, form_caller, form_value, redirect, render, signed_in, when};
use crate::agents;
use crate::auth::{Caller, Role};
use crate::error::{ApiError, Code};
use crate::schedules::{
    CatchUp, NewSchedule, RunKind, Schedule, ScheduledAction, Target, manage, store,
};
use crate::state::AppState;

#[derive(Serialize)]
struct ScheduleRow {
    id: String,
    name: String,
    cron: String,
    timezone: String,
    target: String,
    catch_up: &'static str,
    paused: bool,
    next_run: String,
    last_due: String,
    /// Where the last run's work is (`/jobs/<id>` or `/rollouts/<id>`) and what it is.
    last_link: String,
    last_link_text: &'static str,
    last_note: String,
}

fn row(s: Schedule) -> ScheduleRow {
    let (last_due, (last_link, last_link_text), last_note) = match &s.last {
        Some(r) => (
            when(Some(r.due)),
            match (&r.job_id, &r.rollout_id) {
                (Some(job), _) => (format!("/jobs/{job}"), "job"),
                (None, Some(rollout)) => (format!("/rollouts/{rollout}"), "rollout"),
                (None, None) => (String::new(), ""),
            },
            match (r.kind, &r.error) {
                (_, Some(e)) => format!("nothing started: {e}"),
                (RunKind::Skipped, None) => "skipped (missed while no panel ran)".into(),
                (RunKind::CatchUp, None) => "catch-up".into(),
                (RunKind::OnTime, None) => String::new(),
            },
        ),
        None => ("—".into(), (String::new(), ""), String::new()),
    };
    ScheduleRow {
        next_run: if s.paused {
            "paused".into()
        } else {
            when(s.next_due)
        },
        target: s.def.target.describe(),
        catch_up: s.def.catch_up.as_str(),
        paused: s.paused,
        id: s.def.id,
        name: s.def.name,
        cron: s.def.cron,
        timezone: s.def.timezone,
        last_due,
        last_link,
        last_link_text,
        last_note,
    }
}

async fn page_for(
    state: &AppState,
    caller: &Caller,
    error: Option<&ApiError>,
    form: &[(String, String)],
) -> WebResult<HttpResponse> {
    let mut conn = state.redis.clone();
    let rows: Vec<ScheduleRow> = store::list(&mut conn)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(row)
        .collect();
    let catalog = state.catalog.current();
    let app_ids: Vec<String> = catalog.catalog.apps().map(|b| b.id().to_owned()).collect();
    let agent_ids = agents::ids(&mut conn).await?;
    // A refused form comes back with what was typed, except inputs refused for holding a
    // secret: a secret is never echoed.
    let secret = error.is_some_and(|e| e.fields.iter().any(|f| f.rule == "secret"));
    let typed: Map<String, Value> = form
        .iter()
        .filter(|(k, _)| !(k.starts_with('_') || (secret && k == "inputs")))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut ctx = base_context(Some(caller));
    ctx.insert("schedules", &rows);
    ctx.insert("app_ids", &app_ids);
    ctx.insert("agent_ids", &agent_ids);
    ctx.insert("operator", &(caller.role >= Role::Operator));
    ctx.insert("typed", &typed);
    ctx.insert("actions", &ACTIONS.map(ScheduledAction::as_str));
    let message = error.map(|e| {
        let fields: Vec<String> = e
            .fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect();
        if fields.is_empty() {
            e.message.clone()
        } else {
            fields.join("; ")
        }
    });
    ctx.insert("error", &message.unwrap_or_default());
    let status = error.map_or(StatusCode::OK, |e| e.code.status());
    render(state, "schedules.html", &ctx, status)
}

pub(super) async fn page(req: HttpRequest, state: web::Data<AppState>) -> WebResult<HttpResponse> {
    let caller = signed_in(&state, &req).await?;
    page_for(&state, &caller, None, &[]).await
}

/// The new schedule a form describes; a problem with the form's own fields (the inputs'
/// JSON, the kind) as a field error.
fn from_form(form: &[(String, String)]) -> Result<NewSchedule, ApiError> {
    let text = |name: &str| form_value(form, name).unwrap_or("").trim().to_owned();
    let target = match text("kind").as_str() {
        "job" => {
            let raw = text("inputs");
            let inputs: Map<String, Value> = if raw.is_empty() {
                Map::new()
            } else {
                serde_json::from_str(&raw).map_err(|e| {
                    ApiError::field(
                        "target.inputs",
                        "json",
                        format!("inputs must be a JSON object: {e}"),
                    )
                })?
            };
            Target::Job {
                app_id: text("app_id"),
                agent_id: text("agent_id"),
                inputs,
                instance: Some(text("instance")).filter(|i| !i.is_empty()),
            }
        }
        "installation" => Target::Installation {
            installation_id: text("installation_id"),
            action: serde_json::from_value(Value::String(text("action"))).map_err(|_| {
                ApiError::field(
                    "target.action",
                    "enum",
                    "the action is backup, upgrade, reconfigure or uninstall",
                )
            })?,
            inputs: Map::new(),
            purge: false,
        },
        other => {
            return Err(ApiError::field(
                "target.kind",
                "enum",
                format!("the kind is job or installation, not {other:?}"),
            ));
        }
    };
    let catch_up = match text("catch_up").as_str() {
        "skip" => CatchUp::Skip,
        _ => CatchUp::RunOnce,
    };
    let timezone = Some(text("timezone"))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "UTC".into());
    Ok(NewSchedule {
        name: text("name"),
        cron: text("cron"),
        timezone,
        target,
        catch_up,
        paused: false,
    })
}

pub(super) async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let caller = form_caller(&state, &req, &form, Role::Operator).await?;
    let made = match from_form(&form) {
        Ok(new) => manage::create(&state, new, &caller)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match made {
        Ok(_) => Ok(redirect("/schedules")),
        Err(e) if e.code == Code::Internal || e.code == Code::StoreUnavailable => Err(e.into()),
        Err(e) => page_for(&state, &caller, Some(&e), &form).await,
    }
}

pub(super) async fn act(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let (id, action) = path.into_inner();
    let caller = form_caller(&state, &req, &form, Role::Operator).await?;
    let done = match action.as_str() {
        "pause" => manage::pause(&state, &id, &caller).await.map(|_| ()),
        "resume" => manage::resume(&state, &id, &caller).await.map(|_| ()),
        "delete" => manage::delete(&state, &id, &caller).await,
        _ => return Err(ApiError::new(Code::NotFound, "no such schedule action").into()),
    };
    done.map_err(ApiError::from)?;
    Ok(redirect("/schedules"))
}

/// The installation actions the form offers, in its order.
const ACTIONS: [ScheduledAction; 4] = [
    ScheduledAction::Backup,
    ScheduledAction::Upgrade,
    ScheduledAction::Reconfigure,
    ScheduledAction::Uninstall,
];
