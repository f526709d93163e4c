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
//! with the process group and the subreaper alone.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Limits;

const ROOT: &str = "/sys/fs/cgroup";
/// Name of the directory that holds the job cgroups in every hierarchy.
pub const JOBS_DIR: &str = "outfitter";

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

impl CgroupLayout {
    /// A layout without cgroups (disabled, or nothing writable).
    pub fn none() -> Self {
        CgroupLayout::default()
    }

    /// Finds what this host offers and prepares the parent directories. On pure v2,
    /// `delegated` (the daemon under its unit's `Delegate=yes`) lets the runner move itself
    /// into a `supervisor` leaf so the memory and pids controllers can be passed down; `exec`
    /// leaves its caller's cgroup alone.
    pub fn detect(delegated: bool) -> (Self, Vec<String>) {
        let mut notes = Vec::new();
        let root = Path::new(ROOT);
        let mut layout = CgroupLayout::none();
        if root.join("cgroup.controllers").exists() {
            // Pure v2: jobs go below the runner's own cgroup (delegated by the unit file).
            match prepare_pure_v2(root, delegated) {
                Ok((dir, controllers)) => {
                    layout.v2_jobs = Some(dir);
                    layout.v2_controllers = controllers;
                }
                Err(e) => notes.push(format!("cgroup v2 unavailable: {e}")),
            }
            return (layout, notes);
        }
        let unified = root.join("unified");
        if unified.join("cgroup.procs").exists() {
            let dir = unified.join(JOBS_DIR);
            match fs::create_dir_all(&dir) {
                Ok(()) => layout.v2_jobs = Some(dir),
                Err(e) => notes.push(format!("cgroup v2 (unified) not writable: {e}")),
            }
        }
        for (controller, slot) in [
            ("memory", &mut layout.v1_memory_jobs),
            ("pids", &mut layout.v1_pids_jobs),
        ] {
            let dir = root.join(controller);
            if !dir.join("cgroup.procs").exists() {
                continue;
            }
            let jobs = dir.join(JOBS_DIR);
            match fs::create_dir_all(&jobs) {
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

    /// Removes job cgroups that are empty (left by a previous runner).
    pub fn remove_stale(&self) {
        for parent in [&self.v2_jobs, &self.v1_memory_jobs, &self.v1_pids_jobs]
            .into_iter()
            .flatten()
        {
            if let Ok(entries) = fs::read_dir(parent) {
                for e in entries.flatten() {
                    if e.path().is_dir() {
                        let _ = fs::remove_dir(e.path());
                    }
                }
            }
        }
    }

    /// The job cgroup directories named `name`, in every hierarchy (whether or not they exist).
    pub fn dirs_named(&self, name: &str) -> JobCgroup {
        JobCgroup {
            v2: self
                .v2_jobs
                .as_ref()
                .map(|d| d.join(name))
                .filter(|d| d.is_dir()),
            v1: [&self.v1_memory_jobs, &self.v1_pids_jobs]
                .into_iter()
                .flatten()
                .map(|d| d.join(name))
                .filter(|d| d.is_dir())
                .collect(),
        }
    }

    /// Creates the cgroups of one job and applies the limits.
    pub fn create(&self, name: &str, limits: &Limits) -> (JobCgroup, Vec<String>) {
        let mut notes = Vec::new();
        let mut cg = JobCgroup::default();
        if let Some(parent) = &self.v2_jobs {
            let dir = parent.join(name);
            match fs::create_dir_all(&dir) {
                Ok(()) => {
                    if self.v2_controllers {
                        if let Some(m) = limits.memory_max_bytes {
                            set(&dir, "memory.max", m, &mut notes);
                        }
                        if let Some(p) = limits.pids_max {
                            set(&dir, "pids.max", p, &mut notes);
                        }
                    }
                    cg.v2 = Some(dir);
                }
                Err(e) => notes.push(format!("cannot create cgroup {}: {e}", dir.display())),
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
            match fs::create_dir_all(&dir) {
                Ok(()) => {
                    set(&dir, file, limit, &mut notes);
                    cg.v1.push(dir);
                }
                Err(e) => notes.push(format!("cannot create cgroup {}: {e}", dir.display())),
            }
        }
        (cg, notes)
    }
}

fn set(dir: &Path, file: &str, value: u64, notes: &mut Vec<String>) {
    if let Err(e) = fs::write(dir.join(file), value.to_string()) {
        notes.push(format!("cannot set {file} in {}: {e}", dir.display()));
    }
}

/// Pure v2: makes `<own cgroup>/outfitter` the parent of job cgroups. To pass the memory and
/// pids controllers down, a cgroup must hold no processes itself, so the runner first moves
/// into `<own cgroup>/supervisor` (what systemd's `Delegate=yes` allows).
fn prepare_pure_v2(root: &Path, delegated: bool) -> std::io::Result<(PathBuf, bool)> {
    let own = fs::read_to_string("/proc/self/cgroup")?
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        .ok_or_else(|| std::io::Error::other("no v2 entry in /proc/self/cgroup"))?;
    let own_dir = root.join(own.trim_start_matches('/'));
    let jobs = own_dir.join(JOBS_DIR);
    fs::create_dir_all(&jobs)?;
    let enable =
        |dir: &Path| fs::write(dir.join("cgroup.subtree_control"), "+memory +pids").is_ok();
    let mut controllers = enable(&own_dir);
    if !controllers && delegated && own != "/" {
        let supervisor = own_dir.join("supervisor");
        fs::create_dir_all(&supervisor)?;
        fs::write(
            supervisor.join("cgroup.procs"),
            std::process::id().to_string(),
        )?;
        controllers = enable(&own_dir);
    }
    Ok((jobs.clone(), controllers && enable(&jobs)))
}

/// The cgroup directories of one job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobCgroup {
    v2: Option<PathBuf>,
    v1: Vec<PathBuf>,
}

impl JobCgroup {
    /// Every `cgroup.procs` file the script must join, v2 first.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.v2
            .iter()
            .chain(self.v1.iter())
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// Whether any cgroup was created.
    pub fn is_empty(&self) -> bool {
        self.v2.is_none() && self.v1.is_empty()
    }

    /// Whether the v2 `cgroup.kill` is available.
    pub fn can_kill(&self) -> bool {
        self.v2
            .as_ref()
            .is_some_and(|d| d.join("cgroup.kill").exists())
    }

    /// Processes in any of the job's cgroups.
    pub fn pids(&self) -> Vec<i32> {
        let mut out: Vec<i32> = self
            .procs_files()
            .iter()
            .filter_map(|f| fs::read_to_string(f).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Writes `1` to `cgroup.kill` (v2): the kernel kills every process inside.
    pub fn kill(&self) -> bool {
        let Some(dir) = &self.v2 else { return false };
        fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.kill"))
            .and_then(|mut f| f.write_all(b"1"))
            .is_ok()
    }

    /// Removes the directories once empty (waits briefly for exiting processes to leave).
    /// Returns false when something still lives inside (a survivor keeps its cgroup).
    pub async fn remove(&self) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            if self.pids().is_empty() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut all = true;
        for dir in self.v2.iter().chain(self.v1.iter()) {
            // EBUSY can linger for a moment after the last process left.
            let mut ok = false;
            for _ in 0..50 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    ok = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            all &= ok;
        }
        all
    }
}
