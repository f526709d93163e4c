//! The runner as child subreaper: processes of a job that `setsid` or double-fork away are
//! reparented to the runner instead of PID 1, so they can still be found and killed; once
//! dead they must be reaped here, by pid. `waitpid(-1)` is never used: it would steal the
//! exit status of the scripts tokio is waiting for, so those pids are skipped.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

use super::procs::Sys;

/// How often zombies left by orphans are collected.
pub const REAP_INTERVAL: Duration = Duration::from_secs(1);

static SCRIPTS: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();

fn scripts() -> &'static Mutex<HashSet<i32>> {
    SCRIPTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Makes this process a child subreaper. Returns whether the kernel agreed.
pub fn become_subreaper() -> bool {
    nix::sys::prctl::set_child_subreaper(true).is_ok()
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

/// Reaps every zombie child of the runner that is not a script tokio waits for. Returns how
/// many were reaped.
pub fn reap_orphans(sys: &dyn Sys) -> usize {
    let me = std::process::id() as i32;
    let scripts = scripts().lock().expect("reaper lock");
    let mut reaped = 0;
    for p in sys.processes() {
        if p.ppid == me
            && p.is_dead()
            && !scripts.contains(&p.pid)
            && let Ok(status) = waitpid(Pid::from_raw(p.pid), Some(WaitPidFlag::WNOHANG))
            && status.pid().is_some()
        {
            reaped += 1;
        }
    }
    reaped
}

/// Reaps orphans forever (spawn once per process).
pub async fn reap_forever(sys: &'static dyn Sys) {
    let mut tick = tokio::time::interval(REAP_INTERVAL);
    loop {
        tick.tick().await;
        reap_orphans(sys);
    }
}
