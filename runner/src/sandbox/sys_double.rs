//! A recording double of [`Sys`] for the sandbox's unit tests: a process table that reacts
//! to signals (a process dies on SIGTERM unless stubborn, on SIGKILL always), one job cgroup
//! at [`JOB_CG`], an in-memory cgroup filesystem, and failures injected per call. Calls with
//! an effect, and the costly ones (`scan`, `environ`), are recorded; plain reads are not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::sys::signal::Signal;

use super::cgroup::JobCgroup;
use super::script::Script;
use super::spawn::{self, Launch, Program};
use super::sys::{ProcInfo, Sys, SysError, SysResult};
use crate::config::Limits;

/// The double's own pid and process group.
pub(super) const RUNNER: i32 = 100;
/// The job cgroup whose `cgroup.procs` lists [`FakeSys::cgroup`] and whose `cgroup.kill`
/// kills them.
pub(super) const JOB_CG: &str = "/cg/unified/outfitter/j.1";

pub(super) fn proc(pid: i32, ppid: i32, pgid: i32) -> ProcInfo {
    ProcInfo {
        pid,
        ppid,
        pgid,
        state: 'S',
        name: format!("p{pid}"),
    }
}

pub(super) fn zombie(pid: i32, ppid: i32, pgid: i32) -> ProcInfo {
    ProcInfo {
        state: 'Z',
        ..proc(pid, ppid, pgid)
    }
}

/// The job cgroup at [`JOB_CG`] (v2 only).
pub(super) fn job_cgroup() -> JobCgroup {
    JobCgroup {
        v2: Some(PathBuf::from(JOB_CG)),
        v1: Vec::new(),
    }
}

#[derive(Default)]
pub(super) struct FakeSys {
    pub procs: Mutex<Vec<ProcInfo>>,
    /// Processes carrying the job marker in their environment.
    pub marked: Vec<i32>,
    /// Processes that survive SIGTERM.
    pub stubborn: Vec<i32>,
    /// Processes in [`JOB_CG`].
    pub cgroup: Mutex<Vec<i32>>,
    pub calls: Mutex<Vec<String>>,
    /// The kernel offers no `/proc/self/task/<tid>/children`.
    pub no_children_list: bool,
    /// The cgroup filesystem: files with their content, and directories.
    pub files: Mutex<BTreeMap<PathBuf, String>>,
    pub dirs: Mutex<BTreeSet<PathBuf>>,
    /// Calls that fail with the errno: matched against the start of the call's text
    /// (`scan`, `mkdir /a/b`, `write /a/b/pids.max 50`, `reap 501`, `spawn`, …).
    pub failing: Vec<(String, Errno)>,
    /// What the spawned script runs (`sh -c`); every launch is kept in `launches`.
    pub script: Option<String>,
    pub launches: Mutex<Vec<Launch>>,
}

impl FakeSys {
    pub(super) fn with(procs: Vec<ProcInfo>) -> Self {
        FakeSys {
            procs: Mutex::new(procs),
            ..FakeSys::default()
        }
    }

    /// Files that exist, with their content (cgroup control files, `/proc/self/cgroup`).
    pub(super) fn with_files(self, files: &[(&str, &str)]) -> Self {
        for (path, content) in files {
            let path = PathBuf::from(path);
            if let Some(parent) = path.parent() {
                self.add_dir(parent);
            }
            self.files
                .lock()
                .unwrap()
                .insert(path, (*content).to_owned());
        }
        self
    }

    pub(super) fn failing(mut self, call: &str, errno: Errno) -> Self {
        self.failing.push((call.to_owned(), errno));
        self
    }

    fn add_dir(&self, dir: &Path) {
        let mut dirs = self.dirs.lock().unwrap();
        for d in dir.ancestors() {
            dirs.insert(d.to_path_buf());
        }
    }

    pub(super) fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// The recorded calls that start with `prefix`.
    pub(super) fn calls_of(&self, prefix: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with(prefix))
            .collect()
    }

    pub(super) fn alive(&self) -> Vec<i32> {
        self.procs
            .lock()
            .unwrap()
            .iter()
            .filter(|p| !p.is_dead())
            .map(|p| p.pid)
            .collect()
    }

    pub(super) fn file(&self, path: &str) -> Option<String> {
        self.files.lock().unwrap().get(Path::new(path)).cloned()
    }

    pub(super) fn has_dir(&self, path: &str) -> bool {
        self.dirs.lock().unwrap().contains(Path::new(path))
    }

    /// Records `text` (when `record`) and fails it if asked to.
    fn call(&self, text: String, record: bool) -> SysResult<()> {
        let failure = self
            .failing
            .iter()
            .find(|(prefix, _)| text.starts_with(prefix.as_str()))
            .map(|(_, errno)| *errno);
        if record {
            self.calls.lock().unwrap().push(text.clone());
        }
        match failure {
            Some(errno) => Err(SysError::new(text, errno)),
            None => Ok(()),
        }
    }

    fn deliver(&self, pid: i32, signal: Signal) {
        let dies = signal == Signal::SIGKILL || !self.stubborn.contains(&pid);
        if dies {
            for p in self
                .procs
                .lock()
                .unwrap()
                .iter_mut()
                .filter(|p| p.pid == pid)
            {
                p.state = 'Z';
            }
        }
    }

    fn job_cg_file(path: &Path, name: &str) -> bool {
        path == Path::new(JOB_CG).join(name)
    }
}

impl Sys for FakeSys {
    fn processes(&self) -> SysResult<Vec<ProcInfo>> {
        self.call("scan".into(), true)?;
        Ok(self.procs.lock().unwrap().clone())
    }

