//! Figure 8: rollouts. One rollout of `bench-noop` over a label selector onto simulated
//! agents, its jobs finished by the bench's [`SimRunner`]: how long the panel's driver takes
//! to start each batch after the last one ended, the whole rollout's time and rate, and the
//! rollout API's latency while it runs. Against the same jobs queued with plain
//! `POST /api/v1/jobs`, batch by batch and all at once, finished by the same simulated runner.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use outfitter_contract::redis_keys;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::scale::in_parallel;
use super::{Ctx, create_job, write_heartbeats};
use crate::baselines::wall_micros;
use crate::bundles::NOOP;
use crate::http1::{self, Conn};
use crate::report::{Figure, Row, Table};
use crate::sim_runner::{Finished, SimRunner};
use crate::stats::{Micros, Rate, Samples, factor, per_second, thousands};

mod rows;

use rows::{Latencies, Rows, batch_table};

/// The label the rollout's agents carry and its selector asks for.
const LABEL: (&str, &str) = ("fleet", "bench");
/// Jobs the simulated runner finishes at once (each is three Redis round trips).
const WORKERS: usize = 16;
/// Pause between two requests of one latency probe: a few dozen browsers polling a page
/// once a second (the rollout page polls its API every second).
const PROBE_PAUSE: Duration = Duration::from_millis(20);
/// How long the idle latency probes run.
const IDLE_PROBE: Duration = Duration::from_secs(2);
/// Longest wait for the next simulated job to finish.
const JOB_LIMIT: Duration = Duration::from_secs(120);

/// The moments of one way of running the jobs, in wall-clock microseconds.
#[derive(Debug, Clone)]
struct Run {
    /// The first request sent.
    start: f64,
    /// When the last job's result was in Redis.
    last_ended: f64,
    batches: Vec<BatchTimes>,
}

impl Run {
    fn elapsed_s(&self) -> f64 {
        (self.last_ended - self.start) / 1e6
    }

    /// Previous batch's last job ended (or the first request for the first batch) → this
    /// batch's first job queued, for every batch after the first.
    fn start_gaps(&self) -> Samples {
        let mut s = Samples::new();
        for b in self.batches.iter().skip(1) {
            s.push_micros(b.gap);
        }
        s
    }

    /// First → last job of a batch queued.
    fn queueing(&self) -> Samples {
        let mut s = Samples::new();
        for b in &self.batches {
            s.push_micros(b.last_queued - b.first_queued);
        }
        s
    }
}

/// One batch's moments (wall-clock microseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
struct BatchTimes {
    first_queued: f64,
    last_queued: f64,
    last_ended: f64,
    /// From the previous batch's last end (the start, for the first) to `first_queued`.
    gap: f64,
}

/// Each batch's moments from its jobs' `(batch, queued, ended)`; batches numbered from 0.
fn batch_times(start: f64, jobs: &[(u32, f64, f64)]) -> Vec<BatchTimes> {
    let count = jobs.iter().map(|j| j.0 + 1).max().unwrap_or(0) as usize;
    let mut out: Vec<BatchTimes> = vec![
        BatchTimes {
            first_queued: f64::INFINITY,
            last_queued: f64::NEG_INFINITY,
            last_ended: f64::NEG_INFINITY,
            gap: 0.0,
        };
        count
    ];
    for &(b, queued, ended) in jobs {
        let t = &mut out[b as usize];
        t.first_queued = t.first_queued.min(queued);
        t.last_queued = t.last_queued.max(queued);
        t.last_ended = t.last_ended.max(ended);
    }
    let mut previous_end = start;
    for t in &mut out {
        t.gap = t.first_queued - previous_end;
        previous_end = t.last_ended;
    }
    out
}

