//! Figure 9: host metrics collection (issue 18 item 1). What one collection of the runner's
//! host metrics costs in CPU on this machine, with and without the service probes, and the
//! share of one core that is at the heartbeat interval; beside the cost of one bare read of
//! `/proc/stat` and of a `ps`-style pass over every `/proc/<pid>/stat`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};
use nix::sys::resource::{UsageWho, getrusage};
use outfitter_contract::host::{HEARTBEAT_INTERVAL_SECS, HostFacts};
use outfitter_contract::redis_keys::AgentRedisKeys;
use outfitter_runner::host_metrics::{
    Collector, PROBE_EVERY, ServiceSettings, Target, thread_cpu_us,
};

use super::Ctx;
use crate::report::{Figure, Goal, Row, verdict};
use crate::stats::Samples;

/// The goal of the issue: collecting costs the runner under 1% of a core at 5 s.
const GOAL_PCT: f64 = 1.0;

/// What one run measured, CPU microseconds of the measuring thread.
#[derive(Debug, Default)]
struct Costs {
    collections: usize,
    processes: u64,
    host: Samples,
    wall: Samples,
    probe: Samples,
    postgres: Option<Samples>,
    proc_stat: Samples,
    ps_scan: Samples,
}

/// CPU µs of `f` on this thread.
fn cpu_of<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let before = thread_cpu_us();
    let out = f();
    ((thread_cpu_us() - before) as f64, out)
}

/// CPU µs of this process's waited-for children so far (user + system).
fn children_cpu_us() -> f64 {
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0.0, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 * 1e6 + tv.tv_usec() as f64;
        t(u.user_time()) + t(u.system_time())
    })
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| Path::new(&dir).join(program).is_file())
    })
}

fn measure_blocking(collections: usize, probes: usize, redis_url: String) -> Costs {
    let mut c = Costs {
        collections,
        ..Costs::default()
    };
    let mut host = Collector::new(ServiceSettings::none());
    let warm = host.collect();
    c.processes = warm.processes;
    for _ in 0..collections {
        let at = Instant::now();
        let (cpu, _) = cpu_of(|| host.collect());
        c.wall.push(at.elapsed());
        c.host.push_micros(cpu);
    }
    // One probe round as the runner makes it: the bench's own Redis answers INFO; nginx on a
    // closed port and a missing Docker socket fail as on a server without them. This
    // machine's own PostgreSQL and Redis are not the bench's to ask.
    let closed = outfitter_test_support::free_port();
    let mut probing = Collector::new(ServiceSettings {
        postgres: false,
        nginx: Target::At(format!("http://127.0.0.1:{closed}/nginx_status")),
        redis: Target::At(redis_url),
        docker: Target::At("/nonexistent/docker.sock".into()),
        ..ServiceSettings::default()
    });
    probing.collect();
    for _ in 0..probes {
        let (with, _) = cpu_of(|| probing.probe_services());
        let (host_only, _) = cpu_of(|| host.collect());
        c.probe.push_micros((with - host_only).max(0.0));
    }
    // The PostgreSQL probe is a `runuser -u postgres -- psql` process: its spawn and exec,
    // with `psql --version` standing in for the query (no connection to this machine's
    // server), the runner's thread and the children's CPU both counted.
    let pg_user = nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .is_some();
    if pg_user && on_path("psql") && on_path("runuser") {
        let mut s = Samples::new();
        for _ in 0..probes {
            let children = children_cpu_us();
            let (cpu, ok) = cpu_of(|| {
                Command::new("runuser")
                    .args(["-u", "postgres", "--", "psql", "--version"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|st| st.success())
            });
            if ok {
                s.push_micros(cpu + children_cpu_us() - children);
            }
        }
        if s.len() > 0 {
            c.postgres = Some(s);
        }
    }
    for _ in 0..collections {
        let (cpu, _) = cpu_of(|| std::fs::read_to_string("/proc/stat").map(|t| t.len()));
        c.proc_stat.push_micros(cpu);
        let (cpu, _) = cpu_of(ps_scan);
        c.ps_scan.push_micros(cpu);
    }
    c
}

/// What `ps -e` reads: every `/proc/<pid>/stat`.
fn ps_scan() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("stat")).ok())
        .count()
}

/// `collect_cpu_us` of the bench's release runner's latest heartbeat.
fn runner_reported(ctx: &Ctx) -> Option<u64> {
    let mut conn = ctx.inst.redis.connection().ok()?;
    let key = AgentRedisKeys::new(super::dispatch::AGENT).heartbeat();
    let text: String = redis::cmd("GET").arg(key).query(&mut conn).ok()?;
    let facts: HostFacts = serde_json::from_str(&text).ok()?;
    facts.metrics.map(|m| m.collect_cpu_us)
}

fn share_pct(cpu_us: f64) -> f64 {
    cpu_us * 100.0 / (HEARTBEAT_INTERVAL_SECS as f64 * 1e6)
}

