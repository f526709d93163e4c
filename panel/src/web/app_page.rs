//! The app page: facts, the target-server picker and the generated form; posting it
//! enqueues the job through the same code as the API.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use outfitter_contract::inputs::coerce_form;
use outfitter_contract::manifest::Bundle;
use serde::Serialize;

use super::app_form;
use super::{
    WebResult, base_context, form_caller, form_value, redirect, render, render_html, signed_in,
};
use crate::agents::{self, AgentFit};
use crate::app_view;
use crate::auth::{Caller, Role};
use crate::catalog_view::Offered;
use crate::error::{ApiError, Code};
use crate::http::api::apps::find_app;
use crate::installations::dependencies;
use crate::installations::store::Filter;
use crate::jobs::enqueue::{self, NewJob};
use crate::state::AppState;

use super::installation_page::{InstallationRow, rows};

/// Where the app is installed, for its page.
async fn installed_here(state: &AppState, bundle: &Bundle) -> WebResult<Vec<InstallationRow>> {
    let filter = Filter {
        app_id: Some(bundle.id().to_owned()),
        ..Filter::default()
    };
    rows(state, &filter).await
}

/// Which registered agents can run the app now, for the picker: their statuses from the
/// panel's snapshot (at most a second old), the apps standing on them as they are.
async fn fits_for(state: &AppState, bundle: &Bundle) -> WebResult<Vec<AgentFit>> {
    let mut conn = state.redis.clone();
    let standing = dependencies::standing_by_agent(&mut conn, &bundle.manifest)
        .await
        .map_err(ApiError::from)?;
    let statuses = state.agents_seen.get(&mut conn).await?;
    Ok(agents::fits(&bundle.manifest, &statuses, &standing))
}

/// The agent picker's field name (`_` keeps it apart from inputs, which cannot start so).
pub(super) const AGENT_FIELD: &str = "_agent";
/// The instance name's field, for apps with `multiple_instances`.
const INSTANCE_FIELD: &str = "_instance";

/// What went wrong with a submission, by place on the page.
#[derive(Debug, Default)]
struct Problems {
    fields: BTreeMap<String, String>,
    agent: String,
    instance: String,
    other: Vec<String>,
    form: String,
}

/// The settings part of the form (empty when the app has no inputs). The form as first
/// shown — defaults, no errors — is rendered once per catalog scan and app; a submitted
/// one, with what was typed and its errors, each time.
fn settings_form(
    state: &AppState,
    catalog: &Offered,
    bundle: &Bundle,
    submitted: Option<&[(String, String)]>,
    problems: &Problems,
) -> WebResult<Arc<str>> {
    let render = || {
        let fields = app_form::fields(&bundle.manifest, submitted, &problems.fields);
        if fields.is_empty() {
            return Ok(String::new());
        }
        let mut ctx = tera::Context::new();
        ctx.insert("fields", &fields);
        render_html(state, "settings_fields.html", &ctx)
    };
    match submitted {
        None if problems.fields.is_empty() => catalog.once_per_app("settings", bundle.id(), render),
        _ => render().map(Arc::from),
    }
}

/// The app's facts (manifest and conformance result), which only change with the scan.
fn facts(state: &AppState, catalog: &Offered, bundle: &Bundle) -> WebResult<Arc<str>> {
    catalog.once_per_app("facts", bundle.id(), || {
        let mut ctx = tera::Context::new();
        // The page's picker has the agents; the facts do not show them.
        let app = app_view::detail(bundle, catalog.conformance(bundle.id()), Vec::new());
        ctx.insert("app", &app);
        render_html(state, "app_facts.html", &ctx)
    })
}

/// The target-server picker, for `selected` among `fits`.
fn picker(
    state: &AppState,
    catalog: &Offered,
    bundle: &Bundle,
    fits: &[AgentFit],
    selected: &str,
) -> WebResult<Arc<str>> {
    // The fits and the choice are all the picker shows: a fleet whose statuses did not
    // change since the last view gets the same HTML without rendering it again.
    let input = serde_json::to_string(&(fits, selected))
        .map_err(|e| ApiError::new(Code::Internal, format!("agent fits: {e}")))?;
    catalog.last_per_app("picker", bundle.id(), input, || {
        let mut ctx = tera::Context::new();
        ctx.insert("agents", fits);
        ctx.insert("selected_agent", selected);
        ctx.insert("any_eligible", &fits.iter().any(|f| f.eligible));
        render_html(state, "agent_picker.html", &ctx)
    })
}

/// What the rest of the page reads of the app.
#[derive(Serialize)]
struct PageApp<'a> {
    id: &'a str,
    name: &'a str,
    multiple_instances: bool,
}

