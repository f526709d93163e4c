//! Per-job cgroups, where the host allows them.
//!
//! - cgroup v2 (pure, at /sys/fs/cgroup, or the hybrid "unified" tree at
//!   /sys/fs/cgroup/unified): one directory per job, whose `cgroup.kill` kills everything in it
//!   at once, `setsid` escapees and double-forked daemons included; `memory.max` and
//!   `pids.max` when those controllers are available there.
//! - cgroup v1 `memory` and `pids` hierarchies, where they are mounted and writable: the same
//!   limits (`memory.limit_in_bytes`, `pids.max`).
//!
//! Everything is best effort: what cannot be created is reported as a note and the job runs
//! with the process group and the subreaper alone. Every file operation goes through [`Sys`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::sys::{Sys, SysError, SysResult};
use crate::config::Limits;

/// The root of the cgroup filesystems.
pub const ROOT: &str = "/sys/fs/cgroup";
/// Name of the directory that holds the job cgroups in every hierarchy.
pub const JOBS_DIR: &str = "outfitter";
/// How long [`JobCgroup::remove`] waits for exiting processes to leave.
const REMOVE_WAIT: Duration = Duration::from_secs(2);

/// Where job cgroups can be created on this host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupLayout {
    /// Parent directory of job cgroups in the v2 hierarchy.
    pub v2_jobs: Option<PathBuf>,
    /// Whether the v2 parent passes the memory and pids controllers down.
    pub v2_controllers: bool,
    /// Parent directories in the v1 memory and pids hierarchies.
    pub v1_memory_jobs: Option<PathBuf>,
    pub v1_pids_jobs: Option<PathBuf>,
}

/// Which cgroup filesystems a host mounts (read only; nothing is created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// Pure v2 at the root.
    PureV2,
    /// v1 controllers, each under `<root>/<controller>`, with the v2 tree at `<root>/unified`
    /// when it is mounted.
    Hybrid { unified: bool },
}

impl Hierarchy {
    /// What `root` holds.
    pub fn probe(sys: &dyn Sys, root: &Path) -> SysResult<Self> {
        if sys.exists(&root.join("cgroup.controllers"))? {
            return Ok(Hierarchy::PureV2);
        }
        Ok(Hierarchy::Hybrid {
            unified: sys.exists(&root.join("unified").join("cgroup.procs"))?,
        })
    }
}

impl CgroupLayout {
    /// A layout without cgroups (disabled, or nothing writable).
    pub fn none() -> Self {
        CgroupLayout::default()
    }

    /// Finds what this host offers under [`ROOT`] and prepares the parent directories. On
    /// pure v2, `delegated` (the daemon under its unit's `Delegate=yes`) lets the runner move
    /// itself into a `supervisor` leaf so the memory and pids controllers can be passed
    /// down; `exec` leaves its caller's cgroup alone.
    pub fn detect(sys: &dyn Sys, delegated: bool) -> (Self, Vec<String>) {
        Self::detect_at(sys, Path::new(ROOT), delegated)
    }

