//! One whole installation for the bench: a private Redis, one `outfitter-panel serve`, an
//! admin token, and `outfitter-runner run` processes registered with `agent add`, all with
//! their default (production) settings and every safety feature on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use outfitter_contract::redis_keys::AgentRedisKeys;

use crate::binaries::Binaries;
use crate::process::{Daemon, Memory, wait_until};
use crate::redis_server::{RedisServer, free_port};

/// How long a panel may take to answer `/healthz`, and a runner to send its first heartbeat.
const READY_LIMIT: Duration = Duration::from_secs(30);

/// What a bench runner sets apart from the runner's defaults.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunnerSettings {
    /// `concurrency`; `None`: the default, one job at a time.
    pub(crate) concurrency: Option<usize>,
    /// `cgroups` (default on); off only to price that guarantee separately.
    pub(crate) cgroups: bool,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        RunnerSettings {
            concurrency: None,
            cgroups: true,
        }
    }
}

/// A running installation. Fields drop in order: processes first, Redis last.
#[derive(Debug)]
pub(crate) struct Installation {
    runners: BTreeMap<String, Daemon>,
    panel: Option<(Daemon, u16)>,
    pub redis: RedisServer,
    pub token: String,
    bins: Binaries,
    dir: PathBuf,
    panel_catalog: PathBuf,
    runner_catalog: PathBuf,
}

impl Installation {
    /// Redis, an admin token and one panel serving `panel_catalog`; runners (started later)
    /// read `runner_catalog`. Everything is written under `dir`.
    pub(crate) async fn start(
        bins: &Binaries,
        dir: &Path,
        panel_catalog: &Path,
        runner_catalog: &Path,
    ) -> Result<Self> {
        let redis = RedisServer::start(&dir.join("redis"))?;
        let mut inst = Self {
            runners: BTreeMap::new(),
            panel: None,
            redis,
            token: String::new(),
            bins: bins.clone(),
            dir: dir.to_owned(),
            panel_catalog: panel_catalog.to_owned(),
            runner_catalog: runner_catalog.to_owned(),
        };
        let out = inst.panel_cli(&["token", "add", "--name", "bench", "--role", "admin"])?;
        inst.token = printed_token(&out)?;
        inst.start_panel().await?;
        Ok(inst)
    }

    /// A panel command with a clean environment and this installation's settings.
    fn panel_command(&self) -> Command {
        let mut cmd = Command::new(&self.bins.panel);
        clean_env(&mut cmd);
        cmd.env("OUTFITTER_REDIS_URL", self.redis.url())
            .env("OUTFITTER_SECRET_FILE", self.dir.join("panel.secret"))
            .env("OUTFITTER_INSTALLERS", &self.panel_catalog);
        cmd
    }

