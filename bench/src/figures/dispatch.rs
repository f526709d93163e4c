//! Figure 1: dispatch latency. Sequential jobs of `bench-mark` on one runner: from
//! `POST /api/v1/jobs` returning to the script's first instruction, and from enqueue to the
//! result, with the time split per stage; against a bare Redis hand-off plus a bare spawn.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, ensure};

use super::{Ctx, create_job};
use crate::baselines::{self, take_mark, wall_micros};
use crate::bundles::MARK;
use crate::report::{Figure, Goal, Row, Table, verdict};
use crate::stats::{Micros, Samples, Summary, factor};
use crate::watch::{Seen, Watcher};

/// The agent whose runner the dispatch and progress figures use.
pub(crate) const AGENT: &str = "bench-d1";
/// Jobs run first and not counted (connections, caches, page faults).
const WARM_UP: usize = 10;
/// Goals from the issue: enqueue → result at most these multiples of the bound
/// (hand-off + bare spawn→exit, measured in the same run), at p50 and at p99.
const GOAL_P50_FACTOR: f64 = 1.5;
const GOAL_P99_FACTOR: f64 = 3.0;

/// Per job: wall-clock microseconds of each observable moment.
#[derive(Debug, Clone, Copy)]
struct Moments {
    post_sent: f64,
    post_returned: f64,
    running_seen: f64,
    first_instruction: f64,
    log_seen: f64,
    result_seen: f64,
}

pub(crate) async fn measure(ctx: &mut Ctx) -> Result<Figure> {
    let n = ctx.plan.dispatch_jobs;
    let client = ctx.inst.redis.client()?;
    let mut watcher = Watcher::start(&client, AGENT).await?;
    let mut conn = ctx.panel_conn().await?;
    let request = ctx.create_job_request(MARK, AGENT);

    let mut moments = Vec::with_capacity(n);
    let mut last_job = String::new();
    for i in 0..WARM_UP + n {
        let m = one_job(ctx, &mut conn, &request, &mut watcher, &mut last_job).await?;
        if i >= WARM_UP {
            moments.push(m);
        }
    }
    // The bare hand-off moves a value as large as a real signed job.
    let wire: String = redis::cmd("HGET")
        .arg(outfitter_contract::redis_keys::AgentRedisKeys::new(AGENT).job(&last_job))
        .arg(outfitter_contract::job::field::SIGNED)
        .query(&mut ctx.inst.redis.connection()?)?;
    let mut handoff = baselines::redis_handoff(&client, n, &wire)?;
    let (mut spawn_first, mut spawn_exit) = (Samples::new(), Samples::new());
    for _ in 0..n {
        let t = baselines::spawn_once(&ctx.bundles.script(MARK), Some(&ctx.bundles.mark_file))?;
        spawn_first.push(t.to_first_instruction.context("the mark script marks")?);
        spawn_exit.push(t.to_exit);
    }
    Ok(figure(
        n,
        &moments,
        wire.len(),
        &mut handoff,
        &mut spawn_first,
        &mut spawn_exit,
    ))
}

async fn one_job(
    ctx: &Ctx,
    conn: &mut crate::http1::Conn,
    request: &[u8],
    watcher: &mut Watcher,
    last_job: &mut String,
) -> Result<Moments> {
    let post_sent = wall_micros(SystemTime::now());
    let job_id = create_job(conn, request).await?;
    let post_returned = wall_micros(SystemTime::now());
    let (mut running, mut log) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    let result = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let seen: Seen = watcher
            .next(left)
            .await
            .with_context(|| format!("waiting for job {job_id}"))?;
        if seen.job_id != job_id {
            continue;
        }
        match seen.state() {
            Some("running") => running = Some(seen.wall),
            _ if seen.is_terminal() => break seen,
            Some(_) => {}
            None => {
                log.get_or_insert(seen.wall);
            }
        }
    };
    ensure!(
        result.state() == Some("succeeded"),
        "dispatch job {job_id} ended {:?}: {:?}",
        result.state(),
        result.event
    );
    *last_job = job_id;
    Ok(Moments {
        post_sent,
        post_returned,
        running_seen: wall_micros(running.context("no running event")?),
        first_instruction: take_mark(&ctx.bundles.mark_file)?,
        log_seen: wall_micros(log.context("no log event")?),
        result_seen: wall_micros(result.wall),
    })
}

