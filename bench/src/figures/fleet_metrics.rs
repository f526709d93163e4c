//! Figure 10: fleet metrics (issue 18). A fleet of simulated agents pushes heartbeats with
//! host metrics every 10 s through the runner's own heartbeat script (facts and a history
//! point) for a simulated day, time compressed; then Redis's memory per server, its CPU per
//! heartbeat against a plain `SET` of the same facts, the panel's CPU while the fleet beats in
//! real time against the same panel before the fleet, and the dashboard and server page under
//! load against `/healthz`. A few more agents are pushed through 30 simulated days for the
//! history's memory budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use outfitter_contract::host::{HEARTBEAT_TTL_SECS, HostFacts};
use outfitter_contract::host_metrics::{
    Disk, HostMetrics, Interface, Load, Memory, Process, Sample,
};
use outfitter_contract::metrics_history::{self, HEARTBEAT};
use outfitter_contract::redis_keys::AgentRedisKeys;

use super::scale::register_agents;
use super::{Ctx, simulated_facts};
use crate::http1;
use crate::loadgen::{self, LoadResult};
use crate::process::CpuTime;
use crate::report::{Figure, Goal, Row, verdict};
use crate::stats::{Micros, Rate, percent, thousands};

/// How often each simulated agent beats (the figure; runners beat every 5 s).
const EVERY_MS: i64 = 10_000;
/// Agents pushed through 30 simulated days for the history's memory budget.
const MONTH_AGENTS: usize = 2;
const MONTH_DAYS: i64 = 30;
/// The history's budget per server for 30 days (issue 18 item 2).
const BUDGET_BYTES: f64 = 200.0 * 1024.0;
/// Heartbeat calls per pipeline.
const BATCH: usize = 500;
/// Client threads writing heartbeats (Redis runs the scripts on its one thread).
const WRITERS: usize = 2;
/// Agents whose keys are measured one by one with `MEMORY USAGE`.
const MEASURED: usize = 50;

/// A server as a runner on a small web host reports it: two disks, two interfaces, five
/// processes in each top list.
fn metrics() -> HostMetrics {
    let process = |i: u32| Process {
        pid: 1000 + i,
        name: format!("worker-{i}"),
        cpu_pct: 3.5 * f64::from(i),
        rss_mb: 40 * u64::from(i),
    };
    HostMetrics {
        cpu_pct: 23.5,
        load: Load {
            one: 0.42,
            five: 0.37,
            fifteen: 0.31,
        },
        memory: Memory {
            total_mb: 3_900,
            used_mb: 1_800,
            free_mb: 700,
            available_mb: 2_000,
            cached_mb: 1_100,
            swap_total_mb: 1_000,
            swap_used_mb: 50,
        },
        disks: ["/", "/var/lib"]
            .iter()
            .map(|m| Disk {
                mount: (*m).into(),
                total_mb: 80_000,
                used_mb: 31_000,
                free_mb: 49_000,
                read_bytes_per_s: 12_000.0,
                write_bytes_per_s: 48_000.0,
            })
            .collect(),
        networks: ["eth0", "wg0"]
            .iter()
            .map(|n| Interface {
                name: (*n).into(),
                rx_bytes_per_s: 95_000.0,
                tx_bytes_per_s: 31_000.0,
                rx_packets_per_s: 120.0,
                tx_packets_per_s: 90.0,
            })
            .collect(),
        processes: 131,
        top_cpu: (1..=5).map(process).collect(),
        top_memory: (1..=5).rev().map(process).collect(),
        collect_cpu_us: 1_700,
        ..HostMetrics::default()
    }
}

/// One agent's facts as JSON around its `ts` (spliced in per beat, so the bench's own CPU
/// goes to Redis, not to serialising).
struct FactsTemplate {
    before_ts: String,
    after_ts: String,
}

impl FactsTemplate {
    fn new(agent_id: &str) -> Result<Self> {
        let facts = HostFacts {
            ts: 0,
            metrics: Some(metrics()),
            ..simulated_facts(agent_id)
        };
        let json = serde_json::to_string(&facts)?;
        let at = json.find("\"ts\":0").context("facts JSON without ts")? + "\"ts\":".len();
        Ok(Self {
            before_ts: json[..at].to_owned(),
            after_ts: json[at + 1..].to_owned(),
        })
    }

