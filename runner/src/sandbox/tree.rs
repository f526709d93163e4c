//! Which processes belong to a job, and how a job's tree is stopped: SIGTERM to all, a grace
//! period, then SIGKILL to every member until none is left.
//!
//! A process belongs to a job when it is in the job's cgroups, in its process group, is a
//! child of the runner carrying the job's `JOB_ID=<id>` environment entry (a `setsid` or
//! double-fork escapee whose parent died, reparented to the runner as child subreaper), or
//! descends from any of those. An escapee whose parent lives descends from a member, so only
//! the runner's children need the (costly) environment test; without the subreaper, orphans
//! go to PID 1 and every process is tested. The runner itself, PID 1 and zombies never
//! belong; a process group id ≤ 1 is never signalled.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::{Instant, sleep};

use super::cgroup::JobCgroup;
use super::sys::{ProcInfo, Sys, SysError, SysResult};

/// After SIGKILL, how long to keep killing (new forks, slow exits) before giving up.
pub const KILL_DEADLINE: Duration = Duration::from_secs(5);
/// How often membership is re-read while waiting for processes to exit.
const POLL: Duration = Duration::from_millis(25);

/// What identifies one job's processes.
#[derive(Debug, Clone)]
pub struct JobScope {
    /// `JOB_ID=<id>` as it appears in /proc/<pid>/environ.
    pub env_marker: Vec<u8>,
    /// The script's process (also its process group leader).
    pub root_pid: i32,
    pub pgid: i32,
    /// The runner's own pid and process group: never signalled.
    pub runner_pid: i32,
    pub runner_pgid: i32,
    pub cgroup: Option<Arc<JobCgroup>>,
    /// Whether every orphan of the job is reparented to this runner (it is a child subreaper
    /// and started the job). False for leftovers of a previous runner, which went to PID 1.
    pub orphans_come_to_runner: bool,
}

impl JobScope {
    /// Whether `p` needs the environment-marker test (see the module doc).
    fn may_carry_marker(&self, p: &ProcInfo) -> bool {
        !self.orphans_come_to_runner || p.ppid == self.runner_pid
    }
}

/// Decides membership from one snapshot (pure; see the module doc for the rules).
pub fn select_members(
    procs: &[ProcInfo],
    scope: &JobScope,
    cgroup_pids: &[i32],
    marked: impl Fn(i32) -> bool,
) -> BTreeSet<i32> {
    // Kernel threads need no rule: they carry no environment, are in no user process group,
    // and descend from kthreadd, never from a member.
    let eligible = |p: &ProcInfo| p.pid > 1 && p.pid != scope.runner_pid && !p.is_dead();
    let alive: Vec<&ProcInfo> = procs.iter().filter(|p| eligible(p)).collect();
    let in_cgroup: BTreeSet<i32> = cgroup_pids.iter().copied().collect();
    let mut members: BTreeSet<i32> = alive
        .iter()
        .filter(|p| {
            p.pid == scope.root_pid
                || (scope.pgid > 1 && p.pgid == scope.pgid)
                || in_cgroup.contains(&p.pid)
                || (scope.may_carry_marker(p) && marked(p.pid))
        })
        .map(|p| p.pid)
        .collect();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for p in &alive {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut stack: Vec<i32> = members.iter().copied().collect();
    while let Some(pid) = stack.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if members.insert(child) {
                stack.push(child);
            }
        }
    }
    members
}

/// The job's live processes right now, with the snapshot they were chosen from. A process
/// whose environment cannot be read is logged and not taken for the job's (killing a
/// stranger is worse than missing an escapee, which the cgroup still catches).
pub fn snapshot(sys: &dyn Sys, scope: &JobScope) -> SysResult<(BTreeSet<i32>, Vec<ProcInfo>)> {
    let procs = sys.processes()?;
    let cg = match scope.cgroup.as_deref() {
        Some(c) => c.pids(sys)?,
        None => Vec::new(),
    };
    let members = select_members(&procs, scope, &cg, |pid| {
        sys.has_env_entry(pid, &scope.env_marker)
            .unwrap_or_else(|e| {
                tracing::warn!(pid, error = %e, "cannot test a process for the job marker");
                false
            })
    });
    Ok((members, procs))
}

/// The job's live processes right now.
pub fn members(sys: &dyn Sys, scope: &JobScope) -> SysResult<BTreeSet<i32>> {
    Ok(snapshot(sys, scope)?.0)
}

/// A signal that did not arrive: the process exiting meanwhile is the normal race, anything
/// else is logged.
fn log_signal_error(result: SysResult<()>) {
    if let Err(e) = result
        && !e.is_gone()
    {
        tracing::warn!(error = %e, "cannot signal a process of the job");
    }
}

