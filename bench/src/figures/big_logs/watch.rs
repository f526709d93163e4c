//! Watching the panel while the log is read: whole reads, `/healthz` and Redis probes, the
//! panel's memory and its threads' CPU, and rounds of job pages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;

use super::super::Ctx;
use super::super::footprint::RssSampler;
use super::{PAGE_ROUNDS, PROBE_GAP, READERS, RSS_BOUND_FULL_KIB, Written};
use crate::http1::{self, Conn};
use crate::process::{Memory, mib};
use crate::stats::Samples;

/// One whole read of the plain log.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LogRead {
    pub(super) status: u16,
    pub(super) bytes: u64,
    /// Lines not starting with `#` (the script's output) and their bytes with newlines.
    pub(super) output_lines: u64,
    pub(super) output_bytes: u64,
    /// The panel's `# ` lines (state changes).
    pub(super) note_lines: u64,
    pub(super) elapsed: Duration,
}

impl LogRead {
    pub(super) fn whole(&self, w: &Written) -> bool {
        self.status == 200 && self.output_lines == w.lines && self.output_bytes == w.output_bytes
    }
}

/// Reads `url` to its end, counting lines as they pass (nothing of the body is kept).
pub(super) async fn read_log(http: &reqwest::Client, url: &str, token: &str) -> Result<LogRead> {
    let started = Instant::now();
    let resp = http.get(url).bearer_auth(token).send().await?;
    let mut r = LogRead {
        status: resp.status().as_u16(),
        ..LogRead::default()
    };
    let mut stream = resp.bytes_stream();
    // The line being read: its length so far and whether it is a note.
    let (mut len, mut note) = (0u64, false);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("reading the log")?;
        r.bytes += chunk.len() as u64;
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            if len == 0 {
                note = rest[0] == b'#';
            }
            match rest.iter().position(|&b| b == b'\n') {
                Some(p) => {
                    let line = len + p as u64 + 1;
                    if note {
                        r.note_lines += 1;
                    } else {
                        r.output_lines += 1;
                        r.output_bytes += line;
                    }
                    len = 0;
                    rest = &rest[p + 1..];
                }
                None => {
                    len += rest.len() as u64;
                    rest = &[];
                }
            }
        }
    }
    r.elapsed = started.elapsed();
    Ok(r)
}

/// One probe after another, `PROBE_GAP` apart, in a thread of its own, so that the bench's
/// readers (on the main runtime) do not delay it: `/healthz` on a keep-alive connection of
/// its own, or `PING` straight to Redis on a connection of its own.
pub(super) struct Prober {
    pub(super) stop: Arc<AtomicBool>,
    pub(super) thread: std::thread::JoinHandle<Result<Probes>>,
}

#[derive(Debug, Default)]
pub(super) struct Probes {
    pub(super) latency: Samples,
    /// Answers other than 200, and failed requests; the first of them.
    pub(super) failures: usize,
    pub(super) first_failure: Option<String>,
    pub(super) slowest_us: f64,
}

/// One probe: `Err` says what went wrong.
type Probe = Box<dyn FnMut() -> std::result::Result<(), String>>;

impl Prober {
    /// Probes with what `connect` returns (called in the prober's thread).
    pub(super) fn start(connect: impl FnOnce() -> Result<Probe> + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut probe = connect()?;
            let mut p = Probes::default();
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                let outcome = probe();
                let took = t.elapsed();
                p.latency.push(took);
                p.slowest_us = p.slowest_us.max(took.as_secs_f64() * 1e6);
                if let Err(f) = outcome {
                    p.failures += 1;
                    p.first_failure.get_or_insert(f);
                }
                std::thread::sleep(PROBE_GAP);
            }
            Ok(p)
        });
        Self { stop, thread }
    }

    /// `GET /healthz` of the panel at `addr`, 200 required.
    pub(super) fn healthz(addr: std::net::SocketAddr, token: &str) -> Self {
        let request = http1::request("GET", "/healthz", token, None);
        Self::start(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let mut conn = rt.block_on(Conn::connect(addr))?;
            Ok(Box::new(move || {
                // The timer is made inside the runtime: it needs the runtime's clock.
                let sent = rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(30), conn.send(&request)).await
                });
                match sent {
                    Ok(Ok(r)) if r.status == 200 => Ok(()),
                    Ok(Ok(r)) => Err(format!("status {}", r.status)),
                    Ok(Err(e)) => Err(format!("{e:#}")),
                    Err(_) => Err("no answer within 30 s".to_owned()),
                }
            }))
        })
    }

    /// `PING` to Redis on a connection of its own.
    pub(super) fn redis_ping(client: redis::Client) -> Self {
        Self::start(move || {
            let mut conn = client.get_connection()?;
            conn.set_read_timeout(Some(Duration::from_secs(30)))?;
            Ok(Box::new(move || {
                redis::cmd("PING")
                    .query::<String>(&mut conn)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }))
        })
    }

    pub(super) fn finish(self) -> Result<Probes> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("a prober panicked"))?
    }
}

