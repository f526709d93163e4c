//! Figure 2: throughput. `bench-noop` jobs (one line, exit 0) queued through the API across
//! 1, 4 and 16 agents, each a runner process with default settings: jobs/s from the first
//! enqueue to the last result. Against the raw spawn rate of the same script from a minimal
//! Rust loop (one loop, and one per core), measured in the same run.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Ctx, create_job};
use crate::baselines;
use crate::bundles::NOOP;
use crate::installation::RunnerSettings;
use crate::process::CpuTime;
use crate::profile::{Kind, Profiler};
use crate::report::{Figure, Goal, Row, Table, verdict};
use crate::stats::{Micros, Rate, per_second, percent};
use crate::watch::Watcher;

/// Agent counts measured.
const AGENT_COUNTS: [usize; 3] = [1, 4, 16];
/// Agents this figure registers: one per runner of each configuration, and the drain's.
pub(crate) const REGISTERED: usize = AGENT_COUNTS[0] + AGENT_COUNTS[1] + AGENT_COUNTS[2] + 1;
/// Parallel API clients enqueueing.
const ENQUEUERS: usize = 4;
/// Jobs of each profiled pass (perf slows the runner; a few hundred jobs make a profile).
const PROFILED_JOBS: usize = 300;
/// The goal: one runner at this fraction of the raw spawn rate.
const GOAL_FRACTION: f64 = 0.8;

/// One configuration's outcome.
#[derive(Debug, Clone)]
struct Run {
    agents: usize,
    jobs: usize,
    /// First enqueue → last result.
    rate: f64,
    /// First enqueue → last `POST` answered.
    enqueue_rate: f64,
    failed: usize,
}

