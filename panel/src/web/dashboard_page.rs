//! The dashboard, the page after sign-in: how the fleet is doing, each number a link to the
//! list it counts.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::{WebResult, base_context, encode_query, render, signed_in};
use crate::dashboard::{self, Summary};
use crate::error::ApiError;
use crate::state::AppState;

/// A number and the list it counts.
#[derive(Serialize)]
struct Tile {
    id: &'static str,
    label: String,
    value: u64,
    href: String,
}

#[derive(Serialize)]
struct FailureRow {
    app_id: String,
    state: &'static str,
    count: u64,
    href: String,
}

#[derive(Serialize)]
struct UpgradeRow {
    installation_id: String,
    app_id: String,
    agent_id: String,
    version: String,
    available: String,
}

#[derive(Serialize)]
struct RolloutRow {
    id: String,
    app_id: String,
    work: &'static str,
    state: &'static str,
    done: usize,
    total: usize,
    failed: usize,
    percent: usize,
}

fn tile(id: &'static str, label: &str, value: u64, href: &str) -> Tile {
    Tile {
        id,
        label: label.to_owned(),
        value,
        href: href.to_owned(),
    }
}

fn tiles(s: &Summary) -> Vec<Tile> {
    vec![
        tile(
            "servers-online",
            "servers online",
            s.servers.online,
            "/agents?status=online",
        ),
        tile(
            "servers-offline",
            "servers offline",
            s.servers.offline,
            "/agents?status=offline",
        ),
        tile(
            "servers-attention",
            "servers need attention",
            s.servers.attention.len() as u64,
            "/agents?status=attention",
        ),
        tile(
            "upgrades",
            "installations with an upgrade",
            s.upgrades.len() as u64,
            "/agents?upgrade=available",
        ),
        tile(
            "jobs-running",
            "jobs running now",
            s.running,
            "/jobs?state=running",
        ),
        tile("jobs-queued", "jobs queued", s.queued, "/jobs?state=queued"),
        tile(
            "jobs-retrying",
            "retries waiting",
            s.retrying,
            "/jobs?state=retrying",
        ),
        tile(
            "failures",
            "failed jobs in 24 h",
            s.failures.iter().map(|f| f.count).sum(),
            "#failures",
        ),
        tile(
            "rollouts",
            "rollouts in progress",
            s.rollouts.len() as u64,
            "/rollouts",
        ),
    ]
}

pub(super) async fn page(req: HttpRequest, state: web::Data<AppState>) -> WebResult<HttpResponse> {
    let caller = signed_in(&state, &req).await?;
    let s = dashboard::summary(&state).await.map_err(ApiError::from)?;
    let failures: Vec<FailureRow> = s
        .failures
        .iter()
        .map(|f| FailureRow {
            href: format!(
                "/jobs?state={}&app_id={}",
                f.state.as_str(),
                encode_query(&f.app_id)
            ),
            app_id: f.app_id.clone(),
            state: f.state.as_str(),
            count: f.count,
        })
        .collect();
    let upgrades: Vec<UpgradeRow> = s
        .upgrades
        .iter()
        .map(|u| UpgradeRow {
            installation_id: u.installation_id.clone(),
            app_id: u.app_id.clone(),
            agent_id: u.agent_id.clone(),
            version: u.version.clone(),
            available: u.available.clone(),
        })
        .collect();
    let rollouts: Vec<RolloutRow> = s
        .rollouts
        .iter()
        .map(|r| RolloutRow {
            id: r.id.clone(),
            app_id: r.app_id.clone(),
            work: r.work,
            state: r.state,
            done: r.done,
            total: r.total,
            failed: r.failed,
            percent: (r.done * 100).checked_div(r.total).unwrap_or(0),
        })
        .collect();
    let mut ctx = base_context(Some(&caller));
    ctx.insert("tiles", &tiles(&s));
    ctx.insert("failures", &failures);
    ctx.insert("upgrades", &upgrades);
    ctx.insert("rollouts", &rollouts);
    ctx.insert("servers_total", &s.servers.total);
    ctx.insert("jobs_in_window", &s.jobs_in_window);
    ctx.insert("window_truncated", &s.window_truncated);
    render(&state, "dashboard.html", &ctx, StatusCode::OK)
}
