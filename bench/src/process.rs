//! Processes the bench starts (`outfitter_test_support::Daemon`: own process group, output in
//! a file, killed with the group when dropped) and their memory and CPU as /proc reports them.

pub(crate) use outfitter_test_support::Daemon;

use std::time::Duration;

use anyhow::{Context, Result, bail};

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
    use std::process::Command;

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