pub(crate) async fn measure(ctx: &mut Ctx) -> Result<Figure> {
    let n = ctx.plan.rollout_agents;
    let size = ctx.plan.rollout_batch;
    let ids = |set: &str| -> Vec<String> {
        (1..=n)
            .map(|i| format!("fleet-{set}-{i:04}"))
            .collect::<Vec<_>>()
    };
    let (rolled, batched, burst) = (ids("r"), ids("b"), ids("a"));
    // Every set registered and online before anything is measured, so the rollout's plan
    // reads as many agents as every run does.
    register(ctx, &rolled, true).await?;
    register(ctx, &batched, false).await?;
    register(ctx, &burst, false).await?;
    let client = ctx.inst.redis.client()?;
    let mut sim = SimRunner::start(&client, "fleet-*", WORKERS).await?;
    let addr = ctx.panel_addr();
    let healthz = http1::request("GET", "/healthz", &ctx.inst.token, None);

    let health_idle = Probe::start(addr, healthz.clone())
        .await?
        .after(IDLE_PROBE)
        .await?;

    // Baseline 1: the bench as a driver with no delay of its own.
    let health = Probe::start(addr, healthz.clone()).await?;
    let direct = direct_batches(ctx, &mut sim, &batched, size).await?;
    let health_direct = health.stop().await?;

    // Baseline 2: every job at once, 8 API clients.
    let requests: Vec<Vec<u8>> = burst
        .iter()
        .map(|id| ctx.create_job_request(NOOP, id))
        .collect();
    let burst_start = wall_micros(SystemTime::now());
    in_parallel(ctx, requests, 202)
        .await
        .context("queueing the jobs at once")?;
    let burst_posted = wall_micros(SystemTime::now());
    let done = sim.collect(n, JOB_LIMIT).await?;
    let burst_end = done
        .iter()
        .map(|f| wall_micros(f.ended))
        .fold(f64::NEG_INFINITY, f64::max);
    let burst_rate = n as f64 / ((burst_end - burst_start) / 1e6);

    // The rollout.
    let health = Probe::start(addr, healthz.clone()).await?;
    let body = json!({
        "app_id": NOOP,
        "inputs": {},
        "selector": {"labels": {LABEL.0: LABEL.1}},
        "batch_size": size,
        "max_failures": 0,
    });
    let sent = SystemTime::now();
    let resp = ctx
        .http
        .post(format!("{}/api/v1/rollouts", ctx.inst.panel_url()))
        .bearer_auth(&ctx.inst.token)
        .json(&body)
        .send()
        .await?;
    let returned = SystemTime::now();
    let status = resp.status();
    let created: Value = resp.json().await?;
    ensure!(
        status.as_u16() == 202,
        "POST /api/v1/rollouts answered {status}: {created}"
    );
    let id = created["id"].as_str().context("rollout id")?.to_owned();
    let batch_of = target_batches(&created)?;
    ensure!(
        batch_of.len() == n,
        "the rollout took {} servers, not {n}",
        batch_of.len()
    );
    let path = format!("/api/v1/rollouts/{id}");
    let view = Probe::start(addr, http1::request("GET", &path, &ctx.inst.token, None)).await?;
    let done = sim.collect(n, JOB_LIMIT).await?;
    let (record, seen_final) = wait_for_end(ctx, &path).await?;
    let view_busy = view.stop().await?;
    let health_busy = health.stop().await?;
    let view_idle = Probe::start(addr, http1::request("GET", &path, &ctx.inst.token, None))
        .await?
        .after(IDLE_PROBE)
        .await?;
    ensure!(
        record["state"] == "succeeded",
        "the rollout ended {}: {}",
        record["state"],
        record["history"]
    );

    let rollout = rollout_run(wall_micros(sent), &done, &batch_of)?;
    let record_bytes: usize = redis::cmd("HSTRLEN")
        .arg(redis_keys::rollout(&id))
        .arg("data")
        .query(&mut ctx.inst.redis.connection()?)?;
    let bare = bare_reads(ctx, &id, view_idle.0.len().max(20))?;
    let writes = record["rev"].as_u64().unwrap_or(0);
    let rounds = round_starts(&record);
    let finished_at = record["finished_at"]
        .as_f64()
        .context("the finished rollout has no finished_at")?
        * 1000.0;

    let rows = Rows {
        n,
        size,
        rollout: &rollout,
        direct: &direct,
        burst_rate,
        burst_posted_s: (burst_posted - burst_start) / 1e6,
        post_ms: (wall_micros(returned) - wall_micros(sent)) / 1000.0,
        first_after_post: rollout
            .batches
            .first()
            .map_or(f64::NAN, |b| b.first_queued - wall_micros(returned)),
        total_s: (finished_at - wall_micros(sent)) / 1e6,
        end_to_record_ms: (finished_at - rollout.last_ended) / 1000.0,
        seen_final_s: (wall_micros(seen_final) - wall_micros(sent)) / 1e6,
        record_bytes,
        view_bytes: view_idle.1,
        history: record["history"].as_array().map_or(0, Vec::len),
        writes,
    };
    let table = batch_table(&rollout, &rounds, wall_micros(returned));
    let mut latencies = Latencies {
        view_busy: view_busy.0,
        health_busy: health_busy.0,
        view_idle: view_idle.0,
        health_idle: health_idle.0,
        health_direct: health_direct.0,
        bare,
    };
    Ok(rows.figure(&mut latencies, table))
}

