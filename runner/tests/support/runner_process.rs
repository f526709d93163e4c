//! The real `outfitter-runner run` as a child process, configured through a TOML file.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{Panel, bundles_dir};

/// Settings a test may change; the rest are small test values.
#[derive(Debug, Clone)]
pub(crate) struct RunnerOptions {
    pub installers: PathBuf,
    pub concurrency: usize,
    pub kill_grace_seconds: u64,
    pub drain_grace_seconds: u64,
    pub stop_grace_seconds: u64,
    pub cgroups: bool,
    pub output_max_bytes: Option<u64>,
    pub memory_max_mb: Option<u64>,
    pub pids_max: Option<u64>,
    /// `metrics_bind` (off when `None`, the default).
    pub metrics_bind: Option<std::net::SocketAddr>,
    /// Extra environment for the runner process (never to reach a script).
    pub env: Vec<(String, String)>,
    /// Leave this fd open (not close-on-exec) in the runner, pointing at /dev/null.
    pub leak_fd: Option<i32>,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            installers: bundles_dir(),
            concurrency: 1,
            kill_grace_seconds: 2,
            drain_grace_seconds: 1,
            stop_grace_seconds: 30,
            cgroups: true,
            output_max_bytes: None,
            memory_max_mb: None,
            pids_max: None,
            metrics_bind: None,
            env: Vec::new(),
            leak_fd: None,
        }
    }
}

pub(crate) struct RunnerProcess {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    config: PathBuf,
    options: RunnerOptions,
}

impl RunnerProcess {
    pub(crate) fn start(panel: &Panel, redis_url: &str, options: RunnerOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("runner.toml");
        let mut toml = format!(
            "agent_id = \"{}\"\nagent_key = \"{}\"\nredis_url = \"{}\"\ninstallers = \"{}\"\nlog_dir = \"{}\"\nstate_dir = \"{}\"\nconcurrency = {}\nkill_grace_seconds = {}\ndrain_grace_seconds = {}\nstop_grace_seconds = {}\ncgroups = {}\n",
            panel.agent_id,
            panel.agent_key_hex(),
            redis_url,
            options.installers.display(),
            dir.path().join("logs").display(),
            dir.path().join("state").display(),
            options.concurrency,
            options.kill_grace_seconds,
            options.drain_grace_seconds,
            options.stop_grace_seconds,
            options.cgroups,
        );
        if let Some(max) = options.output_max_bytes {
            toml.push_str(&format!("output_max_bytes = {max}\n"));
        }
        if let Some(max) = options.memory_max_mb {
            toml.push_str(&format!("memory_max_mb = {max}\n"));
        }
        if let Some(max) = options.pids_max {
            toml.push_str(&format!("pids_max = {max}\n"));
        }
        // Services of the host metrics: only the test's own Redis, never this machine's
        // (its Redis on 6379, its PostgreSQL).
        toml.push_str(&format!(
            "metrics_redis_url = \"{redis_url}\"\nmetrics_postgres = false\nmetrics_nginx_status_url = \"off\"\nmetrics_docker_socket = \"off\"\n"
        ));
        if let Some(addr) = options.metrics_bind {
            toml.push_str(&format!("metrics_bind = \"{addr}\"\n"));
        }
        fs::write(&config, toml).unwrap();
        let mut p = RunnerProcess {
            child: None,
            dir,
            config,
            options,
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("runner.stderr"))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_outfitter-runner"));
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config)
            .env("OUTFITTER_LOG", "info,outfitter_runner=debug")
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(fd) = self.options.leak_fd {
            let devnull = fs::File::open("/dev/null").unwrap();
            let src = std::os::fd::IntoRawFd::into_raw_fd(devnull);
            // SAFETY: dup2 between fork and exec; the new fd has no close-on-exec flag.
            #[allow(unsafe_code)]
            unsafe {
                cmd.pre_exec(move || {
                    if libc::dup2(src, fd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        self.child = Some(cmd.spawn().expect("runner binary starts"));
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The runner's stderr so far (for failure messages).
    pub(crate) fn stderr(&self) -> String {
        fs::read_to_string(self.dir.path().join("runner.stderr")).unwrap_or_default()
    }

    pub(crate) fn log_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    pub(crate) fn outbox_dir(&self) -> PathBuf {
        self.dir.path().join("state/outbox")
    }

    pub(crate) fn job_log(&self, job_id: &str) -> String {
        fs::read_to_string(self.log_dir().join(format!("{job_id}.log"))).unwrap_or_default()
    }

    /// SIGKILL, as a crash would.
    pub(crate) fn kill_hard(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM; returns how long the runner took to exit, and its status.
    pub(crate) fn terminate(
        &mut self,
        limit: Duration,
    ) -> (Duration, Option<std::process::ExitStatus>) {
        let started = std::time::Instant::now();
        let Some(mut c) = self.child.take() else {
            return (Duration::ZERO, None);
        };
        let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return (started.elapsed(), Some(status));
            }
            if started.elapsed() > limit {
                let _ = c.kill();
                let _ = c.wait();
                return (started.elapsed(), None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the same runner again (same config, state and log directories).
    pub(crate) fn restart(&mut self) {
        self.kill_hard();
        self.spawn();
    }

    pub(crate) fn config_path(&self) -> &Path {
        &self.config
    }
}

impl Drop for RunnerProcess {
    fn drop(&mut self) {
        self.kill_hard();
    }
}
