//! The sandbox every script runs in: own process group and cgroups, subreaper, cleared
//! environment, stdin /dev/null, no inherited fds, `no_new_privs`, rlimits, bounded output,
//! timeout and cancel with SIGTERM → grace → SIGKILL, drain grace, survivors after success.

pub mod cgroup;
pub mod reaper;
pub mod script;
pub mod spawn;
pub mod sys;
#[cfg(test)]
mod sys_double;
pub mod tree;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use outfitter_contract::event::OutputStream;
use outfitter_contract::exit_policy::Ending;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout};

use self::cgroup::{CgroupLayout, JobCgroup};
pub use self::spawn::Program;
use self::sys::{Sys, SysError};
use self::tree::JobScope;
use crate::config::Limits;
use crate::mask::Masker;
use crate::output::{OutputLine, OutputShared, pump};

/// How often the drain checks on the pipe readers.
const DRAIN_POLL: Duration = Duration::from_millis(20);
/// Longest drain beyond the grace, for processes that keep writing after the script exited.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Why a running script is stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    /// A person canceled the job.
    Cancel,
    /// The runner is shutting down past its grace period: kill, leave the job recoverable.
    Shutdown,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Exit status, signals as 128 + n.
    Exited(i32),
    TimedOut,
    Canceled,
    /// Killed because the runner stopped; nothing is decided for the job.
    Stopped,
}

impl Finish {
    /// The contract's view, or `None` when the attempt was stopped by the runner itself.
    pub fn ending(self) -> Option<Ending> {
        match self {
            Finish::Exited(c) => Some(Ending::Exited(c)),
            Finish::TimedOut => Some(Ending::TimedOut),
            Finish::Canceled => Some(Ending::Canceled),
            Finish::Stopped => None,
        }
    }

    /// The process exit status to report (`exec` exits with it).
    pub fn exit_status(self) -> i32 {
        match self {
            Finish::Exited(c) => c,
            Finish::TimedOut => outfitter_contract::exit_policy::code::TIMEOUT,
            Finish::Canceled | Finish::Stopped => 128 + libc::SIGTERM,
        }
    }
}

/// One script to run.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub program: Program,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    /// The job id as the script sees it in `JOB_ID` (marks its processes).
    pub job_id: String,
    /// Cgroup directory name, unique per attempt.
    pub cgroup_name: String,
    pub timeout: Duration,
    pub masker: Masker,
}

/// What happened.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub finish: Finish,
    pub duration: Duration,
    /// Processes a successful script left running (one line each).
    pub survivors: Vec<String>,
    pub output_bytes: u64,
    pub discarded_bytes: u64,
    /// Things worth telling the user (limits not applied, processes killed…), already masked.
    pub notes: Vec<String>,
}

/// Why an attempt could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot start the script: {source}")]
    Spawn { source: SysError },
}

/// Shared by every attempt of a runner.
pub struct Sandbox {
    pub limits: Limits,
    pub layout: CgroupLayout,
    pub sys: &'static dyn Sys,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.limits)
            .field("layout", &self.layout)
            .finish()
    }
}

/// The user's note when the job's processes could not be listed while stopping them.
fn listing_failed(t: &tree::Termination) -> Option<String> {
    (!t.errors.is_empty()).then(|| {
        format!(
            "listing the job's processes failed ({}); only cgroup.kill reached them meanwhile",
            t.errors.join("; ")
        )
    })
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or(status.signal().map(|s| 128 + s))
        .unwrap_or(255)
}

impl Sandbox {
    /// Runs one attempt. Masked output lines go to `lines` (closed when this returns, except
    /// for sends already in flight). `abort` stops the script from outside.
    pub async fn run(
        &self,
        attempt: &Attempt,
        lines: mpsc::Sender<OutputLine>,
        abort: watch::Receiver<Option<Abort>>,
    ) -> Result<Outcome, SandboxError> {
        self.run_notifying(attempt, lines, abort, || {}).await
    }

    /// [`Sandbox::run`], calling `on_spawn` once the script's process exists (the daemon's
    /// spawn latency).
    pub async fn run_notifying(
        &self,
        attempt: &Attempt,
        lines: mpsc::Sender<OutputLine>,
        mut abort: watch::Receiver<Option<Abort>>,
        on_spawn: impl FnOnce(),
    ) -> Result<Outcome, SandboxError> {
        let mut notes = Vec::new();
        let cgroup = if self.limits.cgroups {
            let (cg, cg_notes) = self
                .layout
                .create(self.sys, &attempt.cgroup_name, &self.limits);
            notes.extend(cg_notes);
            (!cg.is_empty()).then(|| Arc::new(cg))
        } else {
            None
        };
        let launch = spawn::Launch {
            program: attempt.program.clone(),
            cwd: attempt.cwd.clone(),
            env: attempt.env.clone(),
            cgroup_procs: cgroup
                .as_deref()
                .map(JobCgroup::procs_files)
                .unwrap_or_default(),
        };
        let started = Instant::now();
        let spawned = {
            let guard = reaper::SpawnGuard::lock();
            let spawned = self.sys.spawn(&launch, &self.limits);
            if let Ok(child) = &spawned {
                guard.register(child.id());
            }
            spawned
        };
        let mut child = match spawned {
            Ok(child) => child,
            Err(source) => {
                if let Some(cg) = &cgroup {
                    cg.remove(self.sys).await;
                }
                return Err(SandboxError::Spawn { source });
            }
        };
        on_spawn();
        let pid = child.id();
        let scope = JobScope {
            env_marker: format!("JOB_ID={}", attempt.job_id).into_bytes(),
            root_pid: pid,
            pgid: pid,
            runner_pid: self.sys.own_pid(),
            runner_pgid: self.sys.own_process_group(),
            cgroup: cgroup.clone(),
            orphans_come_to_runner: reaper::is_subreaper(),
        };
        let shared = Arc::new(OutputShared::new(
            attempt.masker.clone(),
            self.limits.line_max_bytes,
            self.limits.output_max_bytes,
            lines,
        ));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            let s = shared.clone();
            readers.push(tokio::spawn(async move {
                pump(out, OutputStream::Stdout, &s).await
            }));
        }
        if let Some(err) = child.stderr.take() {
            let s = shared.clone();
            readers.push(tokio::spawn(async move {
                pump(err, OutputStream::Stderr, &s).await
            }));
        }