#[allow(clippy::too_many_arguments)]
fn page_for(
    state: &AppState,
    caller: &Caller,
    catalog: &Offered,
    bundle: &Bundle,
    fits: &[AgentFit],
    submitted: Option<&[(String, String)]>,
    problems: &Problems,
    status: StatusCode,
    installations: &[InstallationRow],
) -> WebResult<HttpResponse> {
    let selected = submitted
        .and_then(|f| form_value(f, AGENT_FIELD))
        .map(str::to_owned)
        .or_else(|| fits.iter().find(|f| f.eligible).map(|f| f.id.clone()))
        .unwrap_or_default();
    let can_install = caller.role >= Role::Operator;
    let mut ctx = base_context(Some(caller));
    ctx.insert("installations", installations);
    ctx.insert("any_eligible", &fits.iter().any(|f| f.eligible));
    if can_install {
        ctx.insert(
            "picker_html",
            &*picker(state, catalog, bundle, fits, &selected)?,
        );
    }
    ctx.insert("facts_html", &*facts(state, catalog, bundle)?);
    ctx.insert(
        "app",
        &PageApp {
            id: bundle.id(),
            name: &bundle.manifest.name,
            multiple_instances: bundle.manifest.multiple_instances,
        },
    );
    ctx.insert("can_install", &can_install);
    ctx.insert(
        "settings_html",
        &*settings_form(state, catalog, bundle, submitted, problems)?,
    );
    ctx.insert("agent_error", &problems.agent);
    ctx.insert("instance_error", &problems.instance);
    ctx.insert(
        "instance_value",
        submitted
            .and_then(|f| form_value(f, INSTANCE_FIELD))
            .unwrap_or(""),
    );
    ctx.insert("other_errors", &problems.other);
    ctx.insert("form_error", &problems.form);
    render(state, "app.html", &ctx, status)
}

pub(super) async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> WebResult<HttpResponse> {
    let caller = signed_in(&state, &req).await?;
    let catalog = state.catalog.current();
    let bundle = find_app(&catalog, &id)?;
    // Independent reads, at once: the page waits for the slower, not for both in turn.
    let (fits, installations) =
        tokio::try_join!(fits_for(&state, bundle), installed_here(&state, bundle))?;
    page_for(
        &state,
        &caller,
        &catalog,
        bundle,
        &fits,
        None,
        &Problems::default(),
        StatusCode::OK,
        &installations,
    )
}

fn sort_problems(bundle: &Bundle, err: ApiError, problems: &mut Problems) {
    match err.code {
        Code::ValidationFailed => {
            for f in err.fields {
                if f.field == "agent_id" {
                    problems.agent = f.message;
                } else if bundle.manifest.input(&f.field).is_some() {
                    problems.fields.entry(f.field).or_insert(f.message);
                } else {
                    problems.other.push(format!("{}: {}", f.field, f.message));
                }
            }
        }
        Code::AgentNotFound
        | Code::AgentNeverSeen
        | Code::RequirementsNotMet
        | Code::DependencyMissing => problems.agent = err.message,
        Code::InvalidParameter | Code::ActionNotApplicable | Code::InstallationBusy => {
            problems.instance = err.message
        }
        _ => problems.form = err.message,
    }
}

pub(super) async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let caller = form_caller(&state, &req, &form, Role::Operator).await?;
    let catalog = state.catalog.current();
    let bundle = find_app(&catalog, &id)?;
    let inputs = coerce_form(&bundle.manifest, &form);
    let agent_id = form_value(&form, AGENT_FIELD)
        .unwrap_or("")
        .trim()
        .to_owned();
    let mut problems = Problems::default();
    if agent_id.is_empty() {
        problems.agent = "Choose a target server.".into();
        if let Err(errors) = bundle.validate_inputs(&inputs) {
            for e in errors {
                problems.fields.entry(e.field).or_insert(e.message);
            }
        }
    } else {
        let req_job = NewJob {
            app_id: bundle.id().to_owned(),
            agent_id,
            inputs,
            instance: form_value(&form, INSTANCE_FIELD)
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(str::to_owned),
            on: None,
            pinned: None,
        };
        match enqueue::enqueue(&state, &req_job, &caller, None)
            .await
            .map_err(ApiError::from)
        {
            Ok(done) => return Ok(redirect(&format!("/jobs/{}", done.job.id))),
            Err(e) if e.code == Code::StoreUnavailable || e.code == Code::Internal => {
                return Err(e.into());
            }
            Err(e) => sort_problems(bundle, e, &mut problems),
        }
    }
    let (fits, installations) =
        tokio::try_join!(fits_for(&state, bundle), installed_here(&state, bundle))?;
    page_for(
        &state,
        &caller,
        &catalog,
        bundle,
        &fits,
        Some(&form),
        &problems,
        StatusCode::UNPROCESSABLE_ENTITY,
        &installations,
    )
}