    /// [`CgroupLayout::detect`] below another root.
    pub fn detect_at(sys: &dyn Sys, root: &Path, delegated: bool) -> (Self, Vec<String>) {
        let mut notes = Vec::new();
        let mut layout = CgroupLayout::none();
        let unified = match Hierarchy::probe(sys, root) {
            Ok(Hierarchy::PureV2) => {
                // Pure v2: jobs go below the runner's own cgroup (delegated by the unit file).
                match prepare_pure_v2(sys, root, delegated) {
                    Ok((dir, controllers)) => {
                        layout.v2_jobs = Some(dir);
                        layout.v2_controllers = controllers;
                    }
                    Err(e) => notes.push(format!("cgroup v2 unavailable: {e}")),
                }
                return (layout, notes);
            }
            Ok(Hierarchy::Hybrid { unified }) => unified,
            Err(e) => {
                notes.push(format!("cannot tell which cgroups this host has: {e}"));
                return (layout, notes);
            }
        };
        if unified {
            let dir = root.join("unified").join(JOBS_DIR);
            match sys.create_dir(&dir) {
                Ok(()) => layout.v2_jobs = Some(dir),
                Err(e) => notes.push(format!("cgroup v2 (unified) not writable: {e}")),
            }
        }
        for (controller, slot) in [
            ("memory", &mut layout.v1_memory_jobs),
            ("pids", &mut layout.v1_pids_jobs),
        ] {
            let dir = root.join(controller);
            match sys.exists(&dir.join("cgroup.procs")) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    notes.push(format!("cgroup v1 {controller} unreadable: {e}"));
                    continue;
                }
            }
            let jobs = dir.join(JOBS_DIR);
            match sys.create_dir(&jobs) {
                Ok(()) => *slot = Some(jobs),
                Err(e) => notes.push(format!("cgroup v1 {controller} not writable: {e}")),
            }
        }
        (layout, notes)
    }

    /// Whether no hierarchy can hold job cgroups.
    pub fn is_none(&self) -> bool {
        self.v2_jobs.is_none() && self.v1_memory_jobs.is_none() && self.v1_pids_jobs.is_none()
    }

    fn parents(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.v2_jobs, &self.v1_memory_jobs, &self.v1_pids_jobs]
            .into_iter()
            .flatten()
    }

    /// Removes job cgroups that are empty (left by a previous runner). Returns what failed;
    /// a cgroup that still holds a process (a survivor) is kept and not reported.
    pub fn remove_stale(&self, sys: &dyn Sys) -> Vec<SysError> {
        let mut errors = Vec::new();
        for parent in self.parents() {
            match sys.subdirs(parent) {
                Ok(dirs) => {
                    for dir in dirs {
                        match sys.remove_dir(&dir) {
                            Err(e) if e.errno() != Some(nix::errno::Errno::EBUSY) => {
                                errors.push(e);
                            }
                            _ => {}
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Where the job cgroup `name` lives in every hierarchy, whether or not it exists.
    pub fn job_dirs(&self, name: &str) -> Vec<PathBuf> {
        self.parents().map(|p| p.join(name)).collect()
    }

    /// Whether job cgroups here can hold a memory (or else pids) limit.
    pub fn can_limit(&self, memory: bool) -> bool {
        let v1 = if memory {
            &self.v1_memory_jobs
        } else {
            &self.v1_pids_jobs
        };
        v1.is_some() || (self.v2_jobs.is_some() && self.v2_controllers)
    }

    /// The job cgroup directories named `name` that exist, in every hierarchy.
    pub fn dirs_named(&self, sys: &dyn Sys, name: &str) -> SysResult<JobCgroup> {
        let existing = |parent: &PathBuf| -> SysResult<Option<PathBuf>> {
            let dir = parent.join(name);
            Ok(sys.exists(&dir)?.then_some(dir))
        };
        let mut cg = JobCgroup::default();
        if let Some(parent) = &self.v2_jobs {
            cg.v2 = existing(parent)?;
        }
        for parent in [&self.v1_memory_jobs, &self.v1_pids_jobs]
            .into_iter()
            .flatten()
        {
            cg.v1.extend(existing(parent)?);
        }
        Ok(cg)
    }

    /// Creates the cgroups of one job and applies the limits; what fails becomes a note.
    pub fn create(&self, sys: &dyn Sys, name: &str, limits: &Limits) -> (JobCgroup, Vec<String>) {
        let mut notes = Vec::new();
        let mut cg = JobCgroup::default();
        if let Some(parent) = &self.v2_jobs {
            let dir = parent.join(name);
            match sys.create_dir(&dir) {
                Ok(()) => {
                    if self.v2_controllers {
                        if let Some(m) = limits.memory_max_bytes {
                            set(sys, &dir, "memory.max", m, &mut notes);
                        }
                        if let Some(p) = limits.pids_max {
                            set(sys, &dir, "pids.max", p, &mut notes);
                        }
                    }
                    cg.v2 = Some(dir);
                }
                Err(e) => notes.push(format!("cannot create a cgroup: {e}")),
            }
        }
        let wanted = [
            (
                &self.v1_memory_jobs,
                "memory.limit_in_bytes",
                limits.memory_max_bytes,
            ),
            (&self.v1_pids_jobs, "pids.max", limits.pids_max),
        ];
        for (parent, file, limit) in wanted {
            let (Some(parent), Some(limit)) = (parent, limit) else {
                continue;
            };
            let dir = parent.join(name);
            match sys.create_dir(&dir) {
                Ok(()) => {
                    set(sys, &dir, file, limit, &mut notes);
                    cg.v1.push(dir);
                }
                Err(e) => notes.push(format!("cannot create a cgroup: {e}")),
            }
        }
        (cg, notes)
    }
}

fn set(sys: &dyn Sys, dir: &Path, file: &str, value: u64, notes: &mut Vec<String>) {
    if let Err(e) = sys.write(&dir.join(file), &value.to_string()) {
        notes.push(format!("cannot set {file}: {e}"));
    }
}

/// Pure v2: makes `<own cgroup>/outfitter` the parent of job cgroups. To pass the memory and
/// pids controllers down, a cgroup must hold no processes itself, so the runner first moves
/// into `<own cgroup>/supervisor` (what systemd's `Delegate=yes` allows). A refused
/// `subtree_control` write only means no limits there, so it is not an error.
fn prepare_pure_v2(sys: &dyn Sys, root: &Path, delegated: bool) -> SysResult<(PathBuf, bool)> {
    let own = sys
        .read(Path::new("/proc/self/cgroup"))?
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        .ok_or_else(|| {
            SysError::new(
                "read /proc/self/cgroup",
                std::io::Error::other("no v2 entry"),
            )
        })?;
    let own_dir = root.join(own.trim_start_matches('/'));
    let jobs = own_dir.join(JOBS_DIR);
    sys.create_dir(&jobs)?;
    let enable = |dir: &Path| match sys.write(&dir.join("cgroup.subtree_control"), "+memory +pids")
    {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, "controllers not passed down");
            false
        }
    };
    let mut controllers = enable(&own_dir);
    if !controllers && delegated && own != "/" {
        let supervisor = own_dir.join("supervisor");
        sys.create_dir(&supervisor)?;
        sys.write(&supervisor.join("cgroup.procs"), &sys.own_pid().to_string())?;
        controllers = enable(&own_dir);
    }
    Ok((jobs.clone(), controllers && enable(&jobs)))
}

/// The cgroup directories of one job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobCgroup {
    pub(crate) v2: Option<PathBuf>,
    pub(crate) v1: Vec<PathBuf>,
}

impl JobCgroup {
    /// Every `cgroup.procs` file the script must join, v2 first.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs().map(|d| d.join("cgroup.procs")).collect()
    }

    fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.v2.iter().chain(self.v1.iter())
    }

    /// Whether any cgroup was created.
    pub fn is_empty(&self) -> bool {
        self.v2.is_none() && self.v1.is_empty()
    }

    /// Processes in any of the job's cgroups (a cgroup removed meanwhile holds none).
    pub fn pids(&self, sys: &dyn Sys) -> SysResult<Vec<i32>> {
        let mut out = Vec::new();
        for file in self.procs_files() {
            match sys.read(&file) {
                Ok(text) => out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
                Err(e) if e.is_gone() => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Writes `1` to `cgroup.kill` (v2): the kernel kills every process inside. `Ok(false)`
    /// when this kernel or layout has no `cgroup.kill` (v1 only, or before Linux 5.14).
    pub fn kill(&self, sys: &dyn Sys) -> SysResult<bool> {
        let Some(dir) = &self.v2 else {
            return Ok(false);
        };
        let file = dir.join("cgroup.kill");
        if !sys.exists(&file)? {
            return Ok(false);
        }
        sys.write(&file, "1")?;
        Ok(true)
    }

    /// Removes the directories once empty (waits briefly for exiting processes to leave).
    /// Returns false when something still lives inside (a survivor keeps its cgroup) or a
    /// directory cannot be removed (logged).
    pub async fn remove(&self, sys: &dyn Sys) -> bool {
        let deadline = tokio::time::Instant::now() + REMOVE_WAIT;
        loop {
            match self.pids(sys) {
                Ok(pids) if pids.is_empty() => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot tell whether the job's cgroup is empty");
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut all = true;
        for dir in self.dirs() {
            // EBUSY can linger for a moment after the last process left.
            let mut last = None;
            for _ in 0..50 {
                match sys.remove_dir(dir) {
                    Ok(()) => {
                        last = None;
                        break;
                    }
                    Err(e) if e.is_gone() => {
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if let Some(e) = last {
                tracing::warn!(error = %e, "the job's cgroup is left behind");
                all = false;
            }
        }
        all
    }
}

#[cfg(test)]
#[path = "cgroup_tests.rs"]
mod tests;