/// The panel's memory around one phase: VmRSS before, the highest sampled during (every
/// 10 ms), VmHWM after (reset before the phase when the kernel lets us), VmRSS after.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rss {
    pub(super) before_kib: u64,
    pub(super) sampled_max_kib: u64,
    /// `None` when the peak could not be reset, so VmHWM is that of an earlier moment.
    pub(super) hwm_kib: Option<u64>,
    pub(super) after_kib: u64,
}

impl Rss {
    /// The highest resident size the phase is known to have reached.
    pub(super) fn peak_kib(&self) -> u64 {
        self.sampled_max_kib.max(self.hwm_kib.unwrap_or(0))
    }

    pub(super) fn growth_kib(&self) -> u64 {
        self.peak_kib().saturating_sub(self.before_kib)
    }

    pub(super) fn describe(&self) -> String {
        format!(
            "{} before, peak {} (+{}), {} after",
            mib(self.before_kib),
            mib(self.peak_kib()),
            mib(self.growth_kib()),
            mib(self.after_kib)
        )
    }
}

/// Watches the panel's memory over one phase.
pub(super) struct RssWatch {
    pub(super) pid: u32,
    pub(super) before_kib: u64,
    pub(super) hwm_reset: bool,
    pub(super) sampler: RssSampler,
}

impl RssWatch {
    pub(super) fn start(pid: u32) -> Result<Self> {
        // `5` resets VmHWM to VmRSS (Linux ≥ 4.0), for a peak of this phase alone.
        let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        let before_kib = Memory::of(pid)?.rss_kib;
        Ok(Self {
            pid,
            before_kib,
            hwm_reset,
            sampler: RssSampler::start(pid),
        })
    }

    pub(super) fn finish(self) -> Result<Rss> {
        let sampled_max_kib = self.sampler.finish();
        let now = Memory::of(self.pid)?;
        Ok(Rss {
            before_kib: self.before_kib,
            sampled_max_kib,
            hwm_kib: self.hwm_reset.then_some(now.hwm_kib),
            after_kib: now.rss_kib,
        })
    }
}

/// The RSS growth six readers may cause: 64 MiB, or half of one log when that is smaller
/// (the 40 MB log of `--quick`), so that a panel holding even one whole log misses it.
pub(super) fn bound_kib(log_bytes: u64) -> u64 {
    RSS_BOUND_FULL_KIB.min(log_bytes / 1024 / 2)
}

/// CPU time of each thread of `pid` (`/proc/<pid>/task/*/stat`), with its name.
pub(super) fn thread_cpu(pid: u32) -> Vec<(u32, String, Duration)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return vec![];
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let tid: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let name = stat[open + 1..close].to_owned();
        let f: Vec<u64> = stat[close + 1..]
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        // USER_HZ is 100 by the Linux ABI.
        let cpu = Duration::from_millis((f.first()? + f.get(1)?) * 10);
        Some((tid, name, cpu))
    })
    .collect()
}

/// The threads that used most CPU between two readings, busiest first.
pub(super) fn busiest_threads(
    before: &[(u32, String, Duration)],
    after: &[(u32, String, Duration)],
    n: usize,
) -> Vec<(String, Duration)> {
    let mut used: Vec<(String, Duration)> = after
        .iter()
        .map(|(tid, name, cpu)| {
            let was = before
                .iter()
                .find(|(t, ..)| t == tid)
                .map(|(.., c)| *c)
                .unwrap_or_default();
            (name.clone(), cpu.saturating_sub(was))
        })
        .collect();
    used.sort_by_key(|u| std::cmp::Reverse(u.1));
    used.truncate(n);
    used
}

/// Six job pages at once, `PAGE_ROUNDS` times; the wall time of each round, the page size
/// and whether every page linked to the whole log.
pub(super) struct PageRun {
    pub(super) rounds: Samples,
    pub(super) bytes: usize,
    pub(super) status_ok: bool,
    pub(super) links_log: bool,
    pub(super) says_tail: bool,
    pub(super) elapsed: Duration,
}

pub(super) async fn job_pages(ctx: &Ctx, job: &str) -> Result<PageRun> {
    let request = http1::request("GET", &format!("/jobs/{job}"), &ctx.inst.token, None);
    let link = format!("href=\"/api/v1/jobs/{job}/log\"");
    let mut conns = Vec::with_capacity(READERS);
    for _ in 0..READERS {
        conns.push(ctx.panel_conn().await?);
    }
    let mut run = PageRun {
        rounds: Samples::new(),
        bytes: 0,
        status_ok: true,
        links_log: true,
        says_tail: true,
        elapsed: Duration::ZERO,
    };
    let started = Instant::now();
    for _ in 0..PAGE_ROUNDS {
        let t = Instant::now();
        let replies =
            futures_util::future::join_all(conns.iter_mut().map(|c| c.send(&request))).await;
        run.rounds.push(t.elapsed());
        for r in replies {
            let r = r?;
            let body = String::from_utf8_lossy(&r.body);
            run.bytes = run.bytes.max(r.body.len());
            run.status_ok &= r.status == 200;
            run.links_log &= body.contains(&link);
            run.says_tail &= body.contains("id=\"log-truncated\"");
        }
    }
    run.elapsed = started.elapsed();
    Ok(run)
}
