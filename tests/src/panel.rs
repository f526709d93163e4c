//! The real `outfitter-panel`: `serve` as a daemon, and its one-shot CLI commands
//! (`token add`, `agent add`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::binaries::binaries;
use crate::ports::free_port;
use crate::process::Daemon;

/// How long a panel may take to answer `/healthz`.
const READY_LIMIT: Duration = Duration::from_secs(30);

/// What every panel command needs to know: where Redis is and where the secret is.
#[derive(Debug, Clone)]
pub struct PanelSettings {
    pub redis_url: String,
    pub secret_file: PathBuf,
    pub installers: PathBuf,
    /// More `OUTFITTER_*` settings for every command (e.g. short webhook timeouts).
    pub env: Vec<(String, String)>,
}

impl PanelSettings {
    /// A panel command with a clean environment plus these settings (as `OUTFITTER_*`
    /// variables, which every subcommand reads), so the developer's own configuration
    /// never leaks into a test.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&binaries().panel);
        clean_env(&mut cmd);
        cmd.env("OUTFITTER_REDIS_URL", &self.redis_url)
            .env("OUTFITTER_SECRET_FILE", &self.secret_file)
            .env("OUTFITTER_INSTALLERS", &self.installers);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a one-shot panel command and returns its stdout; fails with stderr otherwise.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let mut cmd = self.command();
        cmd.args(args);
        let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
        if !out.status.success() {
            bail!(
                "outfitter-panel {} failed ({}):\n{}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// `token add`: a new API token with `role`; the token is the last line printed.
    pub fn add_token(&self, name: &str, role: &str) -> Result<String> {
        let out = self.run(&["token", "add", "--name", name, "--role", role])?;
        let token = out
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        if token.is_empty() {
            bail!("token add printed no token:\n{out}");
        }
        Ok(token.to_owned())
    }

    /// `agent add <id>`: registers the agent and returns the runner configuration it prints.
    pub fn add_agent(&self, agent_id: &str) -> Result<String> {
        self.add_agent_with(agent_id, &[])
    }

    /// `agent add <id> <flags…>` (`--redis-user`, `--label k=v`).
    pub fn add_agent_with(&self, agent_id: &str, flags: &[&str]) -> Result<String> {
        let mut args = vec!["agent", "add", agent_id];
        args.extend_from_slice(flags);
        self.run(&args)
    }
}

/// Clears the environment except what a program needs to run at all.
pub(crate) fn clean_env(cmd: &mut Command) {
    cmd.env_clear();
    for keep in ["PATH", "HOME", "LANG", "TMPDIR"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    // Both programs read their log filter from OUTFITTER_LOG.
    let level = std::env::var("OUTFITTER_TEST_LOG").unwrap_or_else(|_| "info".into());
    cmd.env("OUTFITTER_LOG", level);
    cmd.env("RUST_BACKTRACE", "1");
}

/// A running `outfitter-panel serve`.
#[derive(Debug)]
pub struct Panel {
    port: u16,
    daemon: Daemon,
}

impl Panel {
    /// Starts `serve` on a free port, with its log in `dir`, and waits for `/healthz`.
    pub async fn start(settings: &PanelSettings, dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let port = free_port();
        let mut cmd = settings.command();
        cmd.arg("serve")
            .env("OUTFITTER_BIND", format!("127.0.0.1:{port}"));
        let daemon = Daemon::spawn(
            "outfitter-panel serve",
            cmd,
            &dir.join(format!("panel-{port}.log")),
        )?;
        let mut panel = Self { port, daemon };
        panel.wait_ready().await?;
        Ok(panel)
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILLs the panel (and reaps it): nothing of it gets to clean up.
    pub fn kill(&mut self) {
        self.daemon.kill();
    }

    /// The panel's own log, for failure messages.
    pub fn output_tail(&self, n: usize) -> String {
        self.daemon.output_tail(n)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        outfitter_test_support::install_tls_provider();
        let client = reqwest::Client::new();
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            self.daemon.ensure_running()?;
            if let Ok(r) = client.get(format!("{}/healthz", self.url())).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "panel did not answer /healthz within {READY_LIMIT:?}; its output:\n{}",
                    self.daemon.output_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