/// Sends `signal` to every member, and to the job's process group while a member still
/// carries it (a group id is never reused while the group exists; an empty group's id may be).
fn signal_members(
    sys: &dyn Sys,
    scope: &JobScope,
    members: &BTreeSet<i32>,
    procs: &[ProcInfo],
    signal: Signal,
) {
    let group_alive = procs
        .iter()
        .any(|p| members.contains(&p.pid) && p.pgid == scope.pgid);
    if scope.pgid > 1 && scope.pgid != scope.runner_pgid && group_alive {
        log_signal_error(sys.killpg(scope.pgid, signal));
    }
    for &pid in members {
        if pid > 1 && pid != scope.runner_pid {
            log_signal_error(sys.kill(pid, signal));
        }
    }
}

/// How stopping a tree went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Termination {
    /// Processes found when stopping began.
    pub found: usize,
    /// Processes that needed SIGKILL.
    pub killed: usize,
    /// Processes still alive when the runner gave up (should be none).
    pub remaining: Vec<i32>,
    /// Why the job's processes could not be listed, when they could not (each cause once);
    /// `cgroup.kill` was still used then.
    pub errors: Vec<String>,
}

impl Termination {
    fn failed(&mut self, e: &SysError) {
        let text = e.to_string();
        if !self.errors.contains(&text) {
            tracing::warn!(error = %text, "stopping a job's processes");
            self.errors.push(text);
        }
    }
}

/// `cgroup.kill` for the job, where it has one.
fn kill_cgroup(sys: &dyn Sys, scope: &JobScope, report: &mut Termination) {
    if let Some(cg) = scope.cgroup.as_deref()
        && let Err(e) = cg.kill(sys)
    {
        report.failed(&e);
    }
}

/// SIGTERM to every member, up to `grace` for them to exit, then SIGKILL (and `cgroup.kill`)
/// until none is left or [`KILL_DEADLINE`] passes. When the processes cannot be listed, the
/// grace is skipped and only `cgroup.kill` reaches them, retried until the deadline.
pub async fn terminate(sys: &dyn Sys, scope: &JobScope, grace: Duration) -> Termination {
    let mut report = Termination::default();
    let mut current = BTreeSet::new();
    match snapshot(sys, scope) {
        Ok((found, procs)) => {
            report.found = found.len();
            if found.is_empty() {
                return report;
            }
            signal_members(sys, scope, &found, &procs, Signal::SIGTERM);
            current = found;
            let grace_end = Instant::now() + grace;
            while !current.is_empty() && Instant::now() < grace_end {
                sleep(POLL.min(grace_end - Instant::now())).await;
                match members(sys, scope) {
                    Ok(m) => current = m,
                    Err(e) => {
                        report.failed(&e);
                        break;
                    }
                }
            }
        }
        Err(e) => report.failed(&e),
    }
    let kill_end = Instant::now() + KILL_DEADLINE;
    let mut first_kill = true;
    loop {
        match snapshot(sys, scope) {
            Ok((now_members, procs)) => {
                current = now_members;
                if current.is_empty() {
                    break;
                }
                if first_kill {
                    report.killed = current.len();
                    first_kill = false;
                }
                kill_cgroup(sys, scope, &mut report);
                signal_members(sys, scope, &current, &procs, Signal::SIGKILL);
            }
            Err(e) => {
                report.failed(&e);
                kill_cgroup(sys, scope, &mut report);
            }
        }
        if Instant::now() >= kill_end {
            break;
        }
        sleep(POLL).await;
    }
    report.remaining = current.into_iter().collect();
    report
}

/// Whether the job may still have a member, decided without scanning every process: by the
/// rules of [`select_members`], with the script reaped, every member descends from a process
/// of the job's group, of its cgroups, or from a marked child of the runner; when none of
/// those exists, nothing does. `true` whenever that cannot be told cheaply, or a check
/// fails (the full scan then decides, and reports its own failure).
pub fn may_have_members(sys: &dyn Sys, scope: &JobScope) -> bool {
    if !scope.orphans_come_to_runner {
        return true;
    }
    let cheap = || -> SysResult<bool> {
        if scope.pgid > 1 && sys.group_exists(scope.pgid)? {
            return Ok(true);
        }
        if let Some(cg) = scope.cgroup.as_deref()
            && !cg.pids(sys)?.is_empty()
        {
            return Ok(true);
        }
        let Some(children) = sys.runner_children()? else {
            return Ok(true);
        };
        for pid in children {
            if pid != scope.root_pid && sys.has_env_entry(pid, &scope.env_marker)? {
                return Ok(true);
            }
        }
        Ok(false)
    };
    cheap().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot rule out survivors cheaply; scanning every process");
        true
    })
}

/// One line per live member, for the job's `survivors` (no process scan when
/// [`may_have_members`] rules every member out). A member that exits while being described
/// is no survivor; one that cannot be described is listed by pid with the reason.
pub fn describe_members(sys: &dyn Sys, scope: &JobScope) -> SysResult<Vec<String>> {
    if !may_have_members(sys, scope) {
        return Ok(Vec::new());
    }
    Ok(members(sys, scope)?
        .into_iter()
        .filter_map(|pid| match sys.describe(pid) {
            Ok(line) => Some(line),
            Err(e) if e.is_gone() => None,
            Err(e) => Some(format!("{pid} (not described: {e})")),
        })
        .collect())
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
