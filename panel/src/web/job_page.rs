//! The job page (state, progress, attempts, exit code, duration, live log, cancel, retry).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use outfitter_contract::job::JobState;
use serde::Serialize;

use super::{WebResult, base_context, form_caller, redirect, render, signed_in, when};
use crate::auth::Role;
use crate::clock::format_duration;
use crate::http::api::job_view::JobView;
use crate::jobs::{control, events, store};
use crate::state::AppState;

/// Events the job page shows at most (the tail of a long log).
const TAIL_EVENTS: usize = 2_000;

#[derive(Serialize)]
struct InputLine {
    name: String,
    value: String,
}

pub(super) async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> WebResult<HttpResponse> {
    let caller = signed_in(&state, &req).await?;
    let mut conn = state.redis.clone();
    let job = store::load(&mut conn, &id).await?;
    // The page shows the tail of a long log; the whole one is the plain log's link.
    let all = events::read_tail(&mut conn, &job.agent_id, &job.id, TAIL_EVENTS).await?;
    let last_seq = all.last().map(|e| e.seq).unwrap_or(0);
    let truncated = all.first().is_some_and(|e| e.seq > 1);
    let mut log = String::new();
    for line in all.iter().filter_map(|e| events::log_line(&e.json)) {
        log.push_str(&line);
        log.push('\n');
    }
    let operator = caller.role >= Role::Operator;
    let catalog = state.catalog.current();
    let manifest = catalog.get(&job.app_id).map(|b| &b.manifest);
    // Labels from the manifest when the app is still offered, else the input names.
    let inputs: Vec<InputLine> = job
        .inputs
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| InputLine {
                    name: manifest
                        .and_then(|m| m.input(k))
                        .map(|i| i.label.clone())
                        .unwrap_or_else(|| k.clone()),
                    value: outfitter_contract::inputs::form_spelling(v),
                })
                .collect()
        })
        .unwrap_or_default();
    let post_install = if job.state == JobState::Succeeded {
        manifest
            .and_then(|m| m.post_install_message.clone())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let finals: Vec<&str> = JobState::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| s.as_str())
        .collect();
    let mut ctx = base_context(Some(&caller));
    ctx.insert("can_cancel", &(operator && !job.state.is_terminal()));
    ctx.insert("can_retry", &(operator && job.state.is_retryable_by_user()));
    ctx.insert(
        "exit_code",
        &job.exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "—".into()),
    );
    ctx.insert("created", &when(Some(job.created_at)));
    ctx.insert(
        "duration",
        &job.duration_ms()
            .map(format_duration)
            .unwrap_or_else(|| "—".into()),
    );
    ctx.insert(
        "next_attempt",
        &job.next_attempt_at
            .map(|t| when(Some(t)))
            .unwrap_or_default(),
    );
    ctx.insert("inputs", &inputs);
    ctx.insert("post_install_message", &post_install);
    ctx.insert("final_states", &finals.join(" "));
    ctx.insert("last_seq", &last_seq);
    ctx.insert("log", &log);
    ctx.insert("log_truncated", &truncated);
    let view = JobView::from(job);
    ctx.insert("job", &view);
    render(&state, "job.html", &ctx, StatusCode::OK)
}

pub(super) async fn cancel(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let caller = form_caller(&state, &req, &form, Role::Operator).await?;
    control::cancel(&state, &id, &caller).await?;
    Ok(redirect(&format!("/jobs/{}", id.as_str())))
}

pub(super) async fn retry(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> WebResult<HttpResponse> {
    let caller = form_caller(&state, &req, &form, Role::Operator).await?;
    control::retry(&state, &id, &caller).await?;
    Ok(redirect(&format!("/jobs/{}", id.as_str())))
}
