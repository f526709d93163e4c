//! A child process in its own process group, with its output in a file, killed with its
//! whole group when dropped, so a failing test or bench leaves nothing running.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A running daemon started by a test or the bench.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` in a new process group, stdin `/dev/null`, stdout and stderr appended
    /// to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        use std::os::unix::process::CommandExt;
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

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of output, for failure messages.
    pub fn output_tail(&self, n: usize) -> String {
        let out = self.output();
        let lines: Vec<&str> = out.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Fails with the process's output when it has already exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited early with {status}; its output:\n{}",
                self.name,
                self.output_tail(40)
            );
        }
        Ok(())
    }

    /// Sends `signal` to the process alone (not its group).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        nix::sys::signal::kill(self.pgid(), signal)
            .with_context(|| format!("signalling {}", self.name))
    }

    /// Sends `signal` to the whole process group.
    pub fn signal_group(&self, signal: Signal) -> Result<()> {
        killpg(self.pgid(), signal).with_context(|| format!("signalling group of {}", self.name))
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("{} did not exit within {limit:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs the process group and reaps the process. Idempotent.
    pub fn kill(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // The group may already be gone; nothing to report then.
            let _ = killpg(self.pgid(), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }

    fn pgid(&self) -> Pid {
        let pid = i32::try_from(self.child.id()).expect("pid fits in i32");
        // A process group id ≤ 1 would mean "every process"; a spawned child never has one.
        assert!(pid > 1, "refusing to signal process group {pid}");
        Pid::from_raw(pid)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}