    /// Runs a one-shot panel command; its stdout.
    pub(crate) fn panel_cli(&self, args: &[&str]) -> Result<String> {
        let mut cmd = self.panel_command();
        cmd.args(args);
        let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
        if !out.status.success() {
            bail!(
                "outfitter-panel {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// (Re)starts `outfitter-panel serve` on a free port and waits for `/healthz`.
    pub(crate) async fn start_panel(&mut self) -> Result<()> {
        self.panel = None;
        self.panel = Some(serve_panel(self.panel_command(), &self.dir).await?);
        Ok(())
    }

    /// The binaries and the panel's catalog, for a figure that starts a panel of its own.
    pub(crate) fn bins(&self) -> &Binaries {
        &self.bins
    }

    pub(crate) fn panel_catalog(&self) -> &Path {
        &self.panel_catalog
    }

    /// `http://127.0.0.1:<port>` of the panel.
    pub(crate) fn panel_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.panel_port())
    }

    pub(crate) fn panel_port(&self) -> u16 {
        self.panel
            .as_ref()
            .map(|(_, p)| *p)
            .expect("the panel runs")
    }

    pub(crate) fn panel_pid(&self) -> Result<u32> {
        Ok(self
            .panel
            .as_ref()
            .context("the panel does not run")?
            .0
            .pid())
    }

    pub(crate) fn panel_memory(&self) -> Result<Memory> {
        Memory::of(self.panel_pid()?)
    }

    /// Fails with the panel's log when it has exited.
    pub(crate) fn ensure_panel_running(&mut self) -> Result<()> {
        self.panel
            .as_mut()
            .context("the panel does not run")?
            .0
            .ensure_running()
    }

    /// Registers `agent_id` (`agent add`) and writes its runner's configuration; the runner
    /// is started by [`Installation::start_runner`].
    pub(crate) fn add_agent(&mut self, agent_id: &str) -> Result<()> {
        let config = self.panel_cli(&["agent", "add", agent_id])?;
        let dir = self.runner_dir(agent_id);
        std::fs::create_dir_all(dir.join("log"))?;
        std::fs::create_dir_all(dir.join("state"))?;
        // Host metrics as on any server, but no probes of this machine's own services (its
        // Redis on 6379, its PostgreSQL): they are not the bench's. Figure 9 measures them.
        std::fs::write(
            dir.join("runner.toml"),
            format!("{config}\nmetrics_services = false\n"),
        )?;
        Ok(())
    }

    /// Registers `agent_id` and starts its runner.
    pub(crate) fn add_and_start_runner(&mut self, agent_id: &str) -> Result<()> {
        self.add_agent(agent_id)?;
        self.start_runner(agent_id)
    }

    /// Starts (or restarts) the runner of a registered agent and waits for its heartbeat.
    pub(crate) fn start_runner(&mut self, agent_id: &str) -> Result<()> {
        self.start_runner_with(agent_id, RunnerSettings::default())
    }

    /// Like [`Installation::start_runner`], with settings that differ from the runner's
    /// defaults.
    pub(crate) fn start_runner_with(
        &mut self,
        agent_id: &str,
        settings: RunnerSettings,
    ) -> Result<()> {
        self.stop_runner(agent_id);
        let dir = self.runner_dir(agent_id);
        let mut conn = self.redis.connection()?;
        let heartbeat = AgentRedisKeys::new(agent_id).heartbeat();
        // A heartbeat left by an earlier run of this runner must not count as the new one's.
        redis::cmd("DEL").arg(&heartbeat).query::<i64>(&mut conn)?;
        let mut cmd = Command::new(&self.bins.runner);
        clean_env(&mut cmd);
        cmd.arg("run")
            .arg("--config")
            .arg(dir.join("runner.toml"))
            .env("OUTFITTER_INSTALLERS", &self.runner_catalog)
            .env("OUTFITTER_LOG_DIR", dir.join("log"))
            .env("OUTFITTER_STATE_DIR", dir.join("state"));
        if let Some(c) = settings.concurrency {
            cmd.env("OUTFITTER_CONCURRENCY", c.to_string());
        }
        if !settings.cgroups {
            cmd.env("OUTFITTER_CGROUPS", "false");
        }
        let mut daemon = Daemon::spawn(
            &format!("outfitter-runner ({agent_id})"),
            cmd,
            &dir.join("runner.log"),
        )?;
        let started = wait_until(
            READY_LIMIT,
            &format!("the first heartbeat of {agent_id}"),
            || {
                daemon.ensure_running().is_ok()
                    && redis::cmd("EXISTS")
                        .arg(&heartbeat)
                        .query::<bool>(&mut conn)
                        .unwrap_or(false)
            },
        );
        if let Err(e) = started {
            bail!("{e}; runner output:\n{}", daemon.output_tail(30));
        }
        self.runners.insert(agent_id.to_owned(), daemon);
        Ok(())
    }

    /// Whether `agent_id` was registered by [`Installation::add_agent`].
    pub(crate) fn is_registered(&self, agent_id: &str) -> bool {
        self.runner_dir(agent_id).join("runner.toml").is_file()
    }

    /// How many agents [`Installation::add_agent`] registered.
    pub(crate) fn registered_count(&self) -> Result<usize> {
        let runners = self.dir.join("runners");
        if !runners.is_dir() {
            return Ok(0);
        }
        let mut n = 0;
        for entry in std::fs::read_dir(runners)? {
            n += usize::from(entry?.path().join("runner.toml").is_file());
        }
        Ok(n)
    }

    fn runner_dir(&self, agent_id: &str) -> PathBuf {
        self.dir.join("runners").join(agent_id)
    }

    /// Stops one runner (SIGKILL of its group; its jobs are finished when this is called).
    pub(crate) fn stop_runner(&mut self, agent_id: &str) {
        if let Some(mut d) = self.runners.remove(agent_id) {
            d.kill();
        }
    }

    pub(crate) fn runner_pid(&self, agent_id: &str) -> Option<u32> {
        self.runners.get(agent_id).map(Daemon::pid)
    }
}

/// Clears the environment except what a program needs to run at all, so the developer's own
/// `OUTFITTER_*` settings never reach a measured program.
/// The token `outfitter-panel token add` printed: alone on its last line.
pub(crate) fn printed_token(out: &str) -> Result<String> {
    Ok(out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .context("token add printed no token")?
        .trim()
        .to_owned())
}

/// Runs `outfitter-panel serve` from `cmd` (its settings in the environment) on a free port,
/// logging under `dir`, and waits for `/healthz`; the daemon and its port.
pub(crate) async fn serve_panel(mut cmd: Command, dir: &Path) -> Result<(Daemon, u16)> {
    let port = free_port();
    cmd.arg("serve")
        .env("OUTFITTER_BIND", format!("127.0.0.1:{port}"));
    let mut daemon = Daemon::spawn(
        "outfitter-panel serve",
        cmd,
        &dir.join(format!("panel-{port}.log")),
    )?;
    outfitter_test_support::install_tls_provider();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + READY_LIMIT;
    loop {
        daemon.ensure_running()?;
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status().is_success()
        {
            return Ok((daemon, port));
        }
        if Instant::now() > deadline {
            bail!(
                "the panel did not answer /healthz within {READY_LIMIT:?}:\n{}",
                daemon.output_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn clean_env(cmd: &mut Command) {
    cmd.env_clear();
    for keep in ["PATH", "HOME", "LANG", "TMPDIR"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
}
