//! The installation page (settings, actions, backups, history) and its action forms. Every
//! form posts through the same domain call as the API; a form carries the revision it was
//! rendered at, so a stale one is refused instead of undoing a change made meanwhile.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use outfitter_contract::inputs::{coerce_form, form_spelling};
use outfitter_contract::job::REDACTED;
use outfitter_contract::lifecycle::Action;
use serde::Serialize;

use super::{
    WebResult, app_form, base_context, form_caller, form_value, redirect, render, signed_in, when,
};
use crate::auth::Role;
use crate::error::{ApiError, Code};
use crate::http::api::installations::{InstallationView, detail};
use crate::installations::{Installation, Request, actions, dependencies, settle, store};
use crate::state::AppState;

/// The form field carrying the revision a form was rendered at.
const REV_FIELD: &str = "_rev";

/// One installation in a list (servers page, app page).
#[derive(Debug, Serialize)]
pub(super) struct InstallationRow {
    id: String,
    agent_id: String,
    app_id: String,
    instance: String,
    version: String,
    state: String,
    upgrade_available: String,
}

impl InstallationRow {
    pub(super) fn has_upgrade(&self) -> bool {
        !self.upgrade_available.is_empty()
    }
}

/// The installations matching `filter`, as rows.
pub(super) async fn rows(
    state: &AppState,
    filter: &store::Filter,
) -> WebResult<Vec<InstallationRow>> {
    let mut conn = state.redis.clone();
    Ok(settle::list(&mut conn, filter)
        .await?
        .into_iter()
        .map(|i| InstallationView::new(state, i))
        .map(|v| InstallationRow {
            upgrade_available: v.upgrade_available.unwrap_or_default(),
            id: v.id,
            agent_id: v.agent_id,
            app_id: v.app_id,
            instance: v.instance,
            version: v.version,
            state: v.state,
        })
        .collect())
}

#[derive(Serialize)]
struct SettingLine {
    name: String,
    value: String,
}

/// Another installation this one stands on or is needed by.
#[derive(Serialize)]
struct Related {
    app_id: String,
    /// Its installation on the same server, when there is one.
    id: Option<String>,
    state: String,
}

impl Related {
    fn of(app_id: String, inst: Option<&Installation>) -> Self {
        Related {
            app_id,
            id: inst.map(|i| i.id.clone()),
            state: inst
                .map(|i| i.state.as_str().to_owned())
                .unwrap_or_default(),
        }
    }
}

#[derive(Serialize)]
struct HistoryRow {
    when: String,
    action: String,
    job_id: String,
    by: String,
    result: String,
    version: String,
}

