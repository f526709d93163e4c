//! The rollout pages: the list with the form that starts one, and one rollout as a grid of
//! its servers coloured by state (live through `panel.js`, which polls the API), with its
//! pause, resume, abort and retry buttons. Forms go through the same domain calls as the API.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use outfitter_contract::labels::LabelSelector;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{WebResult, base_context, form_caller, form_value, redirect, render, signed_in, when};
use crate::auth::Role;
use crate::error::{ApiError, Code};
use crate::http::api::rollouts::{RolloutView, view_with_history};
use crate::rollouts::model::{Selection, Strategy};
use crate::rollouts::{self, Control, NewRollout, Work};
use crate::state::AppState;

#[derive(Serialize)]
struct RolloutRow {
    id: String,
    app_id: String,
    action: &'static str,
    state: &'static str,
    servers: usize,
    succeeded: usize,
    failed: usize,
    created: String,
    created_by: String,
}

async fn list_for(
    state: &AppState,
    req: &HttpRequest,
    error: Option<&ApiError>,
    form: &[(String, String)],
) -> WebResult<HttpResponse> {
    let caller = signed_in(state, req).await?;
    let mut conn = state.redis.clone();
    let rows: Vec<RolloutRow> = rollouts::store::list(&mut conn, 100)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|r| {
            let counts = r.counts();
            RolloutRow {
                action: r.work.as_str(),
                state: r.state.as_str(),
                servers: r.targets.len(),
                succeeded: counts["succeeded"],
                failed: counts["failed"],
                created: when(Some(r.created_at)),
                created_by: r.created_by,
                app_id: r.app_id,
                id: r.id,
            }
        })
        .collect();
    let catalog = state.catalog.current();
    let apps: Vec<&str> = catalog
        .catalog
        .apps()
        .map(|b| b.manifest.id.as_str())
        .collect();
    let mut ctx = base_context(Some(&caller));
    ctx.insert("rollouts", &rows);
    ctx.insert("apps", &apps);
    ctx.insert("can_act", &(caller.role >= Role::Operator));
    let value = |k: &str, d: &str| form_value(form, k).unwrap_or(d).to_owned();
    ctx.insert("f_app", &value("app_id", ""));
    ctx.insert("f_action", &value("action", "install"));
    ctx.insert("f_selector", &value("selector", ""));
    ctx.insert("f_agents", &value("agents", ""));
    ctx.insert("f_inputs", &value("inputs", "{}"));
    ctx.insert("f_batch", &value("batch_size", "1"));
    ctx.insert("f_canary", &value("canary", ""));
    ctx.insert("f_max_failures", &value("max_failures", "0"));
    ctx.insert("f_pause", &value("pause_seconds", "0"));
    ctx.insert(
        "error",
        &error.map(|e| e.message.clone()).unwrap_or_default(),
    );
    let problems: Vec<String> = error
        .map(|e| {
            e.fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect()
        })
        .unwrap_or_default();
    ctx.insert("problems", &problems);
    let status = error.map_or(StatusCode::OK, |e| e.code.status());
    render(state, "rollouts.html", &ctx, status)
}

pub(super) async fn list(req: HttpRequest, state: web::Data<AppState>) -> WebResult<HttpResponse> {
    list_for(&state, &req, None, &[]).await
}

