//! Profiles of a running process with Linux `perf`, where it works: `perf record` for where
//! the CPU time goes (flat, by symbol), `perf trace -s` for which system calls the time goes
//! to (blocking ones such as `fsync` included). Both attach to a pid and stop on SIGINT.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::process::wait_until;
use crate::report::Table;

/// Which profile to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// CPU samples by symbol (`perf record -F 999`).
    Cpu,
    /// System call counts and times (`perf trace -s`).
    Syscalls,
}

/// A `perf` attached to a process.
#[derive(Debug)]
pub(crate) struct Profiler {
    kind: Kind,
    child: Child,
    output: PathBuf,
}

/// Whether `perf` can profile on this machine (installed, and allowed to).
pub(crate) fn available() -> bool {
    Command::new("perf")
        .args(["stat", "-e", "task-clock", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Profiler {
    /// Attaches `perf` to `pid`, its output in `dir`.
    pub(crate) fn start(kind: Kind, pid: u32, dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let pid_arg = pid.to_string();
        let (output, mut cmd) = match kind {
            Kind::Cpu => {
                let out = dir.join("perf-cpu.data");
                let mut c = Command::new("perf");
                c.args(["record", "-F", "999", "-p", &pid_arg, "-o"])
                    .arg(&out);
                (out, c)
            }
            Kind::Syscalls => {
                let out = dir.join("perf-trace.txt");
                let mut c = Command::new("perf");
                c.args(["trace", "-s", "-p", &pid_arg, "-o"]).arg(&out);
                (out, c)
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting perf")?;
        // perf needs a moment to attach to every thread.
        std::thread::sleep(Duration::from_millis(300));
        Ok(Self {
            kind,
            child,
            output,
        })
    }

    /// Stops `perf` and turns what it saw into a table, `per` naming the unit of work
    /// (e.g. jobs) the counts are divided by.
    pub(crate) fn finish(mut self, units: usize, per: &str) -> Result<Table> {
        let pid = Pid::from_raw(i32::try_from(self.child.id())?);
        kill(pid, Signal::SIGINT).context("stopping perf")?;
        let mut status = None;
        wait_until(Duration::from_secs(60), "perf writing its data", || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        })?;
        match self.kind {
            Kind::Cpu => cpu_table(&self.output),
            Kind::Syscalls => {
                let text = std::fs::read_to_string(&self.output)
                    .with_context(|| format!("perf trace wrote no {}", self.output.display()))?;
                Ok(syscall_table(&text, units, per))
            }
        }
    }
}

impl Drop for Profiler {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Rows of the flat CPU profile shown.
const TOP_SYMBOLS: usize = 15;
/// Rows of the system call profile shown.
const TOP_SYSCALLS: usize = 12;

fn cpu_table(data: &Path) -> Result<Table> {
    let out = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--sort",
            "dso,sym",
            "-i",
        ])
        .arg(data)
        .output()
        .context("running perf report")?;
    if !out.status.success() {
        bail!(
            "perf report failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let samples = text
        .lines()
        .find_map(|l| l.strip_prefix("# Samples: "))
        .map(|s| s.split_whitespace().next().unwrap_or("?").to_owned())
        .unwrap_or_else(|| "?".into());
    let mut rows: Vec<Vec<String>> = by_dso(data)?;
    rows.extend(parse_report(&text).into_iter().take(TOP_SYMBOLS));
    Ok(Table {
        heading: format!(
            "Where the runner's CPU time goes (`perf record -F 999` on the runner and the scripts it \
             forks, {samples} samples): first by thread and program or library (bold), then the \
             hottest functions:"
        ),
        columns: ["share of samples", "where", "function"]
            .map(String::from)
            .to_vec(),
        rows,
    })
}

/// The top rows of the profile by program or library (`function` says "(all)").
fn by_dso(data: &Path) -> Result<Vec<Vec<String>>> {
    let out = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--sort",
            "comm,dso",
            "-i",
        ])
        .arg(data)
        .output()
        .context("running perf report")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let pct = parts.next()?.strip_suffix('%')?.to_owned();
            pct.parse::<f64>().ok()?;
            let comm = parts.next()?;
            let dso = parts.next()?;
            Some(vec![
                format!("**{pct}%**"),
                format!("{comm}: {dso}"),
                "(all)".into(),
            ])
        })
        .take(6)
        .collect())
}

/// `percent, dso, symbol` from `perf report --stdio --sort dso,sym` lines like
/// `    12.50%  outfitter-runne  [.] core::ptr::drop_in_place<…>`.
fn parse_report(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let pct = parts.next()?.strip_suffix('%')?.to_owned();
            pct.parse::<f64>().ok()?;
            let dso = parts.next()?.to_owned();
            let _kind = parts.next()?;
            let sym: String = parts.collect::<Vec<_>>().join(" ");
            Some(vec![
                format!("{pct}%"),
                dso,
                format!("`{}`", sym.replace('|', "\\|")),
            ])
        })
        .collect()
}

/// Per system call: calls and total milliseconds, summed over every thread's section of
/// `perf trace -s` output.
fn syscall_table(text: &str, units: usize, per: &str) -> Table {
    let mut by_name: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // name calls errors total min avg max stddev%
        if f.len() == 8
            && let (Ok(calls), Ok(total)) = (f[1].parse::<u64>(), f[3].parse::<f64>())
        {
            let e = by_name.entry(f[0].to_owned()).or_default();
            e.0 += calls;
            e.1 += total;
        }
    }
    let mut rows: Vec<(String, u64, f64)> =
        by_name.into_iter().map(|(n, (c, t))| (n, c, t)).collect();
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    let units = units.max(1) as f64;
    Table {
        heading: format!(
            "System calls of the runner by total time (`perf trace -s`, all threads; waits such as \
             `epoll_wait` and `futex` are idle threads, the rest is time a {per} spends in the kernel):"
        ),
        columns: [
            "system call",
            &format!("calls per {per}"),
            &format!("ms per {per}"),
            "total ms",
        ]
        .map(String::from)
        .to_vec(),
        rows: rows
            .into_iter()
            .take(TOP_SYSCALLS)
            .map(|(n, c, t)| {
                vec![
                    format!("`{n}`"),
                    format!("{:.1}", c as f64 / units),
                    format!("{:.3}", t / units),
                    format!("{t:.1}"),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_become_rows_and_headers_are_skipped() {
        let text = "# Samples: 120  of event 'cpu-clock'\n#\n    12.50%  outfitter-runne  [.] serde_json::ser::format_escaped_str\n     3.10%  [kernel.kallsyms]  [k] do_syscall_64\n\n";
        let rows = parse_report(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            vec![
                "12.50%",
                "outfitter-runne",
                "`serde_json::ser::format_escaped_str`"
            ]
        );
        assert_eq!(rows[1][1], "[kernel.kallsyms]");
    }

    #[test]
    fn syscalls_are_summed_over_threads_and_divided_per_unit() {
        let text = "\n tokio-runtime-w (11), 30 events\n\n   syscall  calls  errors  total  min  avg  max  stddev\n   --------------- -------- ------ -------- --------- --------- ---------     ------\n   fsync  10  0  80.000  1.0  8.0  20.0  5.00%\n   openat  200  3  4.000  0.0  0.0  0.1  1.00%\n\n other (12), 4 events\n   fsync  10  0  20.000  1.0  2.0  3.0  5.00%\n";
        let t = syscall_table(text, 20, "job");
        assert_eq!(t.rows[0], vec!["`fsync`", "1.0", "5.000", "100.0"]);
        assert_eq!(t.rows[1], vec!["`openat`", "10.0", "0.200", "4.0"]);
    }
}
