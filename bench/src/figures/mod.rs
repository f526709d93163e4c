//! The thirteen figures. Each takes the running installation, measures, and returns a
//! [`Figure`](crate::report::Figure) with its baselines.

pub(crate) mod big_logs;
pub(crate) mod cluster;
pub(crate) mod collector;
pub(crate) mod discovery;
pub(crate) mod dispatch;
pub(crate) mod fleet_metrics;
pub(crate) mod footprint;
pub(crate) mod panel_load;
pub(crate) mod progress;
pub(crate) mod rollouts;
pub(crate) mod scale;
pub(crate) mod throughput;
pub(crate) mod webhooks;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use outfitter_contract::host::HostFacts;
use outfitter_contract::redis_keys::AgentRedisKeys;
use serde_json::json;

use crate::bundles::Bundles;
use crate::http1::{self, Conn};
use crate::installation::Installation;

/// How much each figure does: the full run (under ten minutes) or `--quick` (about one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub quick: bool,
    /// Sequential jobs for dispatch latency (and bare spawns/hand-offs for its baseline).
    pub dispatch_jobs: usize,
    /// Jobs per throughput configuration.
    pub throughput_jobs: usize,
    /// Lines the progress job prints.
    pub progress_lines: u64,
    /// Timestamped lines for the one-line delay.
    pub ticks: u64,
    /// Duration of each load-generator run.
    pub load_duration: Duration,
    /// Connections of the load generator.
    pub load_connections: usize,
    /// Apps in the panel's catalog.
    pub apps: usize,
    /// Simulated agents, and queued jobs per agent.
    pub agents: usize,
    pub jobs_per_agent: usize,
    /// Webhook deliveries queued at once.
    pub webhook_deliveries: usize,
    /// Servers of the rollout (and of each of its two baselines), and its batch size.
    pub rollout_agents: usize,
    pub rollout_batch: usize,
    /// Simulated hours of history the fleet-metrics figure writes for each agent, and how
    /// long it watches the panel while the fleet beats in real time.
    pub fleet_hours: i64,
    pub fleet_live: Duration,
    /// Profile the runner with `perf` (when it works here).
    pub profile: bool,
}

impl Plan {
    pub(crate) fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                dispatch_jobs: 100,
                throughput_jobs: 300,
                progress_lines: 20_000,
                ticks: 50,
                load_duration: Duration::from_secs(2),
                load_connections: 16,
                apps: 1000,
                agents: 1000,
                jobs_per_agent: 1,
                webhook_deliveries: 2_000,
                rollout_agents: 200,
                rollout_batch: 20,
                fleet_hours: 2,
                fleet_live: Duration::from_secs(20),
                profile: false,
            }
        } else {
            Self {
                quick,
                dispatch_jobs: 500,
                throughput_jobs: 1000,
                progress_lines: 100_000,
                ticks: 200,
                load_duration: Duration::from_secs(6),
                load_connections: 16,
                apps: 1000,
                agents: 1000,
                jobs_per_agent: 5,
                webhook_deliveries: 10_000,
                rollout_agents: 1000,
                rollout_batch: 100,
                fleet_hours: 24,
                fleet_live: Duration::from_secs(60),
                profile: crate::profile::available(),
            }
        }
    }
}

/// What every figure works with.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub inst: Installation,
    pub bundles: Bundles,
    pub plan: Plan,
    pub http: reqwest::Client,
    /// The run's temporary directory (logs, profiles).
    pub work_dir: std::path::PathBuf,
}

impl Ctx {
    pub(crate) fn panel_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.inst.panel_port()))
    }

    /// The request bytes of `POST /api/v1/jobs` for `app_id` on `agent_id`, no inputs.
    pub(crate) fn create_job_request(&self, app_id: &str, agent_id: &str) -> Vec<u8> {
        let body = json!({"app_id": app_id, "agent_id": agent_id, "inputs": {}}).to_string();
        http1::request("POST", "/api/v1/jobs", &self.inst.token, Some(&body))
    }

    /// A new keep-alive connection to the panel.
    pub(crate) async fn panel_conn(&self) -> Result<Conn> {
        Conn::connect(self.panel_addr()).await
    }
}

/// Sends a prepared `POST /api/v1/jobs`; the new job's id (202 required).
pub(crate) async fn create_job(conn: &mut Conn, request: &[u8]) -> Result<String> {
    let resp = conn.send(request).await?;
    ensure!(
        resp.status == 202,
        "POST /api/v1/jobs answered {}: {}",
        resp.status,
        String::from_utf8_lossy(&resp.body)
    );
    Ok(resp.json()?["id"]
        .as_str()
        .context("the new job has no id")?
        .to_owned())
}

/// Host facts as a runner on this kind of machine would report them; `ts` is now.
pub(crate) fn simulated_facts(agent_id: &str) -> HostFacts {
    HostFacts {
        agent_id: agent_id.to_owned(),
        os_family: "debian".into(),
        os_like: vec![],
        os_version: "12".into(),
        os_pretty: "Debian GNU/Linux 12 (bookworm)".into(),
        arch: "x86_64".into(),
        cpus: 2,
        ram_mb: 24_000,
        disk_free_mb: 100_000,
        load1: 0.1,
        runner_version: "simulated".into(),
        ts: outfitter_contract::clock::now_ms(),
        running_jobs: vec![],
        runner: None,
        metrics: None,
    }
}

/// Writes one heartbeat for each agent in one pipelined round trip, with the runner's TTL.
pub(crate) fn write_heartbeats(
    conn: &mut redis::Connection,
    agent_ids: &[String],
    ttl_secs: u64,
) -> Result<()> {
    let mut pipe = redis::pipe();
    for id in agent_ids {
        let facts = serde_json::to_string(&simulated_facts(id))?;
        pipe.cmd("SET")
            .arg(AgentRedisKeys::new(id).heartbeat())
            .arg(facts)
            .arg("EX")
            .arg(ttl_secs)
            .ignore();
    }
    pipe.query::<()>(conn)?;
    Ok(())
}

/// Registers `agent_id` with `agent add` and gives it a heartbeat that outlives the run, with
/// no runner behind it: jobs for it stay queued.
pub(crate) fn register_simulated_agent(ctx: &mut Ctx, agent_id: &str) -> Result<()> {
    ctx.inst.add_agent(agent_id)?;
    write_heartbeats(
        &mut ctx.inst.redis.connection()?,
        &[agent_id.to_owned()],
        3600,
    )
}
