//! Test support for the runner's integration tests: a private redis-server on a free port
//! (`outfitter-test-support`),
//! the real `outfitter-runner` binary as a process, and a minimal panel that signs and
//! enqueues jobs with the contract's enqueue write, as the real panel does (index entries,
//! then one `ENQUEUE` script: record, `queued` event, LPUSH). Reusable by the end-to-end
//! tests: it only needs the contract crate and redis.

#![allow(dead_code, unused_imports)]

pub(crate) mod panel;
pub(crate) mod runner_process;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub(crate) use outfitter_test_support::RedisServer;
pub(crate) use panel::{Enqueued, Panel};
pub(crate) use runner_process::{RunnerOptions, RunnerProcess};

/// The runner's test bundles.
pub(crate) fn bundles_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bundles")
}

/// Polls `f` every 50 ms until it returns `Some`, or panics with `what` after `timeout`.
pub(crate) fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Live processes whose environment holds `JOB_ID=<job_id>` (zombies have none).
pub(crate) fn processes_of_job(job_id: &str) -> Vec<(i32, String)> {
    let needle = format!("JOB_ID={job_id}").into_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|e| e == needle.as_slice()) {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")));
        }
    }
    found
}

/// Kills (SIGKILL) processes a test left on purpose (a survivor after success).
pub(crate) fn kill_processes_of_job(job_id: &str) {
    for (pid, _) in processes_of_job(job_id) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Peak resident memory of a process in KiB (VmHWM), while it lives.
pub(crate) fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