    fn runner_children(&self) -> SysResult<Option<Vec<i32>>> {
        self.call("children".into(), false)?;
        if self.no_children_list {
            return Ok(None);
        }
        let procs = self.procs.lock().unwrap();
        Ok(Some(
            procs
                .iter()
                .filter(|p| p.ppid == RUNNER)
                .map(|p| p.pid)
                .collect(),
        ))
    }

    fn group_exists(&self, pgid: i32) -> SysResult<bool> {
        self.call(format!("group {pgid}"), false)?;
        let procs = self.procs.lock().unwrap();
        Ok(procs.iter().any(|p| p.pgid == pgid))
    }

    fn has_env_entry(&self, pid: i32, _entry: &[u8]) -> SysResult<bool> {
        self.call(format!("environ {pid}"), true)?;
        Ok(self.marked.contains(&pid))
    }

    fn kill(&self, pid: i32, signal: Signal) -> SysResult<()> {
        self.call(format!("kill {pid} {signal}"), true)?;
        self.deliver(pid, signal);
        Ok(())
    }

    fn killpg(&self, pgid: i32, signal: Signal) -> SysResult<()> {
        self.call(format!("killpg {pgid} {signal}"), true)?;
        let pids: Vec<i32> = self
            .procs
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.pgid == pgid)
            .map(|p| p.pid)
            .collect();
        for pid in pids {
            self.deliver(pid, signal);
        }
        Ok(())
    }

    fn describe(&self, pid: i32) -> SysResult<String> {
        self.call(format!("describe {pid}"), false)?;
        Ok(format!("{pid} p{pid}"))
    }

    fn own_pid(&self) -> i32 {
        RUNNER
    }

    fn own_process_group(&self) -> i32 {
        RUNNER
    }

    fn set_child_subreaper(&self) -> SysResult<()> {
        self.call("subreaper".into(), true)
    }

    fn exited_child(&self) -> SysResult<Option<i32>> {
        self.call("waitid".into(), false)?;
        let procs = self.procs.lock().unwrap();
        Ok(procs
            .iter()
            .find(|p| p.ppid == RUNNER && p.is_dead())
            .map(|p| p.pid))
    }

    fn reap(&self, pid: i32) -> SysResult<bool> {
        self.call(format!("reap {pid}"), true)?;
        let mut procs = self.procs.lock().unwrap();
        let Some(i) = procs.iter().position(|p| p.pid == pid && p.ppid == RUNNER) else {
            return Err(SysError::new(format!("reap {pid}"), Errno::ECHILD));
        };
        if !procs[i].is_dead() {
            return Ok(false);
        }
        procs.remove(i);
        Ok(true)
    }

    fn spawn(&self, launch: &Launch, limits: &Limits) -> SysResult<Script> {
        self.launches.lock().unwrap().push(launch.clone());
        self.call("spawn".into(), true)?;
        // A real process runs the double's script, outside any cgroup and environment.
        let script = Launch {
            program: Program::Command(self.script.clone().unwrap_or_else(|| "exit 0".into())),
            cwd: PathBuf::from("/"),
            env: Vec::new(),
            cgroup_procs: Vec::new(),
        };
        spawn::spawn(&script, limits).map_err(|e| SysError::new("spawn", e))
    }

    fn exists(&self, path: &Path) -> SysResult<bool> {
        self.call(format!("exists {}", path.display()), false)?;
        Ok(self.files.lock().unwrap().contains_key(path)
            || self.dirs.lock().unwrap().contains(path)
            || path == Path::new(JOB_CG)
            || Self::job_cg_file(path, "cgroup.procs")
            || Self::job_cg_file(path, "cgroup.kill"))
    }

    fn read(&self, path: &Path) -> SysResult<String> {
        self.call(format!("read {}", path.display()), false)?;
        if Self::job_cg_file(path, "cgroup.procs") {
            let pids = self.cgroup.lock().unwrap();
            return Ok(pids.iter().map(|p| format!("{p}\n")).collect());
        }
        self.files
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .ok_or_else(|| SysError::new(format!("read {}", path.display()), Errno::ENOENT))
    }

    fn write(&self, path: &Path, value: &str) -> SysResult<()> {
        self.call(format!("write {} {value}", path.display()), true)?;
        if Self::job_cg_file(path, "cgroup.kill") {
            let pids = self.cgroup.lock().unwrap().clone();
            for pid in pids {
                self.deliver(pid, Signal::SIGKILL);
            }
            return Ok(());
        }
        self.files
            .lock()
            .unwrap()
            .insert(path.to_path_buf(), value.to_owned());
        Ok(())
    }

    fn create_dir(&self, path: &Path) -> SysResult<()> {
        self.call(format!("mkdir {}", path.display()), true)?;
        self.add_dir(path);
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> SysResult<()> {
        self.call(format!("rmdir {}", path.display()), true)?;
        if path == Path::new(JOB_CG) && !self.cgroup.lock().unwrap().is_empty() {
            return Err(SysError::new("rmdir", Errno::EBUSY));
        }
        if !self.dirs.lock().unwrap().remove(path) {
            return Err(SysError::new("rmdir", Errno::ENOENT));
        }
        Ok(())
    }

    fn subdirs(&self, path: &Path) -> SysResult<Vec<PathBuf>> {
        self.call(format!("subdirs {}", path.display()), false)?;
        Ok(self
            .dirs
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.parent() == Some(path))
            .cloned()
            .collect())
    }
}