/// The form as a request; a field that does not parse is named.
fn request_from(form: &[(String, String)]) -> Result<NewRollout, ApiError> {
    let text = |k: &str| form_value(form, k).unwrap_or("").trim();
    let number = |k: &str, default: u32| -> Result<u32, ApiError> {
        match text(k) {
            "" => Ok(default),
            t => t
                .parse()
                .map_err(|_| ApiError::field(k, "type", format!("{k} is a whole number"))),
        }
    };
    let work = match text("action") {
        "" | "install" => Work::Install,
        "upgrade" => Work::Upgrade,
        "reconfigure" => Work::Reconfigure,
        "uninstall" => Work::Uninstall,
        other => {
            return Err(ApiError::field(
                "action",
                "enum",
                format!("{other:?} is not one of install, upgrade, reconfigure, uninstall"),
            ));
        }
    };
    let selection = match (text("selector"), text("agents")) {
        (s, "") if !s.is_empty() => Selection::Labels(
            LabelSelector::parse(s)
                .map_err(|e| ApiError::field("selector", "label", e.to_string()))?,
        ),
        ("", a) if !a.is_empty() => Selection::Agents(
            a.split([',', ' ', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        _ => {
            return Err(ApiError::field(
                "selector",
                "one_of",
                "give either a label selector or a list of server ids",
            ));
        }
    };
    let inputs: Map<String, Value> = match text("inputs") {
        "" => Map::new(),
        t => serde_json::from_str(t).map_err(|e| {
            ApiError::field(
                "inputs",
                "json",
                format!("inputs must be a JSON object: {e}"),
            )
        })?,
    };
    let canary = match text("canary") {
        "" => None,
        _ => Some(number("canary", 0)?),
    };
    Ok(NewRollout {
        app_id: text("app_id").to_owned(),
        instance: None,
        work,
        inputs,
        purge: false,
        selection,
        strategy: Strategy {
            batch_size: number("batch_size", 1)?,
            canary,
            max_failures: number("max_failures", 0)?,
            pause_seconds: number("pause_seconds", 0)?,
        },
        skip_unfit: form_value(form, "skip_unfit") == Some("true"),
    })
}

pub(super) async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let caller = form_caller(&state, &req, &form, Role::Operator).await?;
    let made = match request_from(&form) {
        Ok(r) => rollouts::create(&state, r, &caller)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match made {
        Ok(r) => Ok(redirect(&format!("/rollouts/{}", r.id))),
        Err(e) if e.code == Code::Internal || e.code == Code::StoreUnavailable => Err(e.into()),
        Err(e) => list_for(&state, &req, Some(&e), &form).await,
    }
}

#[derive(Serialize)]
struct HistoryRow {
    when: String,
    by: String,
    what: String,
}

async fn page_for(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
    error: Option<&ApiError>,
) -> WebResult<HttpResponse> {
    let caller = signed_in(state, req).await?;
    let view: RolloutView = view_with_history(state, id).await?;
    let history: Vec<HistoryRow> = view
        .history
        .iter()
        .flatten()
        .rev()
        .map(|h| HistoryRow {
            when: when(Some(h.at)),
            by: h.by.clone(),
            what: h.what.clone(),
        })
        .collect();
    let mut ctx = base_context(Some(&caller));
    ctx.insert("can_act", &(caller.role >= Role::Operator));
    ctx.insert("created", &when(Some(view.created_at)));
    ctx.insert("history", &history);
    ctx.insert(
        "error",
        &error.map(|e| e.message.clone()).unwrap_or_default(),
    );
    ctx.insert("r", &view);
    let status = error.map_or(StatusCode::OK, |e| e.code.status());
    render(state, "rollout.html", &ctx, status)
}

pub(super) async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> WebResult<HttpResponse> {
    page_for(&state, &req, &id, None).await
}

pub(super) async fn control(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let (id, what) = path.into_inner();
    let caller = form_caller(&state, &req, &form, Role::Operator).await?;
    let what = match what.as_str() {
        "pause" => Control::Pause,
        "resume" => Control::Resume,
        "abort" => Control::Abort,
        "retry" => Control::Retry,
        other => return Err(ApiError::new(Code::NotFound, format!("no action {other:?}")).into()),
    };
    match rollouts::control(&state, &id, what, &caller).await {
        Ok(_) => Ok(redirect(&format!("/rollouts/{id}"))),
        Err(e) => {
            let e = ApiError::from(e);
            if e.code == Code::Internal || e.code == Code::StoreUnavailable {
                return Err(e.into());
            }
            page_for(&state, &req, &id, Some(&e)).await
        }
    }
}