fn figure(
    n: usize,
    moments: &[Moments],
    wire_bytes: usize,
    handoff: &mut Samples,
    spawn_first: &mut Samples,
    spawn_exit: &mut Samples,
) -> Figure {
    let series = |f: fn(&Moments) -> f64| {
        let mut s = Samples::new();
        for m in moments {
            s.push_micros(f(m));
        }
        s
    };
    let mut post = series(|m| m.post_returned - m.post_sent);
    let mut dispatch = series(|m| m.first_instruction - m.post_returned);
    let mut e2r = series(|m| m.result_seen - m.post_sent);
    let mut returned_to_result = series(|m| m.result_seen - m.post_returned);
    let mut running_to_first = series(|m| m.first_instruction - m.running_seen);
    let (h, sf, se) = (
        handoff.summary(),
        spawn_first.summary(),
        spawn_exit.summary(),
    );
    let d = dispatch.summary();
    let e = e2r.summary();
    let r = returned_to_result.summary();
    let rf = running_to_first.summary();
    let p = post.summary();
    let bound_dispatch = (h.p50 + sf.p50, h.p99 + sf.p99);
    let bound_result = (h.p50 + se.p50, h.p99 + se.p99);
    let pair = |a: f64, b: f64| format!("{} / {}", Micros(a), Micros(b));
    // A measured p50 / p99 beside the bound it is compared with, and their ratios.
    let versus = |what: &str, m: &Summary, bound_name: &str, bound: (f64, f64)| {
        Row::new(what, pair(m.p50, m.p99)).against(
            format!("{bound_name} {}", pair(bound.0, bound.1)),
            format!("{} / {}", factor(m.p50, bound.0), factor(m.p99, bound.1)),
        )
    };
    let rows = vec![
        versus(
            "POST returned → script's first instruction (p50 / p99)",
            &d,
            "hand-off + spawn→first instruction",
            bound_dispatch,
        ),
        versus(
            "enqueue (POST sent) → result in Redis (p50 / p99)",
            &e,
            "hand-off + spawn→exit",
            bound_result,
        ),
        versus(
            "POST returned → result in Redis (p50 / p99)",
            &r,
            "hand-off + spawn→exit",
            bound_result,
        ),
        Row::new(
            "`running` event → script's first instruction (p50 / p99)",
            pair(rf.p50, rf.p99),
        )
        .against(
            format!("bare spawn → first instruction {}", pair(sf.p50, sf.p99)),
            format!("{} / {}", factor(rf.p50, sf.p50), factor(rf.p99, sf.p99)),
        ),
        Row::new("POST /api/v1/jobs alone (p50 / p99)", pair(p.p50, p.p99)),
        Row::new(
            "baseline: LPUSH → BLMOVE returns (p50 / p99)",
            pair(h.p50, h.p99),
        ),
        Row::new(
            "baseline: bare spawn → first instruction (p50 / p99)",
            pair(sf.p50, sf.p99),
        ),
        Row::new(
            "baseline: bare spawn → exit, output read (p50 / p99)",
            pair(se.p50, se.p99),
        ),
    ];
    let goals = vec![
        Goal {
            text: format!("enqueue → result p50 ≤ {GOAL_P50_FACTOR}× (hand-off + spawn→exit)"),
            measured: format!(
                "{} against {}: {}",
                Micros(e.p50),
                Micros(bound_result.0),
                factor(e.p50, bound_result.0)
            ),
            met: e.p50 <= GOAL_P50_FACTOR * bound_result.0,
        },
        Goal {
            text: format!("enqueue → result p99 ≤ {GOAL_P99_FACTOR}× (hand-off + spawn→exit)"),
            measured: format!(
                "{} against {}: {}",
                Micros(e.p99),
                Micros(bound_result.1),
                factor(e.p99, bound_result.1)
            ),
            met: e.p99 <= GOAL_P99_FACTOR * bound_result.1,
        },
    ];
    let stage = |name: &str, who: &str, f: fn(&Moments) -> f64| {
        let mut s = series(f);
        let sum = s.summary();
        vec![
            name.to_owned(),
            who.to_owned(),
            Micros(sum.p50).to_string(),
            Micros(sum.p99).to_string(),
            Micros(s.mean().unwrap_or(f64::NAN)).to_string(),
        ]
    };
    let stages = Table {
        heading:
            "Where the time goes, per job (wall-clock moments the bench observes: the HTTP reply, \
                  events arriving on the job's Redis channel, the script's `$EPOCHREALTIME` mark):"
                .into(),
        columns: ["stage", "done by", "p50", "p99", "mean"]
            .map(String::from)
            .to_vec(),
        rows: vec![
            stage(
                "POST sent → reply",
                "panel: auth, validate, sign, enqueue script",
                |m| m.post_returned - m.post_sent,
            ),
            stage(
                "reply → `running` event",
                "runner: BLMOVE wake-up, checks, state write",
                |m| m.running_seen - m.post_returned,
            ),
            stage(
                "`running` event → first instruction",
                "runner: sandbox set-up, fork/exec, bash start",
                |m| m.first_instruction - m.running_seen,
            ),
            stage(
                "first instruction → log event",
                "script, output read, event append",
                |m| m.log_seen - m.first_instruction,
            ),
            stage(
                "log event → result event",
                "exit, reaping, drain, outbox, result step",
                |m| m.result_seen - m.log_seen,
            ),
        ],
    };
    let missed = goals.iter().any(|g| !g.met);
    Figure {
        number: 1,
        title: "Dispatch latency".into(),
        method: format!(
            "{n} sequential jobs of `bench-mark` (its first instruction writes bash's `$EPOCHREALTIME` \
             to a file; then it prints one line and exits 0) on one runner with default settings, \
             after {WARM_UP} uncounted jobs. The bench posts with its own keep-alive HTTP/1.1 client and \
             sees the result when the terminal state event arrives on the job's Redis channel (the runner \
             publishes it in the same Lua step that writes the result). Baselines, in the same run: \
             `LPUSH` of a {wire_bytes}-byte value (the size of a real signed job) until a `BLMOVE` blocked \
             on a second connection returns, and a bare `bash` spawn of the same script from a minimal \
             Rust loop (own process group, output read). The bound is their sum."
        ),
        rows,
        goals,
        tables: vec![stages],
        summary: format!(
            "1. Dispatch: POST→first instruction p50 {} / p99 {} (bound {}); enqueue→result p50 {} / p99 {} \
             ({} / {} of hand-off + spawn→exit; goal ≤ {GOAL_P50_FACTOR}× / ≤ {GOAL_P99_FACTOR}×: {})",
            Micros(d.p50),
            Micros(d.p99),
            Micros(bound_dispatch.0),
            Micros(e.p50),
            Micros(e.p99),
            factor(e.p50, bound_result.0),
            factor(e.p99, bound_result.1),
            verdict(!missed)
        ),
    }
}
