//! Figure 5: scale. 1,000 agents registered through the API, heartbeating (simulated in this
//! process, one pipelined round of `SET … EX` every heartbeat interval, as 1,000 runners
//! would), each with queued jobs; then the panel's and Redis's memory and the latency of the
//! agents page and API. Against the bare Redis reads that page needs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use outfitter_contract::host::{HEARTBEAT_INTERVAL_SECS, HEARTBEAT_TTL_SECS};
use outfitter_contract::redis_keys::{AGENTS, AgentRedisKeys};
use serde_json::json;

use super::{Ctx, create_job, write_heartbeats};
use crate::bundles::NOOP;
use crate::http1::{self, Conn};
use crate::process::mib;
use crate::report::{Figure, Row};
use crate::stats::{Micros, Samples, factor};

/// Parallel API clients registering agents and queueing jobs.
const CLIENTS: usize = 8;

pub(crate) async fn measure(ctx: &mut Ctx) -> Result<Figure> {
    let count = ctx.plan.agents;
    let ids: Vec<String> = (1..=count).map(|i| format!("sim-{i:04}")).collect();
    let redis_before = ctx.inst.redis.used_memory()?;
    let panel_before = ctx.inst.panel_memory()?;

    let setup = Instant::now();
    register_agents(ctx, &ids)
        .await
        .context("registering the agents")?;
    let registered_in = setup.elapsed();

    let heartbeats = Heartbeats::start(&ctx.inst.redis.client()?, ids.clone())?;
    let mut jobs = Vec::new();
    for _ in 0..ctx.plan.jobs_per_agent {
        jobs.extend(ids.iter().map(|id| ctx.create_job_request(NOOP, id)));
    }
    let queued_start = Instant::now();
    let queued = jobs.len();
    in_parallel(ctx, jobs, 202)
        .await
        .context("queueing the jobs")?;
    let queued_in = queued_start.elapsed();

    let samples = if ctx.plan.quick { 10 } else { 40 };
    let mut page = timed_gets(ctx, "/agents", samples).await?;
    let mut api = timed_gets(ctx, "/api/v1/agents", samples).await?;
    let mut bare = bare_reads(ctx, &ids, samples)?;
    let redis_after = ctx.inst.redis.used_memory()?;
    let panel_after = ctx.inst.panel_memory()?;
    let depth_ok = queue_depths(ctx, &ids)?;
    heartbeats.stop();
    ensure!(
        depth_ok == count,
        "{} of {count} agents have {} queued jobs",
        depth_ok,
        ctx.plan.jobs_per_agent
    );

    let (p, a, b) = (page.0.summary(), api.0.summary(), bare.summary());
    let redis_delta = redis_after.saturating_sub(redis_before);
    let rows = vec![
        Row::new(
            format!(
                "agents page `GET /agents` (p50 / p99 of {samples}; {} bytes)",
                page.1
            ),
            format!("{} / {}", Micros(p.p50), Micros(p.p99)),
        )
        .against(
            format!("bare Redis reads of the same data: {}", Micros(b.p50)),
            factor(p.p50, b.p50),
        ),
        Row::new(
            format!(
                "`GET /api/v1/agents` (p50 / p99 of {samples}; {} bytes)",
                api.1
            ),
            format!("{} / {}", Micros(a.p50), Micros(a.p99)),
        )
        .against(
            format!("bare Redis reads of the same data: {}", Micros(b.p50)),
            factor(a.p50, b.p50),
        ),
        Row::new(
            format!("Redis `used_memory` added by {count} agents and {queued} queued jobs"),
            format!(
                "{} ({:.1} KiB per agent)",
                mib(redis_delta / 1024),
                redis_delta as f64 / 1024.0 / count as f64
            ),
        )
        .against(format!("before: {}", mib(redis_before / 1024)), ""),
        Row::new("Redis `used_memory` total", mib(redis_after / 1024)),
        Row::new("panel VmRSS after", mib(panel_after.rss_kib)).against(
            format!("before the agents: {}", mib(panel_before.rss_kib)),
            factor(panel_after.rss_kib as f64, panel_before.rss_kib as f64),
        ),
        Row::new(
            "setup through the API",
            format!(
                "{count} agents registered in {:.1} s; {queued} jobs queued in {:.1} s",
                registered_in.as_secs_f64(),
                queued_in.as_secs_f64()
            ),
        ),
    ];
    Ok(Figure {
        number: 5,
        title: "Scale".into(),
        method: format!(
            "{count} agents registered with `POST /api/v1/agents`; their heartbeats are simulated in the \
             bench (the runner's host-facts JSON, `SET … EX {HEARTBEAT_TTL_SECS}` every \
             {HEARTBEAT_INTERVAL_SECS} s for all agents in one pipeline), and each agent gets {} queued \
             `bench-noop` jobs through `POST /api/v1/jobs`. Then `GET /agents` and `GET /api/v1/agents` \
             are timed one after another while the heartbeats go on, and memory is read. Baseline: what \
             the page must read at least, from one client in one pipelined round trip (`HGETALL` of the \
             registrations, `GET` of every heartbeat, `LLEN` of every queue).",
            ctx.plan.jobs_per_agent
        ),
        rows,
        goals: vec![],
        tables: vec![],
        summary: format!(
            "5. Scale ({count} agents, {queued} queued jobs): agents page p50 {} / p99 {} (bare reads {}); \
             Redis +{}; panel RSS {}",
            Micros(p.p50),
            Micros(p.p99),
            Micros(b.p50),
            mib(redis_delta / 1024),
            mib(panel_after.rss_kib)
        ),
    })
}

