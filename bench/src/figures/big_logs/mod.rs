//! Figure 13: big logs. A finished job with 200 MB of output (40 MB in `--quick`): its plain
//! log (`GET /api/v1/jobs/{id}/log`) read whole by one client and by six at once, and its job
//! page (`GET /jobs/{id}`) six at once, while the panel's resident memory is sampled and
//! `/healthz` is probed on a connection of its own. Baseline: the same stream read straight
//! from Redis in the panel's page size.
//!
//! The job is a real one (`POST /api/v1/jobs` for an agent with a heartbeat and no runner);
//! the bench then plays its runner with the contract's own scripts, as `sim_runner` does:
//! `LMOVE` queue → processing, the `running` event, the output in batches of the runner's
//! event writer (`APPEND_EVENTS`, 512 events a call, pipelined), and the result
//! (`FINISH_ATTEMPT`, `succeeded`, exit code 0). Running a 200 MB script through a real
//! runner would measure the runner, not the log's readers.

mod stream;
mod watch;

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use outfitter_contract::redis_keys::AgentRedisKeys;
use redis::aio::MultiplexedConnection;

use stream::{play_runner, redis_read};
use watch::{
    LogRead, Prober, RssWatch, bound_kib, busiest_threads, job_pages, read_log, thread_cpu,
};

use super::{Ctx, create_job, register_simulated_agent};
use crate::bundles::NOOP;
use crate::process::{CpuTime, Memory, mib};
use crate::report::{Figure, Goal, Row, Table};
use crate::stats::{Micros, Summary, thousands};

/// The agent of the big job: a heartbeat, no runner (the bench writes its events).
const AGENT: &str = "bench-biglog";
/// Bytes of one output line with its newline.
const LINE_BYTES: usize = 100;
/// Events per `APPEND_EVENTS` call: the runner's event writer's batch
/// (`runner/src/daemon/events.rs` `BATCH`).
const WRITE_BATCH: usize = 512;
/// `APPEND_EVENTS` calls per pipelined round trip.
const WRITE_PIPELINE: usize = 16;
/// Entries per `XRANGE` of the panel's log reader (`panel/src/jobs/events.rs` `PAGE`).
const PANEL_PAGE: usize = 500;
/// Parallel readers.
const READERS: usize = 6;
/// Rounds of six parallel job-page requests.
const PAGE_ROUNDS: usize = 10;
/// Pause between two `/healthz` probes.
const PROBE_GAP: Duration = Duration::from_millis(10);
/// Last lines kept in the record, as the runner does (`runner/src/daemon/job.rs`).
const LAST_LINES: usize = 20;
/// The job page must stay under this.
const PAGE_LIMIT: usize = 1_000_000;
/// Every `/healthz` probe during the reads must answer within this (µs): the one-second
/// probe timeout load balancers commonly use (before the streamed log, probes timed out and
/// the panel answered 408).
const HEALTHZ_LIMIT_US: f64 = 1_000_000.0;
/// The RSS growth bound of the full run; `--quick` uses half its smaller log (see `bound_kib`).
const RSS_BOUND_FULL_KIB: u64 = 64 * 1024;

/// What was written into the job's stream.
#[derive(Debug, Clone, Copy)]
struct Written {
    lines: u64,
    /// Bytes of the output lines with their newlines: what the plain log must hold besides
    /// the panel's `# ` notes.
    output_bytes: u64,
    elapsed: Duration,
    /// `used_memory` of Redis grew by this much (bytes).
    redis_growth: u64,
}