    fn at(&self, ts: i64) -> String {
        format!("{}{ts}{}", self.before_ts, self.after_ts)
    }
}

/// The history point of agent `i` at `ts`: a day's curve plus a per-agent phase, so the
/// averages are real averages.
pub(crate) fn sample(i: usize, ts: i64) -> Sample {
    let day = (ts % 86_400_000) as f64 / 86_400_000.0 * std::f64::consts::TAU;
    let wave = (day + i as f64 * 0.37).sin();
    Sample {
        cpu_pct: 30.0 + 25.0 * wave,
        load1: 0.6 + 0.4 * wave,
        memory_pct: 55.0 + 10.0 * wave,
        swap_pct: 5.0,
        disk_pct: 38.0 + (ts % 3_600_000) as f64 / 3_600_000.0,
        disk_read_bps: 12_000.0 + 8_000.0 * wave,
        disk_write_bps: 48_000.0 + 20_000.0 * wave,
        net_rx_bps: 95_000.0 + 60_000.0 * wave,
        net_tx_bps: 31_000.0 + 20_000.0 * wave,
    }
}

/// One fleet's agents, their key names and facts.
struct Fleet {
    ids: Vec<String>,
    keys: Vec<AgentRedisKeys>,
    facts: Vec<FactsTemplate>,
}

impl Fleet {
    fn new(ids: Vec<String>) -> Result<Self> {
        Ok(Self {
            keys: ids.iter().map(|id| AgentRedisKeys::new(id)).collect(),
            facts: ids
                .iter()
                .map(|id| FactsTemplate::new(id))
                .collect::<Result<_>>()?,
            ids,
        })
    }
}

/// Beats every agent of `fleet` whose index is `writer` modulo [`WRITERS`], at each `ts` of
/// `times`, [`BATCH`] scripts per pipeline. The heartbeat script's answer is checked: a
/// refused sample is an error of the bench, not a figure.
fn beat(
    conn: &mut redis::Connection,
    sha: &str,
    fleet: &Fleet,
    writer: usize,
    times: &[i64],
) -> Result<u64> {
    let mut pipe = redis::pipe();
    let (mut queued, mut stored) = (0, 0u64);
    let mut flush = |pipe: &mut redis::Pipeline, queued: &mut usize| -> Result<()> {
        let replies: Vec<i64> = pipe.query(conn)?;
        stored += replies.iter().filter(|r| **r == 1).count() as u64;
        pipe.clear();
        *queued = 0;
        Ok(())
    };
    for &ts in times {
        for i in (writer..fleet.ids.len()).step_by(WRITERS) {
            let s = sample(i, ts);
            let call = metrics_history::heartbeat(
                &fleet.keys[i],
                &fleet.facts[i].at(ts),
                HEARTBEAT_TTL_SECS,
                Some((ts, &s)),
            );
            pipe.cmd("EVALSHA")
                .arg(sha)
                .arg(call.keys.len())
                .arg(&call.keys)
                .arg(&call.args);
            queued += 1;
            if queued == BATCH {
                flush(&mut pipe, &mut queued)?;
            }
        }
    }
    if queued > 0 {
        flush(&mut pipe, &mut queued)?;
    }
    Ok(stored)
}

/// [`beat`] over [`WRITERS`] threads; the samples stored.
fn beat_all(client: &redis::Client, sha: &str, fleet: &Arc<Fleet>, times: &[i64]) -> Result<u64> {
    let times: Arc<[i64]> = times.into();
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (fleet, times, sha) = (fleet.clone(), times.clone(), sha.to_owned());
            let mut conn = client.get_connection();
            std::thread::spawn(move || -> Result<u64> {
                let conn = conn.as_mut().map_err(|e| anyhow::anyhow!("{e}"))?;
                beat(conn, &sha, &fleet, w, &times)
            })
        })
        .collect();
    let mut stored = 0;
    for t in threads {
        stored += t
            .join()
            .map_err(|_| anyhow::anyhow!("a writer panicked"))??;
    }
    Ok(stored)
}