async fn page_for(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
    error: Option<&ApiError>,
) -> WebResult<HttpResponse> {
    let caller = signed_in(state, req).await?;
    let view = detail(state, id).await?;
    let catalog = state.catalog.current();
    let mut conn = state.redis.clone();
    let inst = store::load(&mut conn, id).await.map_err(ApiError::from)?;
    let manifest = actions::installed_manifest(&inst, catalog.get(&view.app_id));
    let stands_on: Vec<Related> = dependencies::foundations(&mut conn, &catalog.catalog, &inst)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|(app, found)| Related::of(app, found.as_ref()))
        .collect();
    let needed_by: Vec<Related> = dependencies::dependants(&mut conn, &catalog.catalog, &inst)
        .await
        .map_err(ApiError::from)?
        .iter()
        .map(|i| Related::of(i.app_id.clone(), Some(i)))
        .collect();
    let label = |k: &str| {
        manifest
            .and_then(|m| m.input(k))
            .map(|i| i.label.clone())
            .unwrap_or_else(|| k.to_owned())
    };
    let settings: Vec<SettingLine> = view
        .inputs
        .iter()
        .map(|(k, v)| SettingLine {
            name: label(k),
            value: form_spelling(v),
        })
        .collect();
    // The form shows the current values; secrets stay empty (left empty, they are kept).
    let current: Vec<(String, String)> = view
        .inputs
        .iter()
        .filter(|(_, v)| v.as_str() != Some(REDACTED))
        .map(|(k, v)| (k.clone(), form_spelling(v)))
        .collect();
    let fields = manifest
        .map(|m| app_form::fields(m, Some(&current), &Default::default()))
        .unwrap_or_default();
    let history: Vec<HistoryRow> = view
        .jobs
        .iter()
        .flatten()
        .map(|h| HistoryRow {
            when: when(Some(h.at)),
            action: h.action.clone(),
            job_id: h.job_id.clone(),
            by: h.by.clone(),
            result: h.result.clone(),
            version: h.version.clone(),
        })
        .collect();
    let operator = caller.role >= Role::Operator;
    let can = |a: Action| operator && view.actions.iter().any(|x| x == a.as_str());
    let mut ctx = base_context(Some(&caller));
    ctx.insert("can_reconfigure", &can(Action::Reconfigure));
    ctx.insert("can_upgrade", &can(Action::Upgrade));
    ctx.insert("can_uninstall", &can(Action::Uninstall));
    ctx.insert("can_backup", &can(Action::Backup));
    ctx.insert("can_restore", &can(Action::Restore));
    ctx.insert("stands_on", &stands_on);
    ctx.insert("needed_by", &needed_by);
    ctx.insert("settings", &settings);
    ctx.insert("fields", &fields);
    ctx.insert("history", &history);
    ctx.insert("updated", &when(Some(view.updated_at)));
    ctx.insert("created", &when(Some(view.created_at)));
    ctx.insert(
        "error",
        &error.map(|e| e.message.clone()).unwrap_or_default(),
    );
    ctx.insert("inst", &view);
    let status = error.map_or(StatusCode::OK, |e| e.code.status());
    render(state, "installation.html", &ctx, status)
}

pub(super) async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> WebResult<HttpResponse> {
    page_for(&state, &req, &id, None).await
}

/// Posts one action form: checks the session, CSRF and role, makes the request from the
/// form, and goes to the job's page; a refused action shows the page again with the reason.
pub(super) async fn act(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let (id, action) = path.into_inner();
    let caller = form_caller(&state, &req, &form, Role::Operator).await?;
    store::check_id(&id).map_err(ApiError::from)?;
    let rev = form_value(&form, REV_FIELD).and_then(|r| r.parse().ok());
    let action: Action = action
        .parse()
        .map_err(|e: String| ApiError::new(Code::NotFound, e))?;
    let yes = |name: &str| form_value(&form, name) == Some("true");
    let request = match action {
        Action::Reconfigure => {
            let mut conn = state.redis.clone();
            let inst = store::load(&mut conn, &id).await.map_err(ApiError::from)?;
            let catalog = state.catalog.current();
            let Some(manifest) = actions::installed_manifest(&inst, catalog.get(&inst.app_id))
            else {
                let e = ApiError::new(
                    Code::ActionNotApplicable,
                    "the manifest of the installed version is not known; upgrade it first",
                );
                return page_for(&state, &req, &id, Some(&e)).await;
            };
            Request::Reconfigure {
                inputs: coerce_form(manifest, &form),
            }
        }
        Action::Upgrade => Request::Upgrade {
            version: None,
            inputs: Default::default(),
        },
        Action::Uninstall if !yes("_confirm") => {
            let e = ApiError::field(
                "_confirm",
                "required",
                "tick the box to confirm the uninstall",
            );
            return page_for(&state, &req, &id, Some(&e)).await;
        }
        Action::Uninstall => Request::Uninstall {
            purge: yes("purge"),
            force: yes("force"),
        },
        Action::Backup => Request::Backup,
        Action::Restore => Request::Restore {
            backup_id: form_value(&form, "backup_id").unwrap_or("").to_owned(),
        },
        Action::Install => {
            return Err(ApiError::new(Code::NotFound, "install from the app's page").into());
        }
    };
    match actions::request(&state, &id, request, rev, &caller, None).await {
        Ok(done) => Ok(redirect(&format!("/jobs/{}", done.job.id))),
        Err(e) => {
            let e = ApiError::from(e);
            if e.code == Code::Internal || e.code == Code::StoreUnavailable {
                return Err(e.into());
            }
            page_for(&state, &req, &id, Some(&e)).await
        }
    }
}
