//! Figure 4: the panel under load with its generated 1,000-app catalog: `GET /api/v1/apps`,
//! the catalog and app pages, and `POST /api/v1/jobs`, each driven by the bench's own
//! closed-loop load generator; against `GET /healthz` (the HTTP stack and the load generator
//! alone on this machine).

use std::time::Duration;

use anyhow::{Result, ensure};

use super::{Ctx, register_simulated_agent};
use crate::bundles::{NOOP, app_id};
use crate::http1;
use crate::loadgen::{self, LoadResult};
use crate::process::CpuTime;
use crate::report::{Figure, Goal, Row};
use crate::stats::{Micros, Rate, factor, percent};

/// The agent that receives the load's jobs; it has a heartbeat but no runner.
const SINK: &str = "bench-sink";
/// Goals from the issue, as shares of `/healthz` in the same run: the first page of 50
/// apps, and the app page.
const GOAL_FIRST_PAGE: f64 = 0.5;
const GOAL_APP_PAGE: f64 = 0.3;
/// The whole listing before it was built once per scan (run of 2026-11-22: 205/s against
/// 25,968/s for `/healthz`), as a share of `/healthz`; the goal is ten times that share.
const LISTING_BEFORE: f64 = 205.0 / 25_968.0;
const GOAL_LISTING_FACTOR: f64 = 10.0;

/// Agents registered by the time a full run gets here: the dispatch agent and figure 2's.
const FULL_RUN_AGENTS: usize = 1 + super::throughput::REGISTERED;

/// Registers agents that never beat until as many are registered as in a full run, where
/// figure 2's runners are stopped (offline) by now: the app page's picker lists every
/// registered agent, so a figure run alone (`--only 4`, `--quick`) would otherwise show a
/// page with two where the full run has two dozen.
fn register_idle_agents(ctx: &mut Ctx) -> Result<()> {
    let mut n = 0;
    while ctx.inst.registered_count()? < FULL_RUN_AGENTS {
        let id = format!("bench-idle-{n}");
        if !ctx.inst.is_registered(&id) {
            ctx.inst.add_agent(&id)?;
        }
        n += 1;
    }
    Ok(())
}

