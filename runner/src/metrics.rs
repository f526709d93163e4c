//! The runner's metrics, in the panel's crate and style (`prometheus-client`, prefix
//! `outfitter_runner`), served by [`crate::daemon::metrics_listener`] when `metrics_bind` is
//! set, and summed into the heartbeat's [`RunnerStats`]:
//!
//! - `outfitter_runner_jobs_total{outcome}`: attempts finished, by the state they ended in
//!   (`succeeded`, `failed`, `retrying`, `needs_attention`, `timed_out`, `canceled`,
//!   `rejected`, `expired`, `interrupted`: [`JobState`]'s names).
//! - `outfitter_runner_job_duration_seconds{outcome}`: how long attempts that ran took.
//! - `outfitter_runner_spawn_latency_seconds`: job taken from the queue → its first script
//!   spawned (the checks, the bundle store, the cgroup).
//! - `outfitter_runner_redis_errors_total{op}`: failed Redis calls, by what the runner was
//!   doing (`fetch`, `checks`, `events`, `result`, `heartbeat`, `tick`, `control`, `recovery`).
//! - `outfitter_runner_outbox_depth`: jobs whose events or result wait in the outbox.
//! - `outfitter_runner_jobs_running`: jobs running now.
//! - `outfitter_runner_build_info{version,agent}` (always 1) and the standard `process_*`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use outfitter_contract::host::RunnerStats;
use outfitter_contract::job::JobState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// What the runner was doing when a Redis call failed (the `op` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RedisOp {
    /// Taking a job (BLMOVE, its connection).
    Fetch,
    /// The checks of a taken job (replay guard, record) and recording a refusal.
    Checks,
    /// Appending a running job's events (they go to the outbox meanwhile).
    Events,
    /// Applying a result (it waits in the outbox meanwhile).
    Result,
    Heartbeat,
    /// The tick: outbox flush, retry promotion.
    Tick,
    /// The control channel's pubsub connection.
    Control,
    /// Flushing the outbox and settling the processing list at start.
    Recovery,
}

impl RedisOp {
    fn as_str(self) -> &'static str {
        match self {
            RedisOp::Fetch => "fetch",
            RedisOp::Checks => "checks",
            RedisOp::Events => "events",
            RedisOp::Result => "result",
            RedisOp::Heartbeat => "heartbeat",
            RedisOp::Tick => "tick",
            RedisOp::Control => "control",
            RedisOp::Recovery => "recovery",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    agent: String,
}

fn duration_histogram() -> Histogram {
    // 0.25 s … about 2.3 h, as the panel's job durations.
    Histogram::new(exponential_buckets(0.25, 2.0, 16))
}

fn spawn_histogram() -> Histogram {
    // 1 ms … about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The runner's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

struct Inner {
    registry: Registry,
    /// Unprefixed: the standard `process_*` names.
    process: Registry,
    jobs: Family<OutcomeLabel, Counter>,
    durations: Family<OutcomeLabel, Histogram, fn() -> Histogram>,
    spawn_latency: Histogram,
    redis_errors: Family<OpLabel, Counter>,
    outbox_depth: Gauge,
    running: Gauge,
    started_at: i64,
    redis_errors_total: AtomicU64,
    /// Milliseconds of the last finished attempt; -1 before the first.
    last_job_ms: AtomicI64,
}

impl Metrics {
    /// Metrics of the runner of `agent_id`, started at `started_at` (unix ms).
    pub fn new(agent_id: &str, started_at: i64) -> Self {
        let mut registry = Registry::with_prefix("outfitter_runner");
        let jobs = Family::<OutcomeLabel, Counter>::default();
        let durations = Family::<OutcomeLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        let spawn_latency = spawn_histogram();
        let redis_errors = Family::<OpLabel, Counter>::default();
        let outbox_depth = Gauge::default();
        let running = Gauge::default();
        registry.register(
            "jobs",
            "Attempts this runner finished, by the state they ended in",
            jobs.clone(),
        );
        registry.register(
            "job_duration_seconds",
            "How long the attempts that ran took, by the state they ended in",
            durations.clone(),
        );
        registry.register(
            "spawn_latency_seconds",
            "Time from taking a job off the queue to spawning its first script",
            spawn_latency.clone(),
        );
        registry.register(
            "redis_errors",
            "Redis calls that failed, by what the runner was doing",
            redis_errors.clone(),
        );
        registry.register(
            "outbox_depth",
            "Jobs whose events or result wait in the outbox for Redis",
            outbox_depth.clone(),
        );
        registry.register("jobs_running", "Jobs running now", running.clone());
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                agent: agent_id.to_owned(),
            })
            .set(1);
        registry.register(
            "build_info",
            "The runner's version and agent (always 1)",
            build,
        );
        let mut process = Registry::default();
        process.register_collector(Box::new(
            outfitter_contract::process_stats::ProcessCollector,
        ));
        Metrics {
            inner: Arc::new(Inner {
                registry,
                process,
                jobs,
                durations,
                spawn_latency,
                redis_errors,
                outbox_depth,
                running,
                started_at,
                redis_errors_total: AtomicU64::new(0),
                last_job_ms: AtomicI64::new(-1),
            }),
        }
    }