        enum Waited {
            Exit(i32),
            Timeout,
            Abort(Option<Abort>),
        }
        let waited = tokio::select! {
            status = child.wait() => Waited::Exit(status.map(exit_code).unwrap_or(255)),
            () = tokio::time::sleep(attempt.timeout) => Waited::Timeout,
            r = abort.wait_for(Option::is_some) => Waited::Abort(r.ok().and_then(|v| *v)),
        };
        let (finish, what) = match waited {
            Waited::Exit(code) => (Finish::Exited(code), None),
            Waited::Timeout => (
                Finish::TimedOut,
                Some(format!("timed out after {}s", attempt.timeout.as_secs())),
            ),
            Waited::Abort(Some(Abort::Shutdown)) => {
                (Finish::Stopped, Some("runner stopping".to_owned()))
            }
            Waited::Abort(_) => (Finish::Canceled, Some("canceled".to_owned())),
        };
        if let Some(what) = what {
            let t = tree::terminate(self.sys, &scope, self.limits.kill_grace).await;
            notes.push(format!(
                "{what}; stopped {} process(es), {} needed SIGKILL",
                t.found, t.killed
            ));
            notes.extend(listing_failed(&t));
        }
        Ok(self
            .conclude(
                finish, child, scope, readers, shared, cgroup, notes, started,
            )
            .await)
    }

    /// Waits for the pipe readers: as long as they hand lines on (a slow consumer loses
    /// nothing), until every open pipe has been idle for the drain grace (a daemon holding
    /// stdout cannot hang the job), and at most [`DRAIN_LIMIT`] beyond the grace (a daemon
    /// that keeps talking cannot either). Returns whether all pipes reached EOF.
    async fn drain<F: std::future::Future + Unpin>(
        &self,
        readers: &mut F,
        shared: &OutputShared,
    ) -> bool {
        let since = Instant::now();
        let give_up = since + self.limits.drain_grace + DRAIN_LIMIT;
        loop {
            if timeout(DRAIN_POLL, &mut *readers).await.is_ok() {
                return true;
            }
            let idle = shared.idle_for().map(|d| d.min(since.elapsed()));
            if idle.is_some_and(|d| d >= self.limits.drain_grace) || Instant::now() >= give_up {
                return false;
            }
        }
    }

    /// After the script's end: reap it, drain output, kill or report what is left, clean up.
    #[allow(clippy::too_many_arguments)]
    async fn conclude(
        &self,
        mut finish: Finish,
        mut child: script::Script,
        scope: JobScope,
        readers: Vec<tokio::task::JoinHandle<()>>,
        shared: Arc<OutputShared>,
        cgroup: Option<Arc<JobCgroup>>,
        mut notes: Vec<String>,
        started: Instant,
    ) -> Outcome {
        // The script itself is dead or dying: collect its status (reaped through its pidfd).
        if let Ok(Ok(status)) = timeout(tree::KILL_DEADLINE, child.wait()).await
            && let Finish::Exited(_) = finish
        {
            finish = Finish::Exited(exit_code(status));
        }
        reaper::forget(scope.root_pid);
        let mut readers = futures_util::future::join_all(readers);
        let mut survivors = Vec::new();
        if finish == Finish::Exited(0) {
            let drained = self.drain(&mut readers, &shared).await;
            // Success: what the script left running is deliberate (a service); report it.
            survivors = tree::describe_members(self.sys, &scope).unwrap_or_else(|e| {
                notes.push(format!("cannot list the processes left running: {e}"));
                Vec::new()
            });
            if !drained {
                notes.push(format!(
                    "output still open {}s after the script exited; no longer read",
                    self.limits.drain_grace.as_secs()
                ));
            }
        } else {
            let t = tree::terminate(self.sys, &scope, self.limits.kill_grace).await;
            if t.found > 0 && matches!(finish, Finish::Exited(_)) {
                notes.push(format!(
                    "the script failed; stopped {} process(es) it left behind",
                    t.found
                ));
            }
            if !t.remaining.is_empty() {
                notes.push(format!(
                    "{} process(es) could not be killed",
                    t.remaining.len()
                ));
            }
            notes.extend(listing_failed(&t));
            // Every writer is dead: the pipes reach EOF once what they hold is delivered.
            self.drain(&mut readers, &shared).await;
        }
        // Late output is read and dropped from here on; the consumer's channel closes.
        shared.detach();
        if let Err(e) = reaper::reap_orphans(self.sys) {
            tracing::warn!(error = %e, "cannot look for orphans to reap");
        }
        if let Some(cg) = &cgroup
            && survivors.is_empty()
        {
            cg.remove(self.sys).await;
        }
        Outcome {
            finish,
            duration: started.elapsed(),
            survivors: survivors.iter().map(|s| shared.mask(s)).collect(),
            output_bytes: shared.total_bytes(),
            discarded_bytes: shared.discarded_bytes(),
            notes,
        }
    }
}

#[cfg(test)]
mod run_tests;
