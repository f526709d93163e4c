//! The runner as child subreaper: processes of a job that `setsid` or double-fork away are
//! reparented to the runner instead of PID 1, so they can still be found and killed; once
//! dead they must be reaped here, by pid. `waitpid(-1)` is never used: it would steal the
//! exit status of the scripts the sandbox waits for on their pidfds, so those pids are skipped.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::sys::{Sys, SysResult};

/// How often zombies left by orphans are collected.
pub const REAP_INTERVAL: Duration = Duration::from_secs(1);

static SUBREAPER: AtomicBool = AtomicBool::new(false);

static SCRIPTS: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();

fn scripts() -> &'static Mutex<HashSet<i32>> {
    SCRIPTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Makes this process a child subreaper; the error says why the kernel refused.
pub fn become_subreaper(sys: &dyn Sys) -> SysResult<()> {
    let result = sys.set_child_subreaper();
    SUBREAPER.store(result.is_ok(), Ordering::Relaxed);
    result
}

/// Whether [`become_subreaper`] succeeded in this process.
pub fn is_subreaper() -> bool {
    SUBREAPER.load(Ordering::Relaxed)
}

/// Held while a script is spawned and registered, so the reaper cannot collect it in between.
pub struct SpawnGuard(MutexGuard<'static, HashSet<i32>>);

impl SpawnGuard {
    pub fn lock() -> Self {
        SpawnGuard(scripts().lock().expect("reaper lock"))
    }

    /// Marks `pid` as a script the sandbox waits for.
    pub fn register(mut self, pid: i32) {
        self.0.insert(pid);
    }
}

/// The script `pid` has been waited for by the sandbox.
pub fn forget(pid: i32) {
    scripts().lock().expect("reaper lock").remove(&pid);
}

/// The runner's children that may be orphans to reap: every child except the scripts the
/// sandbox waits for. From the runner's own children list where the kernel offers it (a few small
/// files), else from a scan of every process (the zombies whose parent is the runner).
pub fn reap_candidates(sys: &dyn Sys, scripts: &HashSet<i32>) -> SysResult<Vec<i32>> {
    let me = sys.own_pid();
    let children = match sys.runner_children()? {
        Some(children) => children,
        None => sys
            .processes()?
            .into_iter()
            .filter(|p| p.ppid == me && p.is_dead())
            .map(|p| p.pid)
            .collect(),
    };
    Ok(children
        .into_iter()
        .filter(|pid| *pid > 1 && !scripts.contains(pid))
        .collect())
}

/// Reaps every zombie among [`reap_candidates`] (a live child is left alone: `WNOHANG`).
/// Returns how many were reaped; a child that cannot be waited for is logged and skipped, so
/// one bad pid does not keep the others zombies.
pub fn reap_except(sys: &dyn Sys, scripts: &HashSet<i32>) -> SysResult<usize> {
    // After nearly every job nothing has exited: told by one system call, not by reading
    // the children list of every runner thread.
    if sys.exited_child()?.is_none() {
        return Ok(0);
    }
    let mut reaped = 0;
    for pid in reap_candidates(sys, scripts)? {
        match sys.reap(pid) {
            Ok(true) => reaped += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(pid, error = %e, "cannot reap an orphan"),
        }
    }
    Ok(reaped)
}

/// [`reap_except`] the scripts the sandbox waits for.
pub fn reap_orphans(sys: &dyn Sys) -> SysResult<usize> {
    let scripts = scripts().lock().expect("reaper lock");
    reap_except(sys, &scripts)
}

/// Reaps orphans forever (spawn once per process). A failure is logged once until it changes.
pub async fn reap_forever(sys: &'static dyn Sys) {
    let mut tick = tokio::time::interval(REAP_INTERVAL);
    let mut last_error = None;
    loop {
        tick.tick().await;
        match reap_orphans(sys) {
            Ok(_) => last_error = None,
            Err(e) => {
                let text = e.to_string();
                if last_error.as_ref() != Some(&text) {
                    tracing::warn!(error = %text, "cannot look for orphans to reap");
                    last_error = Some(text);
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "reaper_tests.rs"]
mod tests;
