//! The system-call seam: everything the kill and reap logic asks of the kernel goes through
//! [`Sys`], so that logic is unit-tested with a recording double; [`RealSys`] is the real thing.

use std::fs;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::cgroup::JobCgroup;

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
    /// Every process right now.
    fn processes(&self) -> Vec<ProcInfo>;
    /// The runner's own children (zombies included), from one small file per runner thread;
    /// `None` when the kernel does not offer that list (then callers scan every process).
    fn runner_children(&self) -> Option<Vec<i32>>;
    /// Whether any process is in this process group (zombies may count).
    fn group_exists(&self, pgid: i32) -> bool;
    /// Whether the process's environment holds exactly this `NAME=value` entry.
    fn has_env_entry(&self, pid: i32, entry: &[u8]) -> bool;
    /// Processes in the job's cgroups.
    fn cgroup_pids(&self, cgroup: &JobCgroup) -> Vec<i32>;
    /// Kills everything in the job's cgroups at once, where the kernel offers that (v2
    /// `cgroup.kill`); false when it does not.
    fn cgroup_kill(&self, cgroup: &JobCgroup) -> bool;
    fn kill(&self, pid: i32, signal: Signal) -> Result<(), Errno>;
    fn killpg(&self, pgid: i32, signal: Signal) -> Result<(), Errno>;
    /// A one-line description (command line) for reports.
    fn describe(&self, pid: i32) -> String;
}

/// The real kernel, through /proc and signals.
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

impl Sys for RealSys {
    fn processes(&self) -> Vec<ProcInfo> {
        let Ok(dir) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| {
            let e = e.ok()?;
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            parse_stat(&stat)
        })
        .collect()
    }

    fn runner_children(&self) -> Option<Vec<i32>> {
        // A thread's children are listed under its own task (an orphan is reparented to any
        // live thread of the subreaper), so every thread of the runner is read.
        let mut out = Vec::new();
        for task in fs::read_dir("/proc/self/task").ok()? {
            let path = task.ok()?.path().join("children");
            let text = fs::read_to_string(path).ok()?;
            out.extend(
                text.split_whitespace()
                    .filter_map(|t| t.parse::<i32>().ok()),
            );
        }
        out.sort_unstable();
        out.dedup();
        Some(out)
    }

    fn group_exists(&self, pgid: i32) -> bool {
        // Signal 0 checks existence only; ESRCH means no process carries the group id.
        nix::sys::signal::killpg(Pid::from_raw(pgid), None) != Err(Errno::ESRCH)
    }

    fn has_env_entry(&self, pid: i32, entry: &[u8]) -> bool {
        fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|&b| b == 0).any(|e| e == entry))
    }

    fn cgroup_pids(&self, cgroup: &JobCgroup) -> Vec<i32> {
        cgroup.pids()
    }

    fn cgroup_kill(&self, cgroup: &JobCgroup) -> bool {
        cgroup.kill()
    }

    fn kill(&self, pid: i32, signal: Signal) -> Result<(), Errno> {
        nix::sys::signal::kill(Pid::from_raw(pid), signal)
    }

    fn killpg(&self, pgid: i32, signal: Signal) -> Result<(), Errno> {
        nix::sys::signal::killpg(Pid::from_raw(pgid), signal)
    }

    fn describe(&self, pid: i32) -> String {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let mut text: String = String::from_utf8_lossy(&cmdline)
            .split('\0')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if text.is_empty() {
            text = fs::read_to_string(format!("/proc/{pid}/comm"))
                .unwrap_or_default()
                .trim()
                .to_owned();
        }
        let text: String = text.chars().take(200).collect();
        format!("{pid} {text}")
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
        let procs = RealSys.processes();
        let mine = procs
            .iter()
            .find(|p| p.pid == me)
            .expect("own process listed");
        assert!(!mine.is_dead());
    }

    #[test]
    fn real_sys_lists_its_children_including_zombies_and_sees_their_group() {
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id() as i32;
        // Until waited for, the exited child is a zombie and still a child.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let children = RealSys.runner_children().expect("children list offered");
        assert!(children.contains(&pid), "{pid} not in {children:?}");
        child.wait().unwrap();
        let children = RealSys.runner_children().unwrap();
        assert!(!children.contains(&pid));
        let own_group = nix::unistd::getpgrp().as_raw();
        assert!(RealSys.group_exists(own_group));
        assert!(!RealSys.group_exists(pid));
    }
}
