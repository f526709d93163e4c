//! Figure 11: one Redis against a Redis Cluster (issue 15). The same release panel, fresh, on
//! each: a private redis-server, and a private cluster of three masters with a replica each
//! (all on this machine's two cores). On each, 1,000 agents registered through the API, then
//! for a fixed time: heartbeats through the runner's own heartbeat script over the programs'
//! own connection type (`outfitter-redis`, cluster-aware: each pipeline cut by slot), jobs
//! queued through `POST /api/v1/jobs`, and `GET /agents` timed with the fleet in Redis.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use outfitter_contract::host::{HEARTBEAT_INTERVAL_SECS, HEARTBEAT_TTL_SECS};
use outfitter_contract::metrics_history;
use outfitter_contract::redis_keys::AgentRedisKeys;
use outfitter_contract::redis_tls::RedisTls;
use outfitter_redis::{RedisConn, RedisTarget, Timeouts};
use outfitter_test_support::{Persistence, RedisCluster, RedisServer};
use serde_json::json;

use super::{Ctx, fleet_metrics, simulated_facts};
use crate::bundles::NOOP;
use crate::http1::{self, Conn};
use crate::installation::{clean_env, printed_token, serve_panel};
use crate::process::Daemon;
use crate::report::{Figure, Row};
use crate::stats::{Micros, Samples, factor};

/// Agents on each side.
const AGENTS: usize = 1000;
/// Concurrent heartbeat writers, and scripts per pipeline.
const WRITERS: usize = 8;
const BATCH: usize = 50;
/// Concurrent API clients queueing jobs.
const CLIENTS: usize = 8;

/// What one side measured.
struct Side {
    heartbeats_per_s: f64,
    enqueues_per_s: f64,
    page: Samples,
    page_bytes: usize,
}

/// A panel serving on one Redis or one cluster, with an admin token.
struct PanelOn {
    _daemon: Daemon,
    port: u16,
    token: String,
}

pub(crate) async fn measure(ctx: &mut Ctx) -> Result<Figure> {
    let seconds = if ctx.plan.quick { 3 } else { 10 };
    let dir = ctx.work_dir.join("cluster-figure");
    let single = RedisServer::start_in(&dir.join("single"), Persistence::None)?;
    let one = side(
        ctx,
        &dir.join("single-panel"),
        &single.url(),
        false,
        seconds,
    )
    .await
    .context("on one Redis")?;
    drop(single);
    let cluster = RedisCluster::start_in(&dir.join("cluster"))?;
    let many = side(
        ctx,
        &dir.join("cluster-panel"),
        &cluster.seeds(),
        true,
        seconds,
    )
    .await
    .context("on the cluster")?;
    drop(cluster);

    let (mut one_page, mut many_page) = (one.page, many.page);
    let (p1, pc) = (one_page.summary(), many_page.summary());
    let rows = vec![
        Row::new(
            format!("heartbeats through the heartbeat script ({WRITERS} writers, {BATCH} per pipeline), cluster"),
            format!("{:.0}/s", many.heartbeats_per_s),
        )
        .against(
            format!("one Redis: {:.0}/s", one.heartbeats_per_s),
            factor(many.heartbeats_per_s, one.heartbeats_per_s),
        ),
        Row::new(
            format!("jobs queued through `POST /api/v1/jobs` ({CLIENTS} clients), cluster"),
            format!("{:.0}/s", many.enqueues_per_s),
        )
        .against(
            format!("one Redis: {:.0}/s", one.enqueues_per_s),
            factor(many.enqueues_per_s, one.enqueues_per_s),
        ),
        Row::new(
            format!(
                "agents page `GET /agents` with {AGENTS} agents, cluster (p50 / p99 of {}; {} bytes)",
                pc.n, many.page_bytes
            ),
            format!("{} / {}", Micros(pc.p50), Micros(pc.p99)),
        )
        .against(
            format!(
                "one Redis: {} / {} ({} bytes)",
                Micros(p1.p50),
                Micros(p1.p99),
                one.page_bytes
            ),
            factor(pc.p99, p1.p99),
        ),
    ];
    let summary = format!(
        "11. Cluster ({AGENTS} agents): heartbeats {:.0}/s vs {:.0}/s on one Redis, enqueues {:.0}/s vs {:.0}/s, agents page p99 {} vs {}",
        many.heartbeats_per_s,
        one.heartbeats_per_s,
        many.enqueues_per_s,
        one.enqueues_per_s,
        Micros(pc.p99),
        Micros(p1.p99)
    );
    Ok(Figure {
        number: 11,
        title: "Redis Cluster against one Redis".into(),
        method: format!(
            "The release panel, fresh, on a private redis-server and then on a private Redis Cluster \
             (3 masters, 3 replicas, `redis-cli --cluster create`), all on this machine. On each, {AGENTS} \
             agents registered with `POST /api/v1/agents`; then {seconds} s of heartbeats through the \
             runner's heartbeat script (`EVALSHA` of `contract/lua/heartbeat.lua` with a metrics sample, \
             {WRITERS} writers, {BATCH} agents per pipeline, over `outfitter-redis`, which cuts a pipeline \
             by slot on a cluster), {seconds} s of `POST /api/v1/jobs` (`bench-noop`, agents in turn, \
             {CLIENTS} keep-alive clients; no runner takes them), and `GET /agents` timed one after \
             another. The baseline is the same on one Redis. Six redis-servers share the two cores with \
             the panel and the bench, so the cluster's figures show its cost here, not its capacity \
             across machines."
        ),
        rows,
        goals: Vec::new(),
        tables: Vec::new(),
        summary,
    })
}