pub(crate) async fn measure(ctx: &mut Ctx) -> Result<Figure> {
    register_idle_agents(ctx)?;
    register_simulated_agent(ctx, SINK)?;
    let agents = ctx.inst.registered_count()?;
    let token = ctx.inst.token.clone();
    let app_page = format!("/apps/{}", app_id(ctx.plan.apps / 2));
    let targets: Vec<(String, Vec<u8>, u16)> = vec![
        (
            "GET /healthz".into(),
            http1::request("GET", "/healthz", &token, None),
            200,
        ),
        (
            "GET /api/v1/apps".into(),
            http1::request("GET", "/api/v1/apps", &token, None),
            200,
        ),
        (
            "GET /api/v1/apps?limit=50 (first page)".into(),
            http1::request("GET", "/api/v1/apps?limit=50", &token, None),
            200,
        ),
        (
            "GET / (catalog page)".into(),
            http1::request("GET", "/", &token, None),
            200,
        ),
        (
            format!("GET {app_page} (app page)"),
            http1::request("GET", &app_page, &token, None),
            200,
        ),
        (
            "POST /api/v1/jobs".into(),
            ctx.create_job_request(NOOP, SINK),
            202,
        ),
    ];
    let mut results: Vec<(String, LoadResult, Duration)> = Vec::new();
    for (name, request, status) in targets {
        let cpu_before = CpuTime::of(ctx.inst.panel_pid()?)?;
        let r = loadgen::run(
            ctx.panel_addr(),
            request,
            status,
            ctx.plan.load_connections,
            ctx.plan.load_duration,
        )
        .await?;
        let cpu = CpuTime::of(ctx.inst.panel_pid()?)?.since(cpu_before).own;
        ctx.inst.ensure_panel_running()?;
        ensure!(
            r.ok > 0,
            "{name}: no good response; first error: {:?}",
            r.first_error
        );
        results.push((name, r, cpu));
    }
    let healthz = results[0].1.rate();
    let mut rows = Vec::new();
    for (i, (name, r, cpu)) in results.iter().enumerate() {
        let value = format!(
            "{} — p50 {} / p99 {}; panel CPU {} per request{}",
            Rate(r.rate()),
            Micros(r.latency.p50),
            Micros(r.latency.p99),
            Micros(cpu.as_secs_f64() * 1e6 / (r.ok + r.errors).max(1) as f64),
            if r.errors > 0 {
                format!(
                    "; {} errors, first: {}",
                    r.errors,
                    r.first_error.as_deref().unwrap_or("")
                )
            } else {
                String::new()
            }
        );
        let row = Row::new(format!("{name} ({} bytes)", r.body_bytes), value);
        rows.push(if i == 0 {
            row
        } else {
            row.against(
                format!("`GET /healthz` {}", Rate(healthz)),
                percent(r.rate(), healthz),
            )
        });
    }
    let rate_of = |prefix: &str| {
        results
            .iter()
            .find(|(n, _, _)| n.starts_with(prefix))
            .map(|(_, r, _)| (r.rate(), r.latency.p99))
            .unwrap_or((f64::NAN, f64::NAN))
    };
    let (apps, apps_p99) = rate_of("GET /api/v1/apps");
    let (first_page, _) = rate_of("GET /api/v1/apps?limit=50");
    let (page, page_p99) = rate_of("GET /apps/");
    let (jobs, jobs_p99) = rate_of("POST /api/v1/jobs");
    Ok(Figure {
        number: 4,
        title: "Panel".into(),
        method: format!(
            "The panel serves {} generated apps (six inputs each, with validation, a secret and \
             `visible_if`) plus the bench bundles. Load generator: `outfitter-bench`'s own closed loop \
             (tokio, {} keep-alive HTTP/1.1 connections, each sending the next request when the last \
             response is read in full, like `wrk`), on the same {}-core machine as the panel and Redis, for \
             {:.0} s per endpoint, bearer-token authenticated (one token lookup in Redis per request). \
             `POST /api/v1/jobs` queues `bench-noop` on an agent with a heartbeat and no runner. \
             {} agents are registered, most of them offline (figure 2's stopped runners, or agents \
             registered without one when figure 2 did not run), as the app page's picker lists them all. \
             Baseline: `GET /healthz`, the HTTP stack and the load generator with no work behind them. \
             The panel's CPU time per request (user + system from `/proc/<pid>/stat`, 10 ms ticks, over \
             the whole run of the endpoint) moves less with other load on the machine than the rates do.",
            ctx.plan.apps,
            ctx.plan.load_connections,
            std::thread::available_parallelism()
                .map(|c| c.get())
                .unwrap_or(1),
            ctx.plan.load_duration.as_secs_f64(),
            agents,
        ),
        rows,
        goals: vec![
            Goal {
                text: format!(
                    "first page of 50 apps at ≥ {} of `/healthz`",
                    percent(GOAL_FIRST_PAGE, 1.0)
                ),
                measured: percent(first_page, healthz),
                met: first_page >= GOAL_FIRST_PAGE * healthz,
            },
            Goal {
                text: format!(
                    "app page at ≥ {} of `/healthz`",
                    percent(GOAL_APP_PAGE, 1.0)
                ),
                measured: percent(page, healthz),
                met: page >= GOAL_APP_PAGE * healthz,
            },
            Goal {
                text: format!(
                    "whole listing ≥ {GOAL_LISTING_FACTOR}× its rate before paging (then {} of `/healthz`)",
                    percent(LISTING_BEFORE, 1.0)
                ),
                measured: format!(
                    "{} of `/healthz`: {}",
                    percent(apps, healthz),
                    factor(apps / healthz, LISTING_BEFORE)
                ),
                met: apps >= GOAL_LISTING_FACTOR * LISTING_BEFORE * healthz,
            },
        ],
        tables: vec![],
        summary: format!(
            "4. Panel ({} apps, {} connections): /api/v1/apps {} p99 {}; app page {} p99 {}; POST /jobs {} p99 {}; /healthz {}",
            ctx.plan.apps,
            ctx.plan.load_connections,
            Rate(apps),
            Micros(apps_p99),
            Rate(page),
            Micros(page_p99),
            Rate(jobs),
            Micros(jobs_p99),
            Rate(healthz)
        ),
    })
}
