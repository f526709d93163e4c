//! The system-call seam: everything the sandbox asks of the kernel — the process table,
//! signals, reaping, the subreaper flag, spawning, cgroup files — goes through [`Sys`], so the
//! kill, reap, spawn and cgroup decisions are unit-tested against a recording double
//! (`sys_double.rs`); [`RealSys`] is the real thing. Every call that can fail returns
//! [`SysError`]: a caller decides what a failure means, nothing turns it into "empty".

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{Id, WaitPidFlag, waitid, waitpid};
use nix::unistd::Pid;

use super::script::Script;
use super::spawn::{self, Launch};
use crate::config::Limits;

/// A system call or file operation that failed, with what was asked.
#[derive(Debug, thiserror::Error)]
#[error("{call}: {source}")]
pub struct SysError {
    /// What was asked, e.g. `read /proc/12/stat` or `kill 12 SIGTERM`.
    pub call: String,
    #[source]
    pub source: std::io::Error,
}

impl SysError {
    pub fn new(call: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        SysError {
            call: call.into(),
            source: source.into(),
        }
    }

    /// The errno behind it, when there is one.
    pub fn errno(&self) -> Option<Errno> {
        self.source.raw_os_error().map(Errno::from_raw)
    }

    /// The process or file asked about no longer exists (a race with its exit, not a fault).
    pub fn is_gone(&self) -> bool {
        self.source.kind() == ErrorKind::NotFound || self.errno() == Some(Errno::ESRCH)
    }
}

pub type SysResult<T> = Result<T, SysError>;

/// One process, as far as deciding whether it belongs to a job goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    /// `R`, `S`, `D`, `Z`, … from /proc/<pid>/stat.
    pub state: char,
    pub name: String,
}

impl ProcInfo {
    /// A zombie (or dead) process can no longer be signalled, only reaped.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// What the sandbox asks of the operating system.
pub trait Sys: Send + Sync {
    /// Every process right now (a process that exits while being read is left out).
    fn processes(&self) -> SysResult<Vec<ProcInfo>>;
    /// The runner's own children (zombies included), from one small file per runner thread;
    /// `Ok(None)` when the kernel does not offer that list (then callers scan every process).
    fn runner_children(&self) -> SysResult<Option<Vec<i32>>>;
    /// Whether any process is in this process group (zombies may count).
    fn group_exists(&self, pgid: i32) -> SysResult<bool>;
    /// Whether the process's environment holds exactly this `NAME=value` entry (false for a
    /// process that is gone).
    fn has_env_entry(&self, pid: i32, entry: &[u8]) -> SysResult<bool>;
    fn kill(&self, pid: i32, signal: Signal) -> SysResult<()>;
    fn killpg(&self, pgid: i32, signal: Signal) -> SysResult<()>;
    /// A one-line description (command line) for reports.
    fn describe(&self, pid: i32) -> SysResult<String>;

    /// The runner's pid and process group (neither call can fail).
    fn own_pid(&self) -> i32;
    fn own_process_group(&self) -> i32;
    /// `PR_SET_CHILD_SUBREAPER` for the runner.
    fn set_child_subreaper(&self) -> SysResult<()>;
    /// `waitpid(pid, WNOHANG)`: whether the (dead) child was reaped; false while it lives.
    fn reap(&self, pid: i32) -> SysResult<bool>;
    /// A child of the runner (any thread's) that has exited and waits to be reaped, without
    /// reaping it (`waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)`); `None` when there is none.
    fn exited_child(&self) -> SysResult<Option<i32>>;
    /// Starts a script (see [`spawn::spawn`]).
    fn spawn(&self, launch: &Launch, limits: &Limits) -> SysResult<Script>;

    /// The cgroup filesystem.
    fn exists(&self, path: &Path) -> SysResult<bool>;
    fn read(&self, path: &Path) -> SysResult<String>;
    fn write(&self, path: &Path, value: &str) -> SysResult<()>;
    /// `mkdir -p`.
    fn create_dir(&self, path: &Path) -> SysResult<()>;
    fn remove_dir(&self, path: &Path) -> SysResult<()>;
    /// The directories directly inside `path`.
    fn subdirs(&self, path: &Path) -> SysResult<Vec<PathBuf>>;
}

/// The real kernel, through /proc, signals and the cgroup filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealSys;

/// Parses /proc/<pid>/stat. The command name may hold spaces and parentheses: it ends at the
/// last `)`.
pub fn parse_stat(text: &str) -> Option<ProcInfo> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let name = text.get(open + 1..close)?.to_owned();
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgid = rest.next()?.parse().ok()?;
    Some(ProcInfo {
        pid,
        ppid,
        pgid,
        state,
        name,
    })
}

fn io(call: impl Into<String>) -> impl FnOnce(std::io::Error) -> SysError {
    let call = call.into();
    move |e| SysError::new(call, e)
}