/// Starts a panel on `redis_url`, registers the agents and measures.
async fn side(
    ctx: &Ctx,
    dir: &std::path::Path,
    redis_url: &str,
    cluster: bool,
    seconds: u64,
) -> Result<Side> {
    std::fs::create_dir_all(dir)?;
    let panel = PanelOn::start(ctx, dir, redis_url, cluster).await?;
    let ids: Vec<String> = (1..=AGENTS).map(|i| format!("cl-{i:04}")).collect();
    let register: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| {
            http1::request(
                "POST",
                "/api/v1/agents",
                &panel.token,
                Some(&json!({"id": id}).to_string()),
            )
        })
        .collect();
    super::scale::in_parallel_at(([127, 0, 0, 1], panel.port).into(), register, 201).await?;

    let target = RedisTarget::new(redis_url, cluster, &RedisTls::default())?;
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        response: Some(Duration::from_secs(30)),
    };
    let mut conn = target.connect_plain(timeouts).await?;
    let mut load = redis::cmd("SCRIPT");
    load.arg("LOAD").arg(metrics_history::HEARTBEAT);
    let sha: String = match conn.on_every_node(load).await? {
        redis::Value::BulkString(b) => String::from_utf8(b)?,
        redis::Value::SimpleString(s) => s,
        other => anyhow::bail!("SCRIPT LOAD answered {other:?}"),
    };
    let heartbeats_per_s = beat_for(&conn, &sha, &ids, Duration::from_secs(seconds)).await?;
    let enqueues_per_s = enqueue_for(&panel, &ids, Duration::from_secs(seconds)).await?;

    let mut http = Conn::connect(([127, 0, 0, 1], panel.port).into()).await?;
    let request = http1::request("GET", "/agents", &panel.token, None);
    let (mut page, mut page_bytes) = (Samples::new(), 0);
    for _ in 0..if ctx.plan.quick { 10 } else { 40 } {
        let t0 = Instant::now();
        let resp = http.send(&request).await?;
        page.push(t0.elapsed());
        ensure!(resp.status == 200, "GET /agents: {}", resp.status);
        page_bytes = resp.body.len();
    }
    Ok(Side {
        heartbeats_per_s,
        enqueues_per_s,
        page,
        page_bytes,
    })
}

impl PanelOn {
    async fn start(
        ctx: &Ctx,
        dir: &std::path::Path,
        redis_url: &str,
        cluster: bool,
    ) -> Result<Self> {
        let command = || {
            let mut cmd = Command::new(&ctx.inst.bins().panel);
            clean_env(&mut cmd);
            cmd.env("OUTFITTER_REDIS_URL", redis_url)
                .env("OUTFITTER_REDIS_CLUSTER", cluster.to_string())
                .env("OUTFITTER_SECRET_FILE", dir.join("panel.secret"))
                .env("OUTFITTER_INSTALLERS", ctx.inst.panel_catalog());
            cmd
        };
        let mut add = command();
        add.args(["token", "add", "--name", "bench", "--role", "admin"]);
        let out = add.output().context("outfitter-panel token add")?;
        ensure!(
            out.status.success(),
            "token add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = printed_token(&String::from_utf8(out.stdout)?)?;
        let (daemon, port) = serve_panel(command(), dir).await?;
        Ok(Self {
            _daemon: daemon,
            port,
            token,
        })
    }
}

/// Heartbeats with a sample for every agent in turn, for `length`; heartbeats per second.
async fn beat_for(conn: &RedisConn, sha: &str, ids: &[String], length: Duration) -> Result<f64> {
    let keys: Arc<Vec<(AgentRedisKeys, String)>> = Arc::new(
        ids.iter()
            .map(|id| {
                Ok((
                    AgentRedisKeys::new(id),
                    serde_json::to_string(&simulated_facts(id))?,
                ))
            })
            .collect::<Result<_>>()?,
    );
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (mut conn, keys, done, sha) =
            (conn.clone(), keys.clone(), done.clone(), sha.to_owned());
        tasks.push(tokio::spawn(async move {
            // Each round is the next heartbeat interval of every agent of this writer.
            let mut ts = outfitter_contract::clock::now_ms();
            let mine: Vec<usize> = (w..keys.len()).step_by(WRITERS).collect();
            while started.elapsed() < length {
                ts += HEARTBEAT_INTERVAL_SECS as i64 * 1000;
                for chunk in mine.chunks(BATCH) {
                    let mut pipe = redis::pipe();
                    for &i in chunk {
                        let sample = fleet_metrics::sample(i, ts);
                        let call = metrics_history::heartbeat(
                            &keys[i].0,
                            &keys[i].1,
                            HEARTBEAT_TTL_SECS,
                            Some((ts, &sample)),
                        );
                        pipe.cmd("EVALSHA")
                            .arg(&sha)
                            .arg(call.keys.len())
                            .arg(&call.keys)
                            .arg(&call.args);
                    }
                    let _: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
                    done.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// `POST /api/v1/jobs` for the agents in turn over [`CLIENTS`] connections, for `length`;
/// jobs queued per second.
async fn enqueue_for(panel: &PanelOn, ids: &[String], length: Duration) -> Result<f64> {
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        ids.iter()
            .map(|id| {
                let body = json!({"app_id": NOOP, "agent_id": id, "inputs": {}}).to_string();
                http1::request("POST", "/api/v1/jobs", &panel.token, Some(&body))
            })
            .collect(),
    );
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut conn = Conn::connect(([127, 0, 0, 1], panel.port).into()).await?;
        let (requests, done) = (requests.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while started.elapsed() < length {
                super::create_job(&mut conn, &requests[i % requests.len()]).await?;
                done.fetch_add(1, Ordering::Relaxed);
                i += CLIENTS;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}
