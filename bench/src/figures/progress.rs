//! Figure 3: progress. A script printing many lines, followed through runner → Redis →
//! panel → SSE as a browser would; and the delay of one line from `echo` to the SSE reader.
//! Against the raw rate of the same script through a pipe, the bare `APPEND_EVENT` rate of
//! one Redis client, and a bare PUBLISH → subscriber hop.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use outfitter_contract::event::EventBody;
use outfitter_contract::job::field;
use outfitter_contract::redis_keys::AgentRedisKeys;
use serde_json::Value;

use super::dispatch::AGENT;
use super::footprint::{Readings, RssSampler};
use super::{Ctx, create_job};
use crate::baselines::{self, parse_epoch_realtime, wall_micros};
use crate::bundles::{LINES, PROGRESS_SECRET, TICK};
use crate::http1;
use crate::process::Memory;
use crate::report::{Figure, Row};
use crate::sse;
use crate::stats::{Micros, Rate, Samples, factor, per_second, percent};
use crate::watch::Watcher;

/// Longest wait for the next SSE message.
const MESSAGE_LIMIT: Duration = Duration::from_secs(120);

/// What following one job's stream saw.
struct Followed {
    log_events: u64,
    all_events: u64,
    /// POST returned → terminal event read from SSE.
    elapsed: Duration,
    /// Per `tick` line: SSE arrival minus the time in the line, µs.
    delays: Samples,
    /// Per `tick` line: the time in it and its SSE arrival, µs since the epoch.
    ticks: Vec<(f64, f64)>,
    terminal_state: String,
}

pub(crate) async fn measure(ctx: &mut Ctx, readings: &mut Readings) -> Result<Figure> {
    let runner_pid = ctx
        .inst
        .runner_pid(AGENT)
        .context("the dispatch runner runs")?;
    let client = ctx.inst.redis.client()?;
    let (pipe_rate, pipe_lines) = baselines::pipe_line_rate(&ctx.bundles.script(LINES))?;
    let append_rate =
        baselines::append_event_rate(&client, (ctx.plan.progress_lines as usize).min(20_000))?;
    let mut hop = baselines::pubsub_latency(&client, 200)?;

    let sampler = RssSampler::start(runner_pid);
    let (lines_job, lines) = follow(ctx, LINES).await?;
    readings.runner_busy_max_kib = Some(sampler.finish());
    readings.runner_busy_hwm = Memory::of(runner_pid).ok();
    // The same lines as they arrive on the job's Redis channel: splits the delay into the
    // runner's part (echo → published) and the panel's (published → SSE reader).
    let mut watcher = Watcher::start(&client, AGENT).await?;
    let (_, mut ticks) = follow(ctx, TICK).await?;
    let mut published: HashMap<u64, f64> = HashMap::new();
    while let Ok(seen) = watcher.next(Duration::from_millis(200)).await {
        if let EventBody::Log { line, .. } = &seen.event.body
            && let Some(sent) = line.strip_prefix("tick ").and_then(parse_epoch_realtime)
        {
            published.insert(sent as u64, wall_micros(seen.wall));
        }
    }
    let (mut runner_part, mut panel_part) = (Samples::new(), Samples::new());
    for (sent, arrived) in &ticks.ticks {
        if let Some(p) = published.get(&(*sent as u64)) {
            runner_part.push_micros(p - sent);
            panel_part.push_micros(arrived - p);
        }
    }

    ensure!(
        lines.terminal_state == "succeeded" && ticks.terminal_state == "succeeded",
        "progress jobs ended {} and {}",
        lines.terminal_state,
        ticks.terminal_state
    );
    let (started, finished) = job_times(ctx, &lines_job)?;
    let runner_secs = Duration::from_millis(finished.saturating_sub(started));
    let sse_rate = per_second(lines.all_events, lines.elapsed);
    let runner_rate = per_second(lines.log_events, runner_secs);
    let d = ticks.delays.summary();
    let h = hop.summary();
    let (rp, pp) = (runner_part.summary(), panel_part.summary());
    let rows = vec![
        Row::new(
            format!(
                "events/s through SSE ({} events, POST returned → last event read)",
                lines.all_events
            ),
            Rate(sse_rate).to_string(),
        )
        .against(
            format!("bash → pipe → reader: {}", Rate(pipe_rate)),
            percent(sse_rate, pipe_rate),
        ),
        Row::new(
            "log events/s stored by the runner (job's started_at → finished_at)",
            Rate(runner_rate).to_string(),
        )
        .against(
            format!(
                "one client's unpipelined APPEND_EVENT: {}",
                Rate(append_rate)
            ),
            percent(runner_rate, append_rate),
        ),
        Row::new(
            format!("log lines delivered (of {pipe_lines} printed)"),
            lines.log_events.to_string(),
        ),
        Row::new(
            format!(
                "one line, `echo` → SSE reader (p50 / p99 of {} lines 20 ms apart)",
                d.n
            ),
            format!("{} / {}", Micros(d.p50), Micros(d.p99)),
        )
        .against(
            format!(
                "bare PUBLISH → subscriber: {} / {}",
                Micros(h.p50),
                Micros(h.p99)
            ),
            format!("{} / {}", factor(d.p50, h.p50), factor(d.p99, h.p99)),
        ),
        Row::new(
            format!(
                "… of which `echo` → published on the job's Redis channel (runner; {} lines)",
                rp.n
            ),
            format!("{} / {}", Micros(rp.p50), Micros(rp.p99)),
        ),
        Row::new(
            "… of which published → SSE reader (Redis pubsub, panel fan-out, HTTP)",
            format!("{} / {}", Micros(pp.p50), Micros(pp.p99)),
        )
        .against(
            format!(
                "bare PUBLISH → subscriber: {} / {}",
                Micros(h.p50),
                Micros(h.p99)
            ),
            format!("{} / {}", factor(pp.p50, h.p50), factor(pp.p99, h.p99)),
        ),
    ];
    Ok(Figure {
        number: 3,
        title: "Progress".into(),
        method: format!(
            "`bench-lines` prints {} numbered lines with bash's builtin `echo`, as fast as bash can; both \
             progress jobs carry a 24-character password input, never printed, so every line goes \
             through the runner's masker as in a real job; the \
             bench opens `GET /api/v1/jobs/{{id}}/events` right after `POST` returns and reads every SSE \
             message up to the terminal state (replay, then live). `bench-tick` prints `tick \
             $EPOCHREALTIME` every 20 ms; each line's delay is its SSE arrival time minus the time in \
             it. Baselines, same run: the same script's stdout read line by line from a pipe; the \
             contract's `APPEND_EVENT` Lua script called by one unpipelined client (what one event costs \
             Redis plus a round trip); a bare `PUBLISH` until a subscriber has it.",
            ctx.plan.progress_lines
        ),
        rows,
        goals: vec![],
        tables: vec![],
        summary: format!(
            "3. Progress: {} events/s end to end to SSE (runner stores {}; pipe alone {}); one line echo→SSE p50 {} / p99 {} (runner part p50 {}, panel part p50 {}; bare pubsub hop {})",
            Rate(sse_rate).to_string().trim_end_matches("/s"),
            Rate(runner_rate),
            Rate(pipe_rate),
            Micros(d.p50),
            Micros(d.p99),
            Micros(rp.p50),
            Micros(pp.p50),
            Micros(h.p50)
        ),
    })
}