fn read_bytes(path: &Path) -> SysResult<Vec<u8>> {
    fs::read(path).map_err(io(format!("read {}", path.display())))
}

/// A read whose target may vanish with its process: `Ok(None)` then.
fn read_unless_gone(path: &Path) -> SysResult<Option<Vec<u8>>> {
    match read_bytes(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_gone() => Ok(None),
        Err(e) => Err(e),
    }
}

/// `waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)`: an exited child of any runner thread, left
/// unreaped (its owner reaps it); `ECHILD` when the runner has no child at all.
fn peek_exited_child() -> nix::Result<nix::sys::wait::WaitStatus> {
    waitid(
        Id::All,
        WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
    )
}

impl Sys for RealSys {
    fn processes(&self) -> SysResult<Vec<ProcInfo>> {
        let mut out = Vec::new();
        for entry in fs::read_dir("/proc").map_err(io("list /proc"))? {
            let entry = entry.map_err(io("list /proc"))?;
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let path = PathBuf::from(format!("/proc/{pid}/stat"));
            let Some(stat) = read_unless_gone(&path)? else {
                continue;
            };
            let text = String::from_utf8_lossy(&stat);
            let info = parse_stat(&text).ok_or_else(|| {
                SysError::new(
                    format!("parse {}", path.display()),
                    std::io::Error::new(ErrorKind::InvalidData, text.trim().to_owned()),
                )
            })?;
            out.push(info);
        }
        Ok(out)
    }

    fn runner_children(&self) -> SysResult<Option<Vec<i32>>> {
        // A thread's children are listed under its own task (an orphan is reparented to any
        // live thread of the subreaper), so every thread of the runner is read. Whether the
        // kernel offers the list at all shows on the main thread, which lives as long as we do.
        let me = std::process::id().to_string();
        let main = PathBuf::from(format!("/proc/self/task/{me}/children"));
        let Some(main_text) = read_unless_gone(&main)? else {
            return Ok(None);
        };
        // No child at all, the usual case after a job: one system call instead of a file per
        // runner thread.
        if matches!(peek_exited_child(), Err(Errno::ECHILD)) {
            return Ok(Some(Vec::new()));
        }
        let pids = |text: &[u8]| -> Vec<i32> {
            String::from_utf8_lossy(text)
                .split_whitespace()
                .filter_map(|t| t.parse::<i32>().ok())
                .collect()
        };
        let mut out = pids(&main_text);
        for task in fs::read_dir("/proc/self/task").map_err(io("list /proc/self/task"))? {
            let task = task.map_err(io("list /proc/self/task"))?;
            if task.file_name() == me.as_str() {
                continue;
            }
            // A thread that ended meanwhile has no children to report.
            let Some(text) = read_unless_gone(&task.path().join("children"))? else {
                continue;
            };
            out.extend(pids(&text));
        }
        out.sort_unstable();
        out.dedup();
        Ok(Some(out))
    }

    fn group_exists(&self, pgid: i32) -> SysResult<bool> {
        // Signal 0 checks existence only: ESRCH means no process carries the group id, EPERM
        // that one does (which we may not signal).
        match nix::sys::signal::killpg(Pid::from_raw(pgid), None) {
            Ok(()) | Err(Errno::EPERM) => Ok(true),
            Err(Errno::ESRCH) => Ok(false),
            Err(e) => Err(SysError::new(format!("killpg {pgid} 0"), e)),
        }
    }

    fn has_env_entry(&self, pid: i32, entry: &[u8]) -> SysResult<bool> {
        let path = PathBuf::from(format!("/proc/{pid}/environ"));
        Ok(read_unless_gone(&path)?.is_some_and(|env| env.split(|&b| b == 0).any(|e| e == entry)))
    }

    fn kill(&self, pid: i32, signal: Signal) -> SysResult<()> {
        nix::sys::signal::kill(Pid::from_raw(pid), signal)
            .map_err(|e| SysError::new(format!("kill {pid} {signal}"), e))
    }

    fn killpg(&self, pgid: i32, signal: Signal) -> SysResult<()> {
        nix::sys::signal::killpg(Pid::from_raw(pgid), signal)
            .map_err(|e| SysError::new(format!("killpg {pgid} {signal}"), e))
    }

    fn describe(&self, pid: i32) -> SysResult<String> {
        let cmdline = read_bytes(Path::new(&format!("/proc/{pid}/cmdline")))?;
        let mut text: String = String::from_utf8_lossy(&cmdline)
            .split('\0')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if text.is_empty() {
            // Kernel threads and zombies have no command line, only a name.
            let comm = read_bytes(Path::new(&format!("/proc/{pid}/comm")))?;
            text = String::from_utf8_lossy(&comm).trim().to_owned();
        }
        let text: String = text.chars().take(200).collect();
        Ok(format!("{pid} {text}"))
    }