pub(crate) async fn measure(ctx: &mut Ctx) -> Result<Figure> {
    let n = ctx.plan.throughput_jobs;
    let script = ctx.bundles.script(NOOP);
    let raw_n = n.min(1000);
    let raw_one = baselines::spawn_rate(&script, 1, raw_n)?;
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);
    let raw_all = baselines::spawn_rate(&script, cores, raw_n / cores)?;

    // What two things the runner does per job cost on this machine right now.
    let (mut scan, procs) = baselines::proc_scan(50)?;
    let mut durable = baselines::durable_write(&ctx.work_dir.join("fsync-probe"), 50)?;

    let mut runs = Vec::new();
    for agents in AGENT_COUNTS {
        runs.push(through_api(ctx, agents, n).await?);
    }
    let (drain, cpu) = drain_one(ctx, n, None, RunnerSettings::default()).await?;
    // The goal's second pass: `concurrency` = cores (the default is one job at a time).
    let parallel = RunnerSettings {
        concurrency: Some(cores),
        ..RunnerSettings::default()
    };
    let (overlapped, _) = drain_one(ctx, n, None, parallel).await?;
    // The one guarantee whose price is mostly the kernel's: joining the job's cgroups (on
    // hybrid hosts, one write per hierarchy, each waiting for an RCU grace period).
    let no_cgroups = RunnerSettings {
        cgroups: false,
        ..RunnerSettings::default()
    };
    let (uncontained, uncontained_cpu) = drain_one(ctx, n, None, no_cgroups).await?;
    // Profiles come from extra passes, so that perf's own cost is in no rate above.
    let mut tables: Vec<Table> = cpu.into_iter().collect();
    tables.extend(uncontained_cpu.map(|mut t| {
        t.heading = t.heading.replace(
            "queue-filled pass",
            "queue-filled pass with `cgroups = false`",
        );
        t
    }));
    if ctx.plan.profile {
        for kind in [Kind::Cpu, Kind::Syscalls] {
            let jobs = (n / 2).min(PROFILED_JOBS);
            match drain_one(ctx, jobs, Some(kind), RunnerSettings::default()).await {
                Ok((_, Some(t))) => tables.push(t),
                Ok((_, None)) => {}
                Err(e) => eprintln!("outfitter-bench: profile {kind:?} failed: {e:#}"),
            }
        }
    }

    let mut rows = vec![Row::new(
        "baseline: raw spawn, one minimal loop",
        Rate(raw_one).to_string(),
    )];
    rows.push(Row::new(
        format!("baseline: raw spawn, {cores} loops in parallel"),
        Rate(raw_all).to_string(),
    ));
    for r in &runs {
        let (bound, name) = if r.agents == 1 {
            (raw_one, "one loop")
        } else {
            (raw_all, "all cores")
        };
        rows.push(
            Row::new(
                format!(
                    "{} agent{} ({} jobs; enqueue alone {}{})",
                    r.agents,
                    if r.agents == 1 { "" } else { "s" },
                    r.jobs,
                    Rate(r.enqueue_rate),
                    if r.failed > 0 {
                        format!("; {} did not succeed", r.failed)
                    } else {
                        String::new()
                    }
                ),
                Rate(r.rate).to_string(),
            )
            .against(
                format!("raw spawn, {name}: {}", Rate(bound)),
                percent(r.rate, bound),
            ),
        );
    }
    // The runner alone, queue filled first, against the raw spawn that bounds it.
    let queue_filled = |setting: &str, run: &Run, bound_name: &str, bound: f64| {
        Row::new(
            format!(
                "1 agent, queue filled first{setting}: runner alone ({} jobs)",
                run.jobs
            ),
            Rate(run.rate).to_string(),
        )
        .against(
            format!("raw spawn, {bound_name}: {}", Rate(bound)),
            percent(run.rate, bound),
        )
    };
    rows.push(queue_filled("", &drain, "one loop", raw_one));
    rows.push(queue_filled(
        &format!(", runner `concurrency = {cores}` (= cores; default 1)"),
        &overlapped,
        "all cores",
        raw_all,
    ));
    rows.push(queue_filled(
        ", `cgroups = false` (their price, not a goal's setting)",
        &uncontained,
        "one loop",
        raw_one,
    ));
    rows.push(Row::new(
        format!("cost: one scan of /proc ({procs} processes: list, read every `stat`), p50 / p99"),
        format!(
            "{} / {}",
            Micros(scan.summary().p50),
            Micros(scan.summary().p99)
        ),
    ));
    rows.push(Row::new(
        "cost: one durable 1 KiB file write (write, `fsync`, rename) in the state directory's file system, p50 / p99",
        format!("{} / {}", Micros(durable.summary().p50), Micros(durable.summary().p99)),
    ));
    let met_one = drain.rate >= GOAL_FRACTION * raw_one;
    let met_all = overlapped.rate >= GOAL_FRACTION * raw_all;
    Ok(Figure {
        number: 2,
        title: "Throughput".into(),
        method: format!(
            "{n} jobs of `bench-noop` (`echo installed`, exit 0) per configuration, spread round-robin over \
             1, 4 and 16 agents, each a runner process with default settings (signature, expiry, replay \
             guard, whitelist and digest, input validation, cgroups, process group, rlimits, \
             no_new_privs, masking, events, outbox, per-job log file). {ENQUEUERS} API clients enqueue \
             while the runners work; the rate is jobs from the first `POST` to the last result event. \
             Then the same for one agent with its queue filled while its runner was stopped: from the \
             first `running` event to the last result, the runner alone; once more with `concurrency` = \
             cores, and once with `cgroups = false` to price the cgroup joins apart (no goal is measured \
             with it). Baseline: `bash` spawns of the \
             same script from a minimal Rust loop (own process group, stdout and stderr read), one loop \
             and one per core, in the same run. All on {cores} cores shared with the panel and Redis. \
             Where `perf` works, two more queue-filled passes of {half} jobs each are profiled (CPU \
             samples, then system calls); their rates are not reported.",
            half = (n / 2).min(PROFILED_JOBS)
        ),
        rows,
        goals: vec![
            Goal {
                text: "one runner, default settings, queue filled first, at ≥ 80% of the raw spawn rate (one loop)".into(),
                measured: percent(drain.rate, raw_one),
                met: met_one,
            },
            Goal {
                text: format!(
                    "one runner with `concurrency = {cores}` (cores), queue filled first, at ≥ 80% of the parallel raw spawn rate"
                ),
                measured: percent(overlapped.rate, raw_all),
                met: met_all,
            },
        ],
        tables,
        summary: format!(
            "2. Throughput: 1/4/16 agents {} / {} / {}; runner alone {} ({} at concurrency {cores}); raw spawn {} (one loop), {} (all cores); \
             runner alone at {} of raw spawn, {} of parallel raw spawn at concurrency {cores} (goals ≥ 80%: {}, {})",
            Rate(runs[0].rate),
            Rate(runs[1].rate),
            Rate(runs[2].rate),
            Rate(drain.rate),
            Rate(overlapped.rate),
            Rate(raw_one),
            Rate(raw_all),
            percent(drain.rate, raw_one),
            percent(overlapped.rate, raw_all),
            verdict(met_one),
            verdict(met_all),
        ),
    })
}

fn agent_ids(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i}")).collect()
}

/// Enqueues `n` jobs round-robin over `agents` running runners and waits for every result.
async fn through_api(ctx: &mut Ctx, agents: usize, n: usize) -> Result<Run> {
    let prefix = format!("bench-t{agents}");
    let ids = agent_ids(&prefix, agents);
    for id in &ids {
        ctx.inst.add_and_start_runner(id)?;
    }
    let mut watcher = Watcher::start(&ctx.inst.redis.client()?, &format!("{prefix}-*")).await?;
    let requests: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| ctx.create_job_request(NOOP, id))
        .collect();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for e in 0..ENQUEUERS {
        let mut conn = ctx.panel_conn().await?;
        let mine: Vec<Vec<u8>> = (e..n)
            .step_by(ENQUEUERS)
            .map(|i| requests[i % agents].clone())
            .collect();
        tasks.push(tokio::spawn(async move {
            for r in mine {
                create_job(&mut conn, &r).await?;
            }
            anyhow::Ok(())
        }));
    }
    // Results queue up in the watcher meanwhile.
    for t in tasks {
        t.await??;
    }
    let enqueued = start.elapsed();
    let (last, failed) = collect_results(&mut watcher, n, start, result_limit(n)).await?;
    for id in &ids {
        ctx.inst.stop_runner(id);
    }
    Ok(Run {
        agents,
        jobs: n,
        rate: per_second(n as u64, last.duration_since(start)),
        enqueue_rate: per_second(n as u64, enqueued),
        failed,
    })
}