/// Registers every agent of `ids` with `POST /api/v1/agents`, over [`CLIENTS`] connections.
pub(crate) async fn register_agents(ctx: &Ctx, ids: &[String]) -> Result<()> {
    let register: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| {
            http1::request(
                "POST",
                "/api/v1/agents",
                &ctx.inst.token,
                Some(&json!({"id": id}).to_string()),
            )
        })
        .collect();
    in_parallel(ctx, register, 201).await
}

/// Sends every request, spread over [`CLIENTS`] connections; each must answer `status`.
pub(crate) async fn in_parallel(ctx: &Ctx, requests: Vec<Vec<u8>>, status: u16) -> Result<()> {
    in_parallel_at(ctx.panel_addr(), requests, status).await
}

/// [`in_parallel`] against the panel at `addr`.
pub(crate) async fn in_parallel_at(
    addr: std::net::SocketAddr,
    requests: Vec<Vec<u8>>,
    status: u16,
) -> Result<()> {
    let requests = Arc::new(requests);
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut conn = Conn::connect(addr).await?;
        let requests = requests.clone();
        tasks.push(tokio::spawn(async move {
            for r in requests.iter().skip(c).step_by(CLIENTS) {
                if status == 202 {
                    create_job(&mut conn, r).await?;
                } else {
                    let resp = conn.send(r).await?;
                    ensure!(
                        resp.status == status,
                        "expected {status}, got {}: {}",
                        resp.status,
                        String::from_utf8_lossy(&resp.body)
                    );
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// `n` sequential GETs of `path`: latencies and the body size.
async fn timed_gets(ctx: &Ctx, path: &str, n: usize) -> Result<(Samples, usize)> {
    let mut conn: Conn = ctx.panel_conn().await?;
    let request = http1::request("GET", path, &ctx.inst.token, None);
    let (mut samples, mut bytes) = (Samples::new(), 0);
    for _ in 0..n {
        let t0 = Instant::now();
        let resp = conn.send(&request).await?;
        samples.push(t0.elapsed());
        ensure!(resp.status == 200, "GET {path}: {}", resp.status);
        bytes = resp.body.len();
    }
    Ok((samples, bytes))
}

/// The bare reads behind the agents page, `n` times.
fn bare_reads(ctx: &Ctx, ids: &[String], n: usize) -> Result<Samples> {
    let mut conn = ctx.inst.redis.connection()?;
    let mut samples = Samples::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL").arg(AGENTS);
        for id in ids {
            let keys = AgentRedisKeys::new(id);
            pipe.cmd("GET").arg(keys.heartbeat());
            pipe.cmd("LLEN").arg(keys.queue());
        }
        let _: Vec<redis::Value> = pipe.query(&mut conn)?;
        samples.push(t0.elapsed());
    }
    Ok(samples)
}

/// How many agents have exactly the planned number of queued jobs.
fn queue_depths(ctx: &Ctx, ids: &[String]) -> Result<usize> {
    let mut conn = ctx.inst.redis.connection()?;
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("LLEN").arg(AgentRedisKeys::new(id).queue());
    }
    let depths: Vec<usize> = pipe.query(&mut conn)?;
    Ok(depths
        .iter()
        .filter(|&&d| d == ctx.plan.jobs_per_agent)
        .count())
}

/// The simulated runners' heartbeats: a thread writing all of them every interval.
struct Heartbeats {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Heartbeats {
    /// Writes the first round before returning (the panel refuses jobs for agents never seen).
    fn start(client: &redis::Client, ids: Vec<String>) -> Result<Self> {
        let mut conn = client.get_connection()?;
        write_heartbeats(&mut conn, &ids, HEARTBEAT_TTL_SECS)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut next = Instant::now() + Duration::from_secs(HEARTBEAT_INTERVAL_SECS);
            while !s.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    if let Err(e) = write_heartbeats(&mut conn, &ids, HEARTBEAT_TTL_SECS) {
                        eprintln!("outfitter-bench: simulated heartbeats failed: {e:#}");
                    }
                    next += Duration::from_secs(HEARTBEAT_INTERVAL_SECS);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Ok(Self { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}