    fn own_pid(&self) -> i32 {
        std::process::id() as i32
    }

    fn own_process_group(&self) -> i32 {
        nix::unistd::getpgrp().as_raw()
    }

    fn set_child_subreaper(&self) -> SysResult<()> {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| SysError::new("prctl PR_SET_CHILD_SUBREAPER", e))
    }

    fn reap(&self, pid: i32) -> SysResult<bool> {
        waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG))
            .map(|status| status.pid().is_some())
            .map_err(|e| SysError::new(format!("waitpid {pid} WNOHANG"), e))
    }

    fn exited_child(&self) -> SysResult<Option<i32>> {
        match peek_exited_child() {
            Ok(status) => Ok(status.pid().map(Pid::as_raw)),
            Err(Errno::ECHILD) => Ok(None),
            Err(e) => Err(SysError::new("waitid P_ALL WNOHANG WNOWAIT", e)),
        }
    }

    fn spawn(&self, launch: &Launch, limits: &Limits) -> SysResult<Script> {
        spawn::spawn(launch, limits).map_err(io(format!(
            "start {} {}",
            spawn::SHELL,
            launch.program
        )))
    }

    fn exists(&self, path: &Path) -> SysResult<bool> {
        path.try_exists()
            .map_err(io(format!("stat {}", path.display())))
    }

    fn read(&self, path: &Path) -> SysResult<String> {
        fs::read_to_string(path).map_err(io(format!("read {}", path.display())))
    }

    fn write(&self, path: &Path, value: &str) -> SysResult<()> {
        // Cgroup files take one write of the whole value; no create, no truncate needed.
        use std::io::Write;
        fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(value.as_bytes()))
            .map_err(io(format!("write {value:?} to {}", path.display())))
    }

    fn create_dir(&self, path: &Path) -> SysResult<()> {
        fs::create_dir_all(path).map_err(io(format!("mkdir {}", path.display())))
    }

    fn remove_dir(&self, path: &Path) -> SysResult<()> {
        fs::remove_dir(path).map_err(io(format!("rmdir {}", path.display())))
    }

    fn subdirs(&self, path: &Path) -> SysResult<Vec<PathBuf>> {
        let mut out = Vec::new();
        for e in fs::read_dir(path).map_err(io(format!("list {}", path.display())))? {
            let e = e.map_err(io(format!("list {}", path.display())))?;
            if e.file_type()
                .map_err(io(format!("stat {}", e.path().display())))?
                .is_dir()
            {
                out.push(e.path());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names_parses() {
        let p = parse_stat("42 (my (odd) name) S 7 42 42 0 -1 4194560 1 0").unwrap();
        assert_eq!((p.pid, p.ppid, p.pgid, p.state), (42, 7, 42, 'S'));
        assert_eq!(p.name, "my (odd) name");
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn real_sys_sees_this_process() {
        let me = std::process::id() as i32;
        let procs = RealSys.processes().unwrap();
        let mine = procs
            .iter()
            .find(|p| p.pid == me)
            .expect("own process listed");
        assert!(!mine.is_dead());
        assert_eq!(mine.pgid, RealSys.own_process_group());
    }

    #[test]
    fn real_sys_lists_its_children_including_zombies_and_sees_their_group() {
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id() as i32;
        // Until waited for, the exited child is a zombie and still a child.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !RealSys
            .processes()
            .unwrap()
            .iter()
            .any(|p| p.pid == pid && p.is_dead())
        {
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let children = RealSys
            .runner_children()
            .unwrap()
            .expect("children list offered");
        assert!(children.contains(&pid), "{pid} not in {children:?}");
        child.wait().unwrap();
        let children = RealSys.runner_children().unwrap().unwrap();
        assert!(!children.contains(&pid));
        assert!(RealSys.group_exists(RealSys.own_process_group()).unwrap());
        assert!(!RealSys.group_exists(pid).unwrap());
    }

    #[test]
    fn real_sys_errors_name_the_call_and_tell_a_vanished_process_apart() {
        let e = RealSys
            .read(Path::new("/proc/self/no-such-file"))
            .unwrap_err();
        assert!(e.is_gone());
        assert!(
            e.to_string().starts_with("read /proc/self/no-such-file: "),
            "{e}"
        );
        // Writing to a read-only /proc file is a fault, not a vanished process.
        let e = RealSys
            .write(Path::new("/proc/self/stat"), "1")
            .unwrap_err();
        assert!(!e.is_gone(), "{e}");
        let e = RealSys.kill(i32::MAX, Signal::SIGTERM).unwrap_err();
        assert!(e.is_gone() && e.errno() == Some(Errno::ESRCH), "{e}");
        assert!(!RealSys.has_env_entry(i32::MAX, b"JOB_ID=x").unwrap());
    }
}