/// The same facts as plain `SET … EX`, `rounds` times over the fleet: the baseline of a
/// heartbeat that keeps no history.
fn plain_sets(client: &redis::Client, fleet: &Fleet, rounds: usize, now: i64) -> Result<()> {
    let mut conn = client.get_connection()?;
    let mut pipe = redis::pipe();
    let mut queued = 0;
    for r in 0..rounds {
        for i in 0..fleet.ids.len() {
            pipe.cmd("SET")
                .arg(fleet.keys[i].heartbeat())
                .arg(fleet.facts[i].at(now + r as i64))
                .arg("EX")
                .arg(HEARTBEAT_TTL_SECS)
                .ignore();
            queued += 1;
            if queued == BATCH {
                pipe.query::<()>(&mut conn)?;
                pipe.clear();
                queued = 0;
            }
        }
    }
    // Redis refuses an empty pipeline.
    if queued > 0 {
        pipe.query::<()>(&mut conn)?;
    }
    Ok(())
}

/// Bytes of every key of one agent's history and its heartbeat (`MEMORY USAGE … SAMPLES 0`,
/// which counts every stream node).
fn bytes_of(conn: &mut redis::Connection, keys: &AgentRedisKeys) -> Result<(u64, u64)> {
    let mut history = 0;
    for key in metrics_history::keys(keys) {
        let b: Option<u64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .query(conn)?;
        history += b.unwrap_or(0);
    }
    let facts: Option<u64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(keys.heartbeat())
        .query(conn)?;
    Ok((history, facts.unwrap_or(0)))
}

/// Mean (history, heartbeat) bytes over the first `n` agents of `fleet`.
fn mean_bytes(client: &redis::Client, fleet: &Fleet, n: usize) -> Result<(f64, f64)> {
    let mut conn = client.get_connection()?;
    let n = n.min(fleet.ids.len()).max(1);
    let (mut h, mut f) = (0, 0);
    for keys in fleet.keys.iter().take(n) {
        let (history, facts) = bytes_of(&mut conn, keys)?;
        h += history;
        f += facts;
    }
    Ok((h as f64 / n as f64, f as f64 / n as f64))
}

/// The fleet beating in real time, every [`EVERY_MS`], until stopped.
struct LiveFleet {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<()>>,
}

impl LiveFleet {
    fn start(client: &redis::Client, sha: String, fleet: Arc<Fleet>) -> Result<Self> {
        let mut conn = client.get_connection()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let round = Instant::now();
                let now = outfitter_contract::clock::now_ms();
                for w in 0..WRITERS {
                    beat(&mut conn, &sha, &fleet, w, &[now])?;
                }
                let every = Duration::from_millis(EVERY_MS as u64);
                while round.elapsed() < every && !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Ok(())
        });
        Ok(Self { stop, thread })
    }

    fn stop(self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the live fleet panicked"))?
    }
}

/// CPU of `pid` over `window`, as a share of one core (percent).
async fn cpu_share(pid: u32, window: Duration) -> Result<f64> {
    let before = CpuTime::of(pid)?;
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let used = CpuTime::of(pid)?.since(before).own;
    Ok(used.as_secs_f64() * 100.0 / t0.elapsed().as_secs_f64())
}

fn load_row(name: &str, r: &LoadResult, healthz: f64) -> Row {
    Row::new(
        format!("{name} ({} bytes)", r.body_bytes),
        format!(
            "{} — p50 {} / p99 {}{}",
            Rate(r.rate()),
            Micros(r.latency.p50),
            Micros(r.latency.p99),
            if r.errors > 0 {
                format!("; {} errors", r.errors)
            } else {
                String::new()
            }
        ),
    )
    .against(
        format!("`GET /healthz` {}", Rate(healthz)),
        percent(r.rate(), healthz),
    )
}