    /// An attempt ended in `state`; `ran` is how long its scripts ran (`None` when nothing
    /// ran: a refusal, a cancel before the start).
    pub fn job_finished(&self, state: JobState, ran: Option<Duration>) {
        let label = OutcomeLabel {
            outcome: state.as_str(),
        };
        self.inner.jobs.get_or_create(&label).inc();
        if let Some(d) = ran {
            self.inner
                .durations
                .get_or_create(&label)
                .observe(d.as_secs_f64());
            self.inner.last_job_ms.store(
                d.as_millis().min(i64::MAX as u128) as i64,
                Ordering::Relaxed,
            );
        }
    }

    /// A taken job's first script was spawned `latency` after it left the queue.
    pub fn spawned(&self, latency: Duration) {
        self.inner.spawn_latency.observe(latency.as_secs_f64());
    }

    pub fn redis_error(&self, op: RedisOp) {
        self.inner
            .redis_errors
            .get_or_create(&OpLabel { op: op.as_str() })
            .inc();
        self.inner
            .redis_errors_total
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_outbox_depth(&self, jobs: usize) {
        self.inner.outbox_depth.set(jobs as i64);
    }

    pub fn set_running(&self, jobs: usize) {
        self.inner.running.set(jobs as i64);
    }

    fn count(&self, states: &[JobState]) -> u64 {
        states
            .iter()
            .map(|s| {
                self.inner
                    .jobs
                    .get(&OutcomeLabel {
                        outcome: s.as_str(),
                    })
                    .map_or(0, |c| c.get())
            })
            .sum()
    }

    /// The heartbeat's summary of the same numbers.
    pub fn stats(&self) -> RunnerStats {
        let last = self.inner.last_job_ms.load(Ordering::Relaxed);
        RunnerStats {
            started_at: self.inner.started_at,
            jobs_succeeded: self.count(&[JobState::Succeeded]),
            jobs_failed: self.count(&[
                JobState::Failed,
                JobState::TimedOut,
                JobState::NeedsAttention,
            ]),
            jobs_retried: self.count(&[JobState::Retrying]),
            jobs_rejected: self.count(&[JobState::Rejected, JobState::Expired]),
            jobs_running: self.inner.running.get().max(0) as u64,
            outbox_depth: self.inner.outbox_depth.get().max(0) as u64,
            redis_errors: self.inner.redis_errors_total.load(Ordering::Relaxed),
            last_job_ms: (last >= 0).then_some(last as u64),
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        encode_registry(&mut out, &self.inner.registry)
            .and_then(|()| encode_registry(&mut out, &self.inner.process))
            .and_then(|()| encode_eof(&mut out))
            .expect("writing to a String");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_under_the_job_state_names_and_summed_for_the_heartbeat() {
        let m = Metrics::new("web-1", 7);
        m.job_finished(JobState::Succeeded, Some(Duration::from_millis(1500)));
        m.job_finished(JobState::TimedOut, Some(Duration::from_millis(300)));
        m.job_finished(JobState::Failed, Some(Duration::from_millis(200)));
        m.job_finished(JobState::Rejected, None);
        m.redis_error(RedisOp::Heartbeat);
        m.set_outbox_depth(2);
        let text = m.encode();
        assert!(
            text.contains("outfitter_runner_jobs_total{outcome=\"succeeded\"} 1"),
            "{text}"
        );
        assert!(text.contains("outfitter_runner_jobs_total{outcome=\"timed_out\"} 1"));
        assert!(text.contains("outfitter_runner_redis_errors_total{op=\"heartbeat\"} 1"));
        assert!(text.contains("outfitter_runner_outbox_depth 2"));
        assert!(text.contains("outfitter_runner_build_info{version=\""));
        assert!(text.ends_with("# EOF\n"));
        let s = m.stats();
        assert_eq!(
            (
                s.jobs_succeeded,
                s.jobs_failed,
                s.jobs_rejected,
                s.jobs_retried
            ),
            (1, 2, 1, 0)
        );
        assert_eq!((s.redis_errors, s.outbox_depth, s.started_at), (1, 2, 7));
        assert_eq!(s.last_job_ms, Some(200), "the last attempt that ran");
    }
}