/// Registers agents through the API (labelled for the rollout when `labelled`) and gives
/// each a heartbeat that outlives the run; no runner is behind them but the simulated one.
async fn register(ctx: &mut Ctx, ids: &[String], labelled: bool) -> Result<()> {
    let token = ctx.inst.token.clone();
    let requests: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| {
            let body = if labelled {
                json!({"id": id, "labels": {LABEL.0: LABEL.1}})
            } else {
                json!({"id": id})
            };
            http1::request("POST", "/api/v1/agents", &token, Some(&body.to_string()))
        })
        .collect();
    in_parallel(ctx, requests, 201)
        .await
        .context("registering the agents")?;
    write_heartbeats(&mut ctx.inst.redis.connection()?, ids, 3600)
}

/// The jobs queued through `POST /api/v1/jobs` in batches of `size`, one request after
/// another on one connection (as the driver queues a batch), the next batch the moment the
/// simulated runner has finished the last job of the previous one.
async fn direct_batches(
    ctx: &Ctx,
    sim: &mut SimRunner,
    ids: &[String],
    size: usize,
) -> Result<Run> {
    let mut conn = ctx.panel_conn().await?;
    let start = wall_micros(SystemTime::now());
    let mut jobs = Vec::with_capacity(ids.len());
    for (b, chunk) in ids.chunks(size).enumerate() {
        for id in chunk {
            create_job(&mut conn, &ctx.create_job_request(NOOP, id)).await?;
        }
        for f in sim.collect(chunk.len(), JOB_LIMIT).await? {
            jobs.push((b as u32, wall_micros(f.queued), wall_micros(f.ended)));
        }
    }
    let batches = batch_times(start, &jobs);
    Ok(Run {
        start,
        last_ended: batches.last().map_or(start, |b| b.last_ended),
        batches,
    })
}

/// Every target's batch (from 0) by agent id, from the rollout as `POST` answered it.
fn target_batches(rollout: &Value) -> Result<std::collections::HashMap<String, u32>> {
    rollout["targets"]
        .as_array()
        .context("the rollout has no targets")?
        .iter()
        .map(|t| {
            let agent = t["agent_id"].as_str().context("target agent_id")?;
            let batch = t["batch"].as_u64().context("target batch")?;
            // The API numbers batches from 1.
            Ok((agent.to_owned(), batch.saturating_sub(1) as u32))
        })
        .collect()
}

fn rollout_run(
    start: f64,
    done: &[Finished],
    batch_of: &std::collections::HashMap<String, u32>,
) -> Result<Run> {
    let mut jobs = Vec::with_capacity(done.len());
    for f in done {
        let b = *batch_of
            .get(&f.agent_id)
            .with_context(|| format!("a job for {} is not the rollout's", f.agent_id))?;
        jobs.push((b, wall_micros(f.queued), wall_micros(f.ended)));
    }
    let batches = batch_times(start, &jobs);
    Ok(Run {
        start,
        last_ended: batches.last().map_or(start, |b| b.last_ended),
        batches,
    })
}

/// The driver's round that started each batch (its `now`, from the history entries
/// `batch N started: …`), in wall-clock microseconds, by batch from 0.
fn round_starts(record: &Value) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for e in record["history"].as_array().into_iter().flatten() {
        let what = e["what"].as_str().unwrap_or("");
        let Some(n) = what
            .strip_prefix("batch ")
            .and_then(|r| r.split_once(" started"))
            .and_then(|(n, _)| n.parse::<usize>().ok())
        else {
            continue;
        };
        if n == 0 {
            continue;
        }
        if out.len() < n {
            out.resize(n, None);
        }
        out[n - 1] = e["at"].as_f64().map(|ms| ms * 1000.0);
    }
    out
}