/// Posts a job of `app_id` and reads its SSE stream to the terminal state.
async fn follow(ctx: &Ctx, app_id: &str) -> Result<(String, Followed)> {
    let mut conn = ctx.panel_conn().await?;
    let body = serde_json::json!({
        "app_id": app_id,
        "agent_id": AGENT,
        "inputs": {"bench_secret": PROGRESS_SECRET},
    })
    .to_string();
    let request = http1::request("POST", "/api/v1/jobs", &ctx.inst.token, Some(&body));
    let job_id = create_job(&mut conn, &request).await?;
    let returned = Instant::now();
    let mut sse = sse::open(&ctx.http, &ctx.inst.panel_url(), &ctx.inst.token, &job_id).await?;
    let mut f = Followed {
        log_events: 0,
        all_events: 0,
        elapsed: Duration::ZERO,
        delays: Samples::new(),
        ticks: Vec::new(),
        terminal_state: String::new(),
    };
    loop {
        let Some(message) = sse.next(MESSAGE_LIMIT).await? else {
            bail!("the event stream of {job_id} closed before its terminal state");
        };
        let arrived = wall_micros(SystemTime::now());
        let data = message.data;
        let event: Value =
            serde_json::from_str(&data).with_context(|| format!("SSE data is not JSON: {data}"))?;
        f.all_events += 1;
        match event["type"].as_str() {
            Some("log") if event["stream"] == "stdout" => {
                f.log_events += 1;
                if let Some(sent) = event["line"].as_str().and_then(|l| l.strip_prefix("tick ")) {
                    let sent = parse_epoch_realtime(sent)
                        .with_context(|| format!("bad tick line {event}"))?;
                    f.delays.push_micros(arrived - sent);
                    f.ticks.push((sent, arrived));
                }
            }
            Some("state") => {
                let state = event["state"].as_str().unwrap_or_default();
                if !matches!(state, "queued" | "running" | "retrying") {
                    f.terminal_state = state.to_owned();
                    f.elapsed = returned.elapsed();
                    return Ok((job_id, f));
                }
            }
            _ => {}
        }
    }
}

/// The job's `started_at` and `finished_at` (unix ms) from its record.
fn job_times(ctx: &Ctx, job_id: &str) -> Result<(u64, u64)> {
    let (started, finished): (Option<u64>, Option<u64>) = redis::cmd("HMGET")
        .arg(AgentRedisKeys::new(AGENT).job(job_id))
        .arg(field::STARTED_AT)
        .arg(field::FINISHED_AT)
        .query(&mut ctx.inst.redis.connection()?)?;
    Ok((
        started.context("the job record has no started_at")?,
        finished.context("the job record has no finished_at")?,
    ))
}
