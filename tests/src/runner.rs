//! The real `outfitter-runner run`, started from the configuration `agent add` printed;
//! stoppable with SIGKILL (a crash) or SIGTERM and restartable with the same files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::Signal;

use crate::binaries::binaries;
use crate::panel::clean_env;
use crate::process::Daemon;

/// Seconds between SIGTERM and SIGKILL when the runner stops a job's tree, in tests.
pub const KILL_GRACE_SECONDS: u64 = 2;

/// One agent's runner: its configuration and directories survive restarts.
#[derive(Debug)]
pub struct Runner {
    agent_id: String,
    dir: PathBuf,
    config: PathBuf,
    installers: PathBuf,
    extra_env: Vec<(String, String)>,
    daemon: Option<Daemon>,
}

impl Runner {
    /// Writes `config` (the text `agent add` printed) into `dir` and prepares the runner's
    /// log and state directories there. Nothing runs until [`Runner::start`].
    pub fn prepare(agent_id: &str, config: &str, installers: &Path, dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir.join("log"))?;
        std::fs::create_dir_all(dir.join("state"))?;
        let path = dir.join("runner.toml");
        // The host's own services (its Redis on 6379, its PostgreSQL) are not the suite's:
        // host metrics yes, service probes no.
        std::fs::write(&path, format!("{config}\nmetrics_services = false\n"))?;
        Ok(Self {
            agent_id: agent_id.to_owned(),
            dir: dir.to_owned(),
            config: path,
            installers: installers.to_owned(),
            extra_env: Vec::new(),
            daemon: None,
        })
    }

    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// Where this runner writes its per-job log files.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// The `redis_url` of its configuration file (what `agent add` printed).
    pub fn config_redis_url(&self) -> Result<String> {
        let text = std::fs::read_to_string(&self.config)?;
        text.lines()
            .find_map(|l| l.strip_prefix("redis_url = \""))
            .and_then(|v| v.strip_suffix('"'))
            .map(str::to_owned)
            .context("no redis_url in the runner configuration")
    }

    /// Sets an environment variable for the next starts (settings override the config file).
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.extra_env.push((name.to_owned(), value.to_owned()));
    }

    /// Starts (or restarts) `outfitter-runner run`.
    pub fn start(&mut self) -> Result<()> {
        self.kill();
        let mut cmd = Command::new(&binaries().runner);
        clean_env(&mut cmd);
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config)
            .env("OUTFITTER_INSTALLERS", &self.installers)
            .env("OUTFITTER_LOG_DIR", self.log_dir())
            .env("OUTFITTER_STATE_DIR", self.dir.join("state"))
            // Short graces keep timeout and cancel tests quick; the defaults are for servers.
            .env(
                "OUTFITTER_KILL_GRACE_SECONDS",
                KILL_GRACE_SECONDS.to_string(),
            )
            .env("OUTFITTER_STOP_GRACE_SECONDS", "5")
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        let log = self.dir.join("runner.log");
        let mut daemon =
            Daemon::spawn(&format!("outfitter-runner ({})", self.agent_id), cmd, &log)?;
        std::thread::sleep(Duration::from_millis(100));
        daemon.ensure_running()?;
        self.daemon = Some(daemon);
        Ok(())
    }

    /// SIGKILL: the runner dies mid-whatever, as in a crash or power loss. The scripts it
    /// started are not in its process group and live on, as they would after a crash.
    pub fn kill(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self, limit: Duration) -> Result<()> {
        if let Some(mut d) = self.daemon.take() {
            d.signal(Signal::SIGTERM)?;
            d.wait_exit(limit)?;
        }
        Ok(())
    }

    /// The runner's own log, for failure messages.
    pub fn output_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("runner.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}