/// The agent of the queue-filled-first runs.
const DRAIN_AGENT: &str = "bench-q1";

/// Fills one agent's queue while its runner is stopped, starts it, and times the runner from
/// its first `running` event to its last result; with `profile`, `perf` watches the runner
/// meanwhile (such a pass is for the profile, not for the rate).
async fn drain_one(
    ctx: &mut Ctx,
    n: usize,
    profile: Option<Kind>,
    settings: RunnerSettings,
) -> Result<(Run, Option<Table>)> {
    let id = DRAIN_AGENT;
    if !ctx.inst.is_registered(id) {
        // One heartbeat first: the panel refuses jobs for an agent it has never seen.
        ctx.inst.add_and_start_runner(id)?;
    }
    ctx.inst.stop_runner(id);
    let request = ctx.create_job_request(NOOP, id);
    let enqueue_start = Instant::now();
    let mut tasks = Vec::new();
    for e in 0..ENQUEUERS {
        let mut conn = ctx.panel_conn().await?;
        let count = (e..n).step_by(ENQUEUERS).count();
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..count {
                create_job(&mut conn, &request).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let enqueue_rate = per_second(n as u64, enqueue_start.elapsed());
    let mut watcher = Watcher::start(&ctx.inst.redis.client()?, id).await?;
    ctx.inst.start_runner_with(id, settings)?;
    let runner_pid = ctx.inst.runner_pid(id).context("the runner runs")?;
    let cpu_before = (CpuTime::of(runner_pid)?, CpuTime::of(ctx.inst.redis.pid())?);
    let profiler = match profile {
        Some(kind) => {
            let pid = ctx.inst.runner_pid(id).context("the runner runs")?;
            Some(Profiler::start(kind, pid, &ctx.work_dir.join("profiles"))?)
        }
        None => None,
    };
    let first = loop {
        let seen = watcher.next(Duration::from_secs(60)).await?;
        if seen.state() == Some("running") {
            break seen.at;
        }
    };
    let limit = match profile {
        // perf slows the runner down; give a profiled pass more time.
        Some(_) => Duration::from_secs(120 + n as u64 / 5),
        None => result_limit(n),
    };
    let (last, failed) = collect_results(&mut watcher, n, first, limit).await?;
    let wall = last.duration_since(first);
    let table = match profiler {
        Some(p) => Some(p.finish(n, "job")?),
        None => Some(cpu_table(
            n,
            wall,
            CpuTime::of(runner_pid)?.since(cpu_before.0),
            CpuTime::of(ctx.inst.redis.pid())?.since(cpu_before.1),
        )),
    };
    ctx.inst.stop_runner(id);
    Ok((
        Run {
            agents: 1,
            jobs: n,
            rate: per_second(n as u64, wall),
            enqueue_rate,
            failed,
        },
        table,
    ))
}

/// How long `n` jobs may take before the bench gives up.
fn result_limit(n: usize) -> Duration {
    Duration::from_secs(30 + n as u64 / 20)
}

/// CPU used per job during a queue-filled pass, next to the wall time per job.
fn cpu_table(n: usize, wall: Duration, runner: CpuTime, redis: CpuTime) -> Table {
    let per = |d: Duration| Micros(d.as_secs_f64() * 1e6 / n.max(1) as f64).to_string();
    Table {
        heading: format!(
            "CPU time per job in the queue-filled pass ({n} jobs, from `/proc/<pid>/stat`, 10 ms ticks):"
        ),
        columns: ["what", "per job"].map(String::from).to_vec(),
        rows: vec![
            vec![
                "wall time (first `running` → last result)".into(),
                per(wall),
            ],
            vec!["runner process, user + system".into(), per(runner.own)],
            vec![
                "its scripts (`bash`, reaped children)".into(),
                per(runner.children),
            ],
            vec!["redis-server".into(), per(redis.own)],
        ],
    }
}

/// Reads result events until `n` jobs have one: the moment the last arrived, and how many
/// jobs did not succeed.
async fn collect_results(
    watcher: &mut Watcher,
    n: usize,
    start: Instant,
    limit: Duration,
) -> Result<(Instant, usize)> {
    let deadline = start + limit;
    let (mut done, mut failed, mut last) = (0, 0, start);
    while done < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let seen = watcher
            .next(left)
            .await
            .with_context(|| format!("{done} of {n} results after {limit:?}"))?;
        if seen.is_terminal() {
            done += 1;
            last = seen.at;
            if seen.state() != Some("succeeded") {
                failed += 1;
                if failed == 1 {
                    eprintln!(
                        "outfitter-bench: job {} ended {:?}",
                        seen.job_id, seen.event
                    );
                }
            }
        }
    }
    if failed == n {
        bail!("none of the {n} jobs succeeded");
    }
    Ok((last, failed))
}
