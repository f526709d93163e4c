//! Processes the bench starts: each in its own process group with its output in a file,
//! killed with its whole group when dropped; and their memory as /proc reports it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A daemon started by the bench.
#[derive(Debug)]
pub(crate) struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` in a new process group, stdin `/dev/null`, output appended to `log`.
    pub(crate) fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self> {
        use std::os::unix::process::CommandExt;
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last `n` lines the process wrote, for error messages.
    pub(crate) fn output_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Fails with the process's output when it has exited.
    pub(crate) fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited with {status}; its output:\n{}",
                self.name,
                self.output_tail(30)
            );
        }
        Ok(())
    }

    /// SIGKILLs the process group and reaps the process. Idempotent.
    pub(crate) fn kill(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            if let Ok(pid) = i32::try_from(self.child.id())
                && pid > 1
            {
                // The group may be gone already; nothing to report then.
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = self.child.wait();
        }
    }

    /// Current and peak resident memory.
    pub(crate) fn memory(&self) -> Result<Memory> {
        Memory::of(self.pid())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Resident memory of one process, from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident size since the process started.
    pub hwm_kib: u64,
}

impl Memory {
    pub(crate) fn of(pid: u32) -> Result<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        Self::parse(&text).with_context(|| format!("/proc/{pid}/status has no VmRSS/VmHWM"))
    }

    fn parse(status: &str) -> Option<Self> {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        };
        Some(Self {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
        })
    }
}

/// CPU time a process used, from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuTime {
    /// The process itself, user + system.
    pub own: Duration,
    /// Its children that it waited for (`cutime + cstime`).
    pub children: Duration,
}

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, fixed at 100 by the Linux ABI).
const USER_HZ: u64 = 100;

impl CpuTime {
    pub(crate) fn of(pid: u32) -> Result<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        Self::parse(&text).with_context(|| format!("/proc/{pid}/stat is malformed"))
    }

    fn parse(stat: &str) -> Option<Self> {
        // The command name may hold spaces and parentheses: fields start after the last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let f: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(4)
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        let ticks = |t: u64| Duration::from_millis(t * 1000 / USER_HZ);
        (f.len() == 4).then(|| Self {
            own: ticks(f[0] + f[1]),
            children: ticks(f[2] + f[3]),
        })
    }

    /// What was used since `earlier`.
    pub(crate) fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            own: self.own.saturating_sub(earlier.own),
            children: self.children.saturating_sub(earlier.children),
        }
    }
}

/// KiB as MiB with one decimal.
pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Polls `done` every 20 ms up to `limit`.
pub(crate) fn wait_until(
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        if std::time::Instant::now() > deadline {
            bail!("{what} did not happen within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read_from_proc_status_fields() {
        let status = "Name:\tx\nVmHWM:\t   2048 kB\nVmRSS:\t    1024 kB\nThreads:\t3\n";
        let m = Memory::parse(status).unwrap();
        assert_eq!((m.rss_kib, m.hwm_kib), (1024, 2048));
    }

    #[test]
    fn cpu_time_fields_follow_the_last_parenthesis() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 5 0 0";
        let t = CpuTime::parse(stat).unwrap();
        assert_eq!(t.own, Duration::from_millis(3000));
        assert_eq!(t.children, Duration::from_millis(100));
    }

    #[test]
    fn own_memory_is_readable() {
        let m = Memory::of(std::process::id()).unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
    }

    #[test]
    fn killed_daemon_group_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut d = Daemon::spawn("sleep", cmd, &dir.path().join("sleep.log")).unwrap();
        d.ensure_running().unwrap();
        d.kill();
        assert!(d.ensure_running().is_err());
    }
}