pub(crate) async fn measure(ctx: &mut Ctx) -> Result<Figure> {
    let count = ctx.plan.agents;
    let hours = ctx.plan.fleet_hours;
    let live_window = ctx.plan.fleet_live;
    let client = ctx.inst.redis.client()?;
    let panel_pid = ctx.inst.panel_pid()?;
    let redis_pid = ctx.inst.redis.pid();
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(HEARTBEAT)
        .query(&mut ctx.inst.redis.connection()?)?;

    // The panel before the fleet: its background loops over the agents it has.
    let panel_idle = cpu_share(panel_pid, live_window).await?;

    let ids: Vec<String> = (1..=count).map(|i| format!("fleet-{i:04}")).collect();
    let month_ids: Vec<String> = (1..=MONTH_AGENTS)
        .map(|i| format!("fleet-month-{i}"))
        .collect();
    let token = ctx.inst.token.clone();
    register_agents(ctx, &[&ids[..], &month_ids[..]].concat())
        .await
        .context("registering the fleet")?;
    let fleet = Arc::new(Fleet::new(ids)?);
    let month = Arc::new(Fleet::new(month_ids)?);

    // A simulated day (or the quick run's hours), every 10 s, ending now.
    let redis_before = ctx.inst.redis.used_memory()?;
    let now = outfitter_contract::clock::now_ms();
    let steps = hours * 3_600_000 / EVERY_MS;
    let times: Vec<i64> = (0..steps)
        .map(|k| now - (steps - 1 - k) * EVERY_MS)
        .collect();
    let (cpu0, t0) = (CpuTime::of(redis_pid)?, Instant::now());
    let panel0 = CpuTime::of(panel_pid)?;
    let stored = {
        let (client, sha, fleet, times) = (client.clone(), sha.clone(), fleet.clone(), times);
        tokio::task::spawn_blocking(move || beat_all(&client, &sha, &fleet, &times)).await??
    };
    let ingest_wall = t0.elapsed();
    eprintln!(
        "outfitter-bench: fleet metrics: {} heartbeats with history in {:.1} s",
        steps * count as i64,
        ingest_wall.as_secs_f64()
    );
    let ingest_redis = CpuTime::of(redis_pid)?.since(cpu0).own;
    let ingest_panel = CpuTime::of(panel_pid)?.since(panel0).own;
    let beats = steps as u64 * count as u64;
    ensure!(stored == beats, "{stored} of {beats} history points stored");
    let redis_after = ctx.inst.redis.used_memory()?;
    let per_beat_us = ingest_redis.as_secs_f64() * 1e6 / beats as f64;

    // Baseline: the same facts as a plain SET (no history), an hour's worth of rounds.
    let rounds = (3_600_000 / EVERY_MS) as usize;
    let (cpu0, t0) = (CpuTime::of(redis_pid)?, Instant::now());
    {
        let (client, fleet) = (client.clone(), fleet.clone());
        tokio::task::spawn_blocking(move || plain_sets(&client, &fleet, rounds, now)).await??;
    }
    let set_wall = t0.elapsed();
    let sets = (rounds * count) as u64;
    let per_set_us = CpuTime::of(redis_pid)?.since(cpu0).own.as_secs_f64() * 1e6 / sets as f64;

    // 30 simulated days for a few agents: the history at its largest.
    let month_steps = MONTH_DAYS * 86_400_000 / EVERY_MS;
    let month_times: Vec<i64> = (0..month_steps)
        .map(|k| now - (month_steps - 1 - k) * EVERY_MS)
        .collect();
    {
        let (client, sha, month) = (client.clone(), sha.clone(), month.clone());
        tokio::task::spawn_blocking(move || beat_all(&client, &sha, &month, &month_times))
            .await??;
    }
    let (day_history, _) = mean_bytes(&client, &fleet, MEASURED)?;
    let (month_history, _) = mean_bytes(&client, &month, MONTH_AGENTS)?;

    // The fleet beating in real time: the panel's CPU with it, and the pages under load.
    let live = LiveFleet::start(&client, sha.clone(), fleet.clone())?;
    // The facts of the first live round (those of the compressed day have expired by now).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, facts_bytes) = mean_bytes(&client, &fleet, MEASURED)?;
    let panel_live = cpu_share(panel_pid, live_window).await;
    let redis_live = cpu_share(redis_pid, live_window).await;
    let agent = &fleet.ids[count / 2];
    let month_agent = &month.ids[0];
    let targets = [
        ("GET /healthz".to_owned(), "/healthz".to_owned()),
        ("GET /dashboard".to_owned(), "/dashboard".to_owned()),
        (
            format!("GET /agents/{agent} (last hour)"),
            format!("/agents/{agent}"),
        ),
        (
            format!("GET /agents/{agent}?range=day"),
            format!("/agents/{agent}?range=day"),
        ),
        (
            format!("GET /agents/{month_agent}?range=month (30 days of history)"),
            format!("/agents/{month_agent}?range=month"),
        ),
    ];
    let mut loads = Vec::new();
    for (name, path) in targets {
        let r = loadgen::run(
            ctx.panel_addr(),
            http1::request("GET", &path, &token, None),
            200,
            ctx.plan.load_connections,
            ctx.plan.load_duration,
        )
        .await;
        match r {
            Ok(r) if r.ok > 0 => loads.push((name, r)),
            Ok(r) => {
                live.stop()?;
                anyhow::bail!("{name}: no good response; first error: {:?}", r.first_error);
            }
            Err(e) => {
                live.stop()?;
                return Err(e.context(name));
            }
        }
    }
    live.stop()?;
    let (panel_live, redis_live) = (panel_live?, redis_live?);
    ctx.inst.ensure_panel_running()?;

    let healthz = loads[0].1.rate();
    let budget_met = month_history <= BUDGET_BYTES;
    let fleet_delta = redis_after.saturating_sub(redis_before) as f64 / count as f64;
    let mut rows = vec![
        Row::new(
            format!(
                "ingest: {} heartbeats with history ({count} agents × {} simulated hours at {} s), wall",
                thousands(beats),
                hours,
                EVERY_MS / 1000
            ),
            format!(
                "{:.1} s — {}",
                ingest_wall.as_secs_f64(),
                Rate(beats as f64 / ingest_wall.as_secs_f64())
            ),
        )
        .against(
            format!(
                "{} plain `SET … EX` of the same facts: {:.1} s — {}",
                thousands(sets),
                set_wall.as_secs_f64(),
                Rate(sets as f64 / set_wall.as_secs_f64())
            ),
            percent(
                beats as f64 / ingest_wall.as_secs_f64(),
                sets as f64 / set_wall.as_secs_f64(),
            ),
        ),
        Row::new(
            "Redis CPU per heartbeat (script: facts + raw point + minute and hour averages)",
            format!("{per_beat_us:.1} µs"),
        )
        .against(
            format!("plain `SET … EX`: {per_set_us:.1} µs"),
            format!("{:.1}×", per_beat_us / per_set_us.max(0.001)),
        ),
        Row::new(
            format!(
                "Redis CPU for {count} agents beating every {} s (share of one core)",
                EVERY_MS / 1000
            ),
            format!(
                "{:.2} % computed from the ingest; {redis_live:.2} % measured live (pages under load included)",
                per_beat_us * count as f64 / (EVERY_MS as f64 * 10.0)
            ),
        ),
        Row::new(
            format!("panel CPU with {count} agents beating (share of one core, {:.0} s)", live_window.as_secs_f64()),
            format!("{panel_live:.2} % (during the compressed ingest: {:.2} %)", ingest_panel.as_secs_f64() * 100.0 / ingest_wall.as_secs_f64()),
        )
        .against(
            format!("the same panel before the fleet: {panel_idle:.2} %"),
            format!("+{:.2} points", panel_live - panel_idle),
        ),
        Row::new(
            format!("Redis memory per server after {hours} simulated hours: history (mean of {MEASURED})"),
            format!("{:.1} KiB (+ heartbeat facts {:.1} KiB)", day_history / 1024.0, facts_bytes / 1024.0),
        )
        .against(
            format!("`used_memory` growth per agent: {:.1} KiB", fleet_delta / 1024.0),
            "—",
        ),
        Row::new(
            format!("history per server after {MONTH_DAYS} simulated days (mean of {MONTH_AGENTS})"),
            format!("{:.1} KiB", month_history / 1024.0),
        )
        .against(
            format!("budget {:.0} KiB", BUDGET_BYTES / 1024.0),
            format!("{:.2}×", month_history / BUDGET_BYTES),
        ),
    ];
    rows.push(Row::new(
        format!("GET /healthz ({} bytes)", loads[0].1.body_bytes),
        format!(
            "{} — p50 {} / p99 {}",
            Rate(healthz),
            Micros(loads[0].1.latency.p50),
            Micros(loads[0].1.latency.p99)
        ),
    ));
    rows.extend(
        loads
            .iter()
            .skip(1)
            .map(|(name, r)| load_row(name, r, healthz)),
    );
    let dash_p99 = loads[1].1.latency.p99;
    let page_p99 = loads[2].1.latency.p99;
    Ok(Figure {
        number: 10,
        title: "Fleet metrics (issue 18)".into(),
        method: format!(
            "{count} agents registered with `POST /api/v1/agents`, plus {MONTH_AGENTS} for the month. \
             Each simulated agent beats every {} s through the runner's own heartbeat script \
             (`contract/lua/heartbeat.lua`, `EVALSHA`, {BATCH} per pipeline over {WRITERS} connections): \
             host facts with metrics (two disks, two interfaces, five processes in each top list; {:.1} KiB \
             in Redis) and a history point whose values follow a daily curve. The history of {hours} \
             simulated hours ending now is written as fast as Redis takes it (time compressed), Redis's \
             CPU read from `/proc/<pid>/stat` around it; baseline: an hour's worth of plain `SET … EX` of \
             the same facts. The {MONTH_AGENTS} month agents get {MONTH_DAYS} simulated days the same way. \
             Memory: `MEMORY USAGE … SAMPLES 0` of every history key. Then the fleet beats in real time \
             every {} s while the panel's CPU is read over {:.0} s (against the same window before the \
             fleet was registered) and the dashboard and server pages are loaded by the bench's closed \
             loop ({} connections, {:.0} s each, bearer token), against `/healthz` in the same run. The \
             runner's own cost of collecting is figure 9.",
            EVERY_MS / 1000,
            facts_bytes / 1024.0,
            EVERY_MS / 1000,
            live_window.as_secs_f64(),
            ctx.plan.load_connections,
            ctx.plan.load_duration.as_secs_f64(),
        ),
        rows,
        goals: vec![Goal {
            text: format!(
                "a server's history for {MONTH_DAYS} days stays within {:.0} KiB",
                BUDGET_BYTES / 1024.0
            ),
            measured: format!("{:.1} KiB", month_history / 1024.0),
            met: budget_met,
        }],
        tables: vec![],
        summary: format!(
            "10. Fleet metrics ({count} agents): {per_beat_us:.1} µs Redis CPU per heartbeat (plain SET {per_set_us:.1} µs); \
             history {:.1} KiB/server after {hours} h, {:.1} KiB after {MONTH_DAYS} days (budget {:.0} KiB: {}); \
             panel {panel_live:.2} % of a core (before {panel_idle:.2} %); dashboard p99 {}, server page p99 {}",
            day_history / 1024.0,
            month_history / 1024.0,
            BUDGET_BYTES / 1024.0,
            verdict(budget_met),
            Micros(dash_p99),
            Micros(page_p99),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_facts_template_is_the_facts_at_each_time() {
        let t = FactsTemplate::new("fleet-0001").unwrap();
        let facts: HostFacts = serde_json::from_str(&t.at(1_767_225_600_123)).unwrap();
        assert_eq!(facts.ts, 1_767_225_600_123);
        assert_eq!(facts.agent_id, "fleet-0001");
        assert_eq!(facts.metrics.unwrap().top_cpu.len(), 5);
    }

    #[test]
    fn samples_follow_the_day_and_stay_in_range() {
        let values: Vec<Sample> = (0..8640).map(|k| sample(7, k * EVERY_MS)).collect();
        assert!(values.iter().all(|s| (0.0..=100.0).contains(&s.cpu_pct)));
        let (lo, hi) = values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), s| {
            (lo.min(s.cpu_pct), hi.max(s.cpu_pct))
        });
        assert!(hi - lo > 40.0, "a daily curve, not a constant: {lo}..{hi}");
    }
}
