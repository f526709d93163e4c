//! Host facts a runner reports in its heartbeat, and what the panel reads from them.

use serde::{Deserialize, Serialize};

/// Seconds between heartbeats.
pub const HEARTBEAT_INTERVAL_SECS: u64 = 5;
/// The heartbeat key lives this long; an agent whose key is gone is offline.
pub const HEARTBEAT_TTL_SECS: u64 = 20;

/// What a runner says about its server, every [`HEARTBEAT_INTERVAL_SECS`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    /// The agent whose runner wrote this heartbeat (an id of [`crate::ids::ID_PATTERN`]).
    pub agent_id: String,
    /// `ID` from /etc/os-release (e.g. `debian`, `ubuntu`).
    pub os_family: String,
    /// `ID_LIKE` from /etc/os-release, split on spaces.
    #[serde(default)]
    pub os_like: Vec<String>,
    /// `VERSION_ID` from /etc/os-release (e.g. `12`, `22.04`).
    pub os_version: String,
    /// `PRETTY_NAME` from /etc/os-release.
    #[serde(default)]
    pub os_pretty: String,
    /// CPU architecture the runner was built for, as Rust names it (`x86_64`, `aarch64`).
    pub arch: String,
    /// CPUs the runner may use (its available parallelism, not the socket count).
    pub cpus: u32,
    /// Total RAM in MiB (`MemTotal`), compared with a manifest's `min_ram_mb`.
    pub ram_mb: u64,
    /// Space on `/` in MiB that unprivileged users may still fill (statvfs `f_bavail`);
    /// compared with a manifest's `min_disk_mb`.
    pub disk_free_mb: u64,
    /// One-minute load average from `/proc/loadavg`; shown, never used to pick a server.
    pub load1: f64,
    /// The runner's crate version (`CARGO_PKG_VERSION`), shown beside the server.
    pub runner_version: String,
    /// Unix milliseconds when this heartbeat was written.
    pub ts: i64,
    /// The job running now, if any.
    #[serde(default)]
    pub running_jobs: Vec<String>,
    /// The runner's own counters since it started; `None` from runners older than them.
    #[serde(default)]
    pub runner: Option<RunnerStats>,
    /// What the runner measured this time; `None` from runners older than it, and when the
    /// reader refused it (see `outfitter_contract::host_metrics`).
    #[serde(default)]
    pub metrics: Option<crate::host_metrics::HostMetrics>,
}

/// What a runner process has done since it started, carried in its heartbeat (the same
/// counts as its `/metrics`, for a panel that scrapes nothing). Counts are attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerStats {
    /// Unix milliseconds when this runner process started; the counts are since then.
    pub started_at: i64,
    /// Attempts that ended `succeeded`.
    pub jobs_succeeded: u64,
    /// Attempts that ended `failed`, `timed_out` or `needs_attention`.
    pub jobs_failed: u64,
    /// Attempts that ended in `retrying` (exit 2 with attempts left).
    pub jobs_retried: u64,
    /// Jobs refused before anything ran (`rejected`, `expired`).
    pub jobs_rejected: u64,
    /// Jobs running now.
    pub jobs_running: u64,
    /// Jobs whose events or result wait in the outbox for Redis.
    pub outbox_depth: u64,
    /// Redis calls that failed (each retried or left to the outbox).
    pub redis_errors: u64,
    /// How long the last finished attempt ran, in milliseconds.
    #[serde(default)]
    pub last_job_ms: Option<u64>,
}

/// Compares dotted versions numerically (`22.04` ≥ `20.10`, `12` ≥ `11`); a part that is not
/// a number compares as text.
pub fn version_at_least(have: &str, min: &str) -> bool {
    let parts = |s: &str| s.split(['.', '-']).map(str::to_owned).collect::<Vec<_>>();
    let (h, m) = (parts(have), parts(min));
    for i in 0..h.len().max(m.len()) {
        let a = h.get(i).map(String::as_str).unwrap_or("0");
        let b = m.get(i).map(String::as_str).unwrap_or("0");
        let ord = match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.cmp(b),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord == std::cmp::Ordering::Greater;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("22.04", "20.10"));
        assert!(version_at_least("12", "12"));
        assert!(version_at_least("12.1", "12"));
        assert!(!version_at_least("11", "12"));
        assert!(!version_at_least("9", "10"));
    }
}