pub(crate) async fn measure(ctx: &mut Ctx) -> Result<Figure> {
    let (collections, probes) = if ctx.plan.quick {
        (200, 20)
    } else {
        (1000, 60)
    };
    let redis_url = ctx.inst.redis.url();
    let mut c =
        tokio::task::spawn_blocking(move || measure_blocking(collections, probes, redis_url))
            .await
            .context("the collector thread")?;
    let host = c.host.mean().context("no collection measured")?;
    let host_p50 = c.host.percentile(50.0).unwrap_or(host);
    let host_p99 = c.host.percentile(99.0).unwrap_or(host);
    let wall = c.wall.mean().unwrap_or(0.0);
    let probe = c.probe.mean().unwrap_or(0.0);
    let pg = c.postgres.as_ref().and_then(Samples::mean);
    let round = probe + pg.unwrap_or(0.0);
    let amortized = host + round / PROBE_EVERY as f64;
    let proc_stat = c.proc_stat.mean().unwrap_or(0.0);
    let ps = c.ps_scan.mean().unwrap_or(0.0);
    let reported = runner_reported(ctx);
    let interval = HEARTBEAT_INTERVAL_SECS;
    let ratio = |v: f64, b: f64| {
        if b > 0.0 {
            format!("{:.1}×", v / b)
        } else {
            "—".into()
        }
    };
    let mut rows = vec![
        Row::new(
            format!(
                "CPU per collection, host only (mean of {}; p50 / p99)",
                c.collections
            ),
            format!("{host:.0} µs ({host_p50:.0} / {host_p99:.0})"),
        )
        .against(
            format!("ps-style scan of {} processes: {ps:.0} µs", c.processes),
            ratio(host, ps),
        ),
        Row::new(
            "wall time per collection, host only",
            format!("{wall:.0} µs"),
        )
        .against(
            format!("one read of /proc/stat: {proc_stat:.0} µs CPU"),
            ratio(host, proc_stat),
        ),
        Row::new(
            format!(
                "CPU per service probe round (mean of {}): Redis INFO answered, nginx and Docker absent",
                probes
            ),
            format!("{probe:.0} µs"),
        ),
        Row::new(
            "CPU per PostgreSQL probe (`runuser -u postgres -- psql --version` standing in: runner thread + children)",
            pg.map_or_else(
                || "not measured (no psql or postgres user)".into(),
                |v| format!("{v:.0} µs"),
            ),
        ),
        Row::new(
            format!("CPU per collection with services (probes every {PROBE_EVERY}th)"),
            format!("{amortized:.0} µs"),
        )
        .against(format!("host only: {host:.0} µs"), ratio(amortized, host)),
        Row::new(
            format!("share of one core at the {interval} s interval, host only"),
            format!("{:.4} %", share_pct(host)),
        ),
        Row::new(
            format!("share of one core at the {interval} s interval, with services"),
            format!("{:.4} %", share_pct(amortized)),
        )
        .against(
            format!("goal {GOAL_PCT} %"),
            format!("{:.3}×", share_pct(amortized) / GOAL_PCT),
        ),
    ];
    if let Some(us) = reported {
        rows.push(Row::new(
            "`collect_cpu_us` in the release runner's last heartbeat (services off)",
            format!("{us} µs"),
        ));
    }
    let share = share_pct(amortized);
    Ok(Figure {
        number: 9,
        title: "Host metrics collection (issue 18 item 1)".into(),
        method: format!(
            "`outfitter_runner::host_metrics::Collector::collect` run {} times back to back on a blocking \
             thread of the bench (the release build of the runner's own code), after one warm-up collection; \
             CPU is that thread's `CLOCK_THREAD_CPUTIME_ID` around each call, as the runner puts it in \
             `collect_cpu_us`. The service probe round is measured alone ({} times, minus a host-only \
             collection): the bench's private Redis answers `INFO`, nginx is pointed at a closed port and \
             Docker at a missing socket. This machine's own PostgreSQL is not asked; its probe's process \
             cost is measured with `psql --version` in place of the query. With services, the probe round \
             is spread over the {PROBE_EVERY} collections between probes. Baselines from the same run: one \
             `read_to_string(\"/proc/stat\")`, and a `ps -e`-style read of every `/proc/<pid>/stat`.",
            c.collections, probes
        ),
        rows,
        goals: vec![Goal {
            text: format!(
                "collecting costs the runner under {GOAL_PCT}% of a core at the default interval ({interval} s)"
            ),
            measured: format!("{share:.4} % ({amortized:.0} µs per collection with services)"),
            met: share < GOAL_PCT,
        }],
        tables: vec![],
        summary: format!(
            "9. Host metrics: {host:.0} µs CPU per collection ({:.3} % of a core at {interval} s), {amortized:.0} µs with services ({share:.3} %); goal < {GOAL_PCT} %: {}",
            share_pct(host),
            verdict(share < GOAL_PCT)
        ),
    })
}