/// `n` times what `GET /api/v1/rollouts/{id}` reads from Redis, from one client.
fn bare_reads(ctx: &Ctx, id: &str, n: usize) -> Result<Samples> {
    let mut conn = ctx.inst.redis.connection()?;
    let mut samples = Samples::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let _: (Vec<Option<String>>, Vec<String>) = redis::pipe()
            .cmd("HMGET")
            .arg(redis_keys::rollout(id))
            .arg("data")
            .arg("rev")
            .cmd("LRANGE")
            .arg(redis_keys::rollout_history(id))
            .arg(-100)
            .arg(-1)
            .query(&mut conn)?;
        samples.push(t0.elapsed());
    }
    Ok(samples)
}

/// Polls the rollout (every probe pause) until it is no longer running: the record and when
/// that was seen.
async fn wait_for_end(ctx: &Ctx, path: &str) -> Result<(Value, SystemTime)> {
    let url = format!("{}{path}", ctx.inst.panel_url());
    let deadline = Instant::now() + JOB_LIMIT;
    loop {
        let r: Value = ctx
            .http
            .get(&url)
            .bearer_auth(&ctx.inst.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if !matches!(r["state"].as_str(), Some("running" | "paused")) {
            return Ok((r, SystemTime::now()));
        }
        if Instant::now() > deadline {
            bail!("the rollout is still {} after {JOB_LIMIT:?}", r["state"]);
        }
        tokio::time::sleep(PROBE_PAUSE).await;
    }
}

/// One GET after another on one keep-alive connection, [`PROBE_PAUSE`] apart, until
/// stopped: every latency and the last body's size.
struct Probe {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(Samples, usize)>>,
}

impl Probe {
    async fn start(addr: SocketAddr, request: Vec<u8>) -> Result<Self> {
        let mut conn = Conn::connect(addr).await?;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let (mut samples, mut bytes) = (Samples::new(), 0);
            while !*stopped.borrow() {
                let t0 = Instant::now();
                let resp = conn.send(&request).await?;
                samples.push(t0.elapsed());
                ensure!(
                    resp.status == 200,
                    "probe answered {}: {}",
                    resp.status,
                    String::from_utf8_lossy(&resp.body)
                );
                bytes = resp.body.len();
                let _ = tokio::time::timeout(PROBE_PAUSE, stopped.changed()).await;
            }
            Ok((samples, bytes))
        });
        Ok(Self { stop, task })
    }

    async fn stop(self) -> Result<(Samples, usize)> {
        let _ = self.stop.send(true);
        self.task.await?
    }

    async fn after(self, d: Duration) -> Result<(Samples, usize)> {
        tokio::time::sleep(d).await;
        self.stop().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_gaps_run_from_the_previous_batch_last_end() {
        let jobs = [
            (0, 10.0, 20.0),
            (0, 12.0, 25.0),
            (1, 40.0, 45.0),
            (1, 41.0, 50.0),
        ];
        let b = batch_times(5.0, &jobs);
        assert_eq!(b.len(), 2);
        assert_eq!(
            b[0],
            BatchTimes {
                first_queued: 10.0,
                last_queued: 12.0,
                last_ended: 25.0,
                gap: 5.0
            }
        );
        assert_eq!(b[1].gap, 15.0);
        assert_eq!(b[1].last_ended, 50.0);
    }

    #[test]
    fn round_starts_come_from_the_batch_history_entries() {
        let record = json!({"history": [
            {"at": 1, "what": "created by bench: install bench-noop on 4 server(s)"},
            {"at": 2, "what": "batch 1 started: a, b"},
            {"at": 7, "what": "batch 2 started: c, d"},
            {"at": 9, "what": "succeeded on 4 server(s), 0 failed"},
        ]});
        assert_eq!(round_starts(&record), [Some(2000.0), Some(7000.0)]);
    }
}
