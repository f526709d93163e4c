//! The runner as child subreaper: processes of a job that `setsid` or double-fork away are
//! reparented to the runner instead of PID 1, so they can still be found and killed; once
//! dead they must be reaped here, by pid. `waitpid(-1)` is never used: it would steal the
//! exit status of the scripts tokio is waiting for, so those pids are skipped.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

use super::procs::Sys;

/// How often zombies left by orphans are collected.
pub const REAP_INTERVAL: Duration = Duration::from_secs(1);

static SUBREAPER: AtomicBool = AtomicBool::new(false);

static SCRIPTS: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();

fn scripts() -> &'static Mutex<HashSet<i32>> {
    SCRIPTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Makes this process a child subreaper. Returns whether the kernel agreed.
pub fn become_subreaper() -> bool {
    let ok = nix::sys::prctl::set_child_subreaper(true).is_ok();
    SUBREAPER.store(ok, Ordering::Relaxed);
    ok
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

    /// Marks `pid` as a script that tokio waits for.
    pub fn register(mut self, pid: i32) {
        self.0.insert(pid);
    }
}

/// The script `pid` has been waited for by tokio.
pub fn forget(pid: i32) {
    scripts().lock().expect("reaper lock").remove(&pid);
}

/// The runner's children that may be orphans to reap: every child except the scripts tokio
/// waits for. From the runner's own children list where the kernel offers it (a few small
/// files), else from a scan of every process (the zombies whose parent is the runner).
pub fn reap_candidates(sys: &dyn Sys, me: i32, scripts: &HashSet<i32>) -> Vec<i32> {
    let children = match sys.runner_children() {
        Some(children) => children,
        None => sys
            .processes()
            .into_iter()
            .filter(|p| p.ppid == me && p.is_dead())
            .map(|p| p.pid)
            .collect(),
    };
    children
        .into_iter()
        .filter(|pid| *pid > 1 && !scripts.contains(pid))
        .collect()
}

/// Reaps every zombie child of the runner that is not a script tokio waits for (a live child
/// is left alone: `WNOHANG`). Returns how many were reaped.
pub fn reap_orphans(sys: &dyn Sys) -> usize {
    let me = std::process::id() as i32;
    let scripts = scripts().lock().expect("reaper lock");
    reap_candidates(sys, me, &scripts)
        .into_iter()
        .filter(|&pid| {
            waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG))
                .is_ok_and(|status| status.pid().is_some())
        })
        .count()
}

/// Reaps orphans forever (spawn once per process).
pub async fn reap_forever(sys: &'static dyn Sys) {
    let mut tick = tokio::time::interval(REAP_INTERVAL);
    loop {
        tick.tick().await;
        reap_orphans(sys);
    }
}