pub(crate) async fn measure(ctx: &mut Ctx) -> Result<Figure> {
    let target_bytes: u64 = if ctx.plan.quick {
        40_000_000
    } else {
        200_000_000
    };
    let lines = target_bytes / LINE_BYTES as u64;
    register_simulated_agent(ctx, AGENT)?;
    let mut api = ctx.panel_conn().await?;
    let job = create_job(&mut api, &ctx.create_job_request(NOOP, AGENT)).await?;
    let client = ctx.inst.redis.client()?;
    let mut redis = client.get_multiplexed_async_connection().await?;
    let used_before = ctx.inst.redis.used_memory()?;
    let started = Instant::now();
    play_runner(&mut redis, &job, lines).await?;
    let written = Written {
        lines,
        output_bytes: lines * LINE_BYTES as u64,
        elapsed: started.elapsed(),
        redis_growth: ctx.inst.redis.used_memory()?.saturating_sub(used_before),
    };
    let outcome = measure_reads(ctx, &mut redis, &job, written).await;
    // The stream is most of Redis's memory now: it goes whether or not the reads worked, so
    // that the figures after this one find the Redis they would have found without it.
    let events_key = AgentRedisKeys::new(AGENT).job_events(&job);
    let _: i64 = redis::cmd("UNLINK")
        .arg(&events_key)
        .query_async(&mut redis)
        .await?;
    ctx.inst.ensure_panel_running()?;
    outcome
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn mb_per_s(bytes: u64, d: Duration) -> String {
    format!("{:.0} MB/s", bytes as f64 / 1e6 / d.as_secs_f64())
}

fn rate_of(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64()
}

fn latency(s: &Summary) -> String {
    format!(
        "p50 {} / p99 {} ({} probes)",
        Micros(s.p50),
        Micros(s.p99),
        s.n
    )
}

async fn measure_reads(
    ctx: &mut Ctx,
    redis: &mut MultiplexedConnection,
    job: &str,
    written: Written,
) -> Result<Figure> {
    let pid = ctx.inst.panel_pid()?;
    let url = format!("{}/api/v1/jobs/{job}/log", ctx.inst.panel_url());
    let token = ctx.inst.token.clone();
    let probe_time = if ctx.plan.quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(5)
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = Memory::of(pid)?;

    // /healthz with nothing else going on.
    let prober = Prober::healthz(ctx.panel_addr(), &token);
    let pinger = Prober::redis_ping(ctx.inst.redis.client()?);
    tokio::time::sleep(probe_time).await;
    let mut quiet = prober.finish()?;
    let quiet_s = quiet.latency.summary();
    let quiet_ping = pinger.finish()?.latency.summary();

    // Baseline: the stream read straight from Redis, one reader.
    let (redis_bytes, redis_time) = redis_read(redis, job).await?;
    ensure!(
        redis_bytes == written.output_bytes,
        "Redis gave back {redis_bytes} bytes of output, {} were written",
        written.output_bytes
    );

    // One reader.
    let watch = RssWatch::start(pid)?;
    let one = read_log(&ctx.http, &url, &token).await?;
    let one_rss = watch.finish()?;
    ctx.inst.ensure_panel_running()?;

    // Six readers at once, /healthz probed meanwhile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let watch = RssWatch::start(pid)?;
    let prober = Prober::healthz(ctx.panel_addr(), &token);
    let pinger = Prober::redis_ping(ctx.inst.redis.client()?);
    let redis_pid = ctx.inst.redis.pid();
    let cpu_before = (
        CpuTime::of(pid)?,
        CpuTime::of(redis_pid)?,
        CpuTime::of(std::process::id())?,
    );
    let threads_before = thread_cpu(pid);
    let started = Instant::now();
    let reads =
        futures_util::future::join_all((0..READERS).map(|_| read_log(&ctx.http, &url, &token)))
            .await;
    let six_wall = started.elapsed();
    let threads = busiest_threads(&threads_before, &thread_cpu(pid), 6);
    let cpu = (
        CpuTime::of(pid)?.since(cpu_before.0).own,
        CpuTime::of(redis_pid)?.since(cpu_before.1).own,
        CpuTime::of(std::process::id())?.since(cpu_before.2).own,
    );
    let mut busy = prober.finish()?;
    let mut busy_ping = pinger.finish()?;
    let six_rss = watch.finish()?;
    ctx.inst.ensure_panel_running()?;
    let reads: Vec<LogRead> = reads.into_iter().collect::<Result<_>>()?;
    let busy_s = busy.latency.summary();
    let busy_ping_s = busy_ping.latency.summary();
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled = Memory::of(pid)?;

    // The job page, six at once.
    let watch = RssWatch::start(pid)?;
    let pages = job_pages(ctx, job).await?;
    let page_rss = watch.finish()?;
    let mut page_rounds = pages.rounds.clone();
    let page_s = page_rounds.summary();

    let six_bytes: u64 = reads.iter().map(|r| r.bytes).sum();
    let all_whole = one.whole(&written) && reads.iter().all(|r| r.whole(&written));
    let slowest = reads.iter().map(|r| r.elapsed).max().unwrap_or_default();
    let bound = bound_kib(written.output_bytes);
    let redis_rate = rate_of(redis_bytes, redis_time);
    let one_rate = rate_of(one.bytes, one.elapsed);
    let six_rate = rate_of(six_bytes, six_wall);

    let rows = vec![
        Row::new(
            "the job's output, written into its stream",
            format!(
                "{} lines of {LINE_BYTES} bytes = {} in {:.1} s; Redis `used_memory` +{}",
                thousands(written.lines),
                mb(written.output_bytes),
                written.elapsed.as_secs_f64(),
                mib(written.redis_growth / 1024)
            ),
        ),
        Row::new(
            "panel VmRSS idle, with the job stored",
            format!(
                "{} (VmHWM since start {})",
                mib(idle.rss_kib),
                mib(idle.hwm_kib)
            ),
        ),
        Row::new("`GET /healthz`, no other request", latency(&quiet_s)),
        Row::new(
            "1 × `GET /api/v1/jobs/{id}/log`, read to the end",
            format!(
                "{} in {:.2} s = {}; {} output lines{}",
                mb(one.bytes),
                one.elapsed.as_secs_f64(),
                mb_per_s(one.bytes, one.elapsed),
                thousands(one.output_lines),
                if one.whole(&written) {
                    ", whole"
                } else {
                    ", NOT whole"
                }
            ),
        )
        .against(
            format!(
                "`XRANGE` pages of {PANEL_PAGE} straight from Redis, decoded to text: {}",
                mb_per_s(redis_bytes, redis_time)
            ),
            crate::stats::percent(one_rate, redis_rate),
        ),
        Row::new("panel memory during the one read", one_rss.describe()),
        Row::new(
            format!("{READERS} × `GET /api/v1/jobs/{{id}}/log` at once, each to the end"),
            format!(
                "{} in {:.2} s wall (slowest reader {:.2} s) = {} together{}",
                mb(six_bytes),
                six_wall.as_secs_f64(),
                slowest.as_secs_f64(),
                mb_per_s(six_bytes, six_wall),
                if reads.iter().all(|r| r.whole(&written)) {
                    ", every one whole"
                } else {
                    ", NOT every one whole"
                }
            ),
        )
        .against(
            format!("one reader {}", mb_per_s(one.bytes, one.elapsed)),
            crate::stats::percent(six_rate, one_rate),
        ),
        Row::new(
            format!("panel memory during the {READERS} reads"),
            format!(
                "{}; {} one second later",
                six_rss.describe(),
                mib(settled.rss_kib)
            ),
        ),
        Row::new(
            format!("`GET /healthz` during the {READERS} reads"),
            format!(
                "{}; slowest {}; {} failed{}",
                latency(&busy_s),
                Micros(busy.slowest_us),
                busy.failures,
                busy.first_failure
                    .as_deref()
                    .map(|f| format!(" (first: {f})"))
                    .unwrap_or_default()
            ),
        )
        .against(
            format!("no load: p99 {}", Micros(quiet_s.p99)),
            crate::stats::factor(busy_s.p99, quiet_s.p99),
        ),
        Row::new(
            format!(
                "`PING` straight to Redis, on a connection of its own, during the {READERS} reads"
            ),
            format!(
                "{}; slowest {}",
                latency(&busy_ping_s),
                Micros(busy_ping.slowest_us)
            ),
        )
        .against(
            format!("no load: p99 {}", Micros(quiet_ping.p99)),
            crate::stats::factor(busy_ping_s.p99, quiet_ping.p99),
        ),
        Row::new(
            format!(
                "CPU used during the {READERS} reads ({:.2} s wall, {cores} cores)",
                six_wall.as_secs_f64()
            ),
            format!(
                "panel {:.2} s ({:.0}% of a core), redis-server {:.2} s ({:.0}%), the bench's readers and probes {:.2} s ({:.0}%)",
                cpu.0.as_secs_f64(),
                100.0 * cpu.0.as_secs_f64() / six_wall.as_secs_f64(),
                cpu.1.as_secs_f64(),
                100.0 * cpu.1.as_secs_f64() / six_wall.as_secs_f64(),
                cpu.2.as_secs_f64(),
                100.0 * cpu.2.as_secs_f64() / six_wall.as_secs_f64(),
            ),
        ),
        Row::new(
            format!("{READERS} × `GET /jobs/{{id}}` (job page) at once, {PAGE_ROUNDS} rounds"),
            format!(
                "{} bytes each; a round p50 {} / p99 {}; {:.2} s in all{}",
                thousands(pages.bytes as u64),
                Micros(page_s.p50),
                Micros(page_s.p99),
                pages.elapsed.as_secs_f64(),
                if pages.status_ok {
                    ""
                } else {
                    "; NOT every answer 200"
                }
            ),
        )
        .against(format!("the whole log {}", mb(one.bytes)), ""),
        Row::new("panel memory during the job pages", page_rss.describe()),
    ];

    let goals = vec![
        Goal {
            text: format!(
                "{READERS} parallel reads of the whole log keep the panel's RSS growth under {}",
                mib(bound)
            ),
            measured: format!(
                "+{} while {} were streamed",
                mib(six_rss.growth_kib()),
                mb(six_bytes)
            ),
            met: six_rss.growth_kib() < bound,
        },
        Goal {
            text: format!(
                "`/healthz` answers every probe during the reads, each within {}",
                Micros(HEALTHZ_LIMIT_US)
            ),
            measured: format!(
                "p99 {}, slowest {}, {} of {} probes failed",
                Micros(busy_s.p99),
                Micros(busy.slowest_us),
                busy.failures,
                busy_s.n
            ),
            met: busy.failures == 0 && busy_s.n > 0 && busy.slowest_us < HEALTHZ_LIMIT_US,
        },
        Goal {
            text: format!(
                "the job page of the {} job is small (< 1 MB) and links to the whole log",
                mb(written.output_bytes)
            ),
            measured: format!(
                "{} bytes, {}",
                thousands(pages.bytes as u64),
                if pages.links_log {
                    "links `/api/v1/jobs/{id}/log`"
                } else {
                    "no link to `/api/v1/jobs/{id}/log`"
                }
            ),
            met: pages.status_ok && pages.bytes < PAGE_LIMIT && pages.links_log,
        },
        Goal {
            text: "every read of the plain log returns the whole output".into(),
            measured: format!(
                "{} of {} reads held all {} output lines ({})",
                std::iter::once(&one)
                    .chain(&reads)
                    .filter(|r| r.whole(&written))
                    .count(),
                READERS + 1,
                thousands(written.lines),
                mb(written.output_bytes)
            ),
            met: all_whole,
        },
    ];

    let readers_table = Table {
        heading: format!("The {READERS} parallel readers:"),
        columns: [
            "reader",
            "status",
            "body",
            "time",
            "rate",
            "output lines",
            "notes",
        ]
        .map(String::from)
        .to_vec(),
        rows: reads
            .iter()
            .enumerate()
            .map(|(i, r)| {
                vec![
                    (i + 1).to_string(),
                    r.status.to_string(),
                    mb(r.bytes),
                    format!("{:.2} s", r.elapsed.as_secs_f64()),
                    mb_per_s(r.bytes, r.elapsed),
                    thousands(r.output_lines),
                    r.note_lines.to_string(),
                ]
            })
            .collect(),
    };

    let threads_table = Table {
        heading: format!("The panel's busiest threads during the {READERS} reads:"),
        columns: ["thread", "CPU", "share of the wall time"]
            .map(String::from)
            .to_vec(),
        rows: threads
            .iter()
            .map(|(name, cpu)| {
                vec![
                    format!("`{name}`"),
                    format!("{:.2} s", cpu.as_secs_f64()),
                    format!("{:.0}%", 100.0 * cpu.as_secs_f64() / six_wall.as_secs_f64()),
                ]
            })
            .collect(),
    };

    let hwm_note = if six_rss.hwm_kib.is_some() {
        "VmHWM reset before each phase through `/proc/<pid>/clear_refs`, so the peak is the \
         phase's own"
    } else {
        "VmHWM could not be reset here, so the peak is the highest VmRSS sampled"
    };
    let method = format!(
        "One real job (`POST /api/v1/jobs`, `{NOOP}` on an agent with a heartbeat and no \
         runner) whose runner the bench plays with the contract's scripts: `LMOVE` off the \
         queue, the `running` event, {} output lines of {LINE_BYTES} bytes appended with \
         `APPEND_EVENTS` in the runner's batches of {WRITE_BATCH} ({WRITE_PIPELINE} calls per \
         round trip), then `FINISH_ATTEMPT` (`succeeded`, exit code 0, the last {LAST_LINES} \
         lines in the record): the stream, record and events are exactly what a runner leaves. \
         Its plain log is read to the end by one client, then by {READERS} at once (reqwest, \
         nothing kept but line counts: every read must hold every output line); its job page \
         (bearer token, as a signed-in browser) {READERS} at once, {PAGE_ROUNDS} rounds. \
         Meanwhile the panel's VmRSS is sampled every 10 ms from `/proc/<pid>/status` ({hwm_note}), \
         and `/healthz` is probed one request after another, {} ms apart, on a keep-alive \
         connection of its own thread, during the {READERS} reads and, as its baseline, for \
         {:.0} s before with nothing else running. The memory bound: {READERS} readers of a \
         page-by-page stream hold {READERS} pages of {PANEL_PAGE} events (about {} of text \
         each, plus the Redis reply) and their socket buffers, a few MiB; a panel that held \
         one whole log would grow by more than the log itself ({}), so the bound is {} — \
         under one log (half of one in `--quick`), {:.0}% of the {} streamed. Baseline of \
         the read rate: the same stream read straight from Redis in `XRANGE` pages of the \
         panel's {PANEL_PAGE}, each entry decoded to its line, one reader. The stream is \
         deleted (`UNLINK`) at the end.",
        thousands(written.lines),
        PROBE_GAP.as_millis(),
        probe_time.as_secs_f64(),
        mb((PANEL_PAGE * LINE_BYTES) as u64),
        mb(written.output_bytes),
        mib(bound),
        100.0 * (bound * 1024) as f64 / six_bytes.max(1) as f64,
        mb(six_bytes)
    );

    Ok(Figure {
        number: 13,
        title: "Big logs".into(),
        method,
        rows,
        goals,
        tables: vec![readers_table, threads_table],
        summary: format!(
            "13. Big logs ({} job): one log read {}, {READERS} at once {} with the panel's RSS +{} \
             (bound {}); /healthz p99 {} during them ({} failed, {} idle); job page {} bytes{}",
            mb(written.output_bytes),
            mb_per_s(one.bytes, one.elapsed),
            mb_per_s(six_bytes, six_wall),
            mib(six_rss.growth_kib()),
            mib(bound),
            Micros(busy_s.p99),
            busy.failures,
            Micros(quiet_s.p99),
            thousands(pages.bytes as u64),
            if pages.links_log {
                ", links the whole log"
            } else {
                ", NO link to the whole log"
            }
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::stream::output_line;
    use super::watch::Rss;
    use super::*;

    #[test]
    fn output_lines_have_the_set_length_and_no_note_prefix() {
        for i in [0, 7, 1_999_999, u64::from(u32::MAX)] {
            let l = output_line(i);
            assert_eq!(l.len() + 1, LINE_BYTES);
            assert!(!l.starts_with('#'));
            assert!(l.is_ascii());
        }
        assert_ne!(output_line(1), output_line(2));
    }

    #[test]
    fn the_bound_is_under_one_log() {
        assert_eq!(bound_kib(200_000_000), 64 * 1024);
        assert_eq!(bound_kib(40_000_000), 40_000_000 / 1024 / 2);
    }

    #[test]
    fn rss_growth_uses_the_highest_known_peak() {
        let r = Rss {
            before_kib: 100,
            sampled_max_kib: 150,
            hwm_kib: Some(180),
            after_kib: 120,
        };
        assert_eq!(r.growth_kib(), 80);
        let r = Rss { hwm_kib: None, ..r };
        assert_eq!(r.growth_kib(), 50);
    }
}
