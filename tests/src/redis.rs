//! A private `redis-server` per test: its own port and directory, no persistence unless
//! asked, stoppable and restartable on the same port (to test outages). Never the system
//! Redis on 6379.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::ports::free_port;
use crate::process::Daemon;

/// How long a fresh redis-server may take to accept connections.
const START_LIMIT: Duration = Duration::from_secs(10);

/// A redis-server owned by one test.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    daemon: Option<Daemon>,
}

impl RedisServer {
    /// Starts a redis-server on a free port with its files in `dir`.
    pub fn start(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut server = Self {
            port: free_port(),
            dir: dir.to_owned(),
            daemon: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL: an outage, not a shutdown). Its data is gone.
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill();
        }
    }

    /// Starts the server again on the same port (stopping it first if it runs).
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--dir"])
            .arg(&self.dir);
        let mut daemon = Daemon::spawn("redis-server", cmd, &self.dir.join("redis.log"))
            .context("redis-server must be installed (scripts/test installs it)")?;
        let deadline = Instant::now() + START_LIMIT;
        while !self.answers_ping() {
            daemon.ensure_running()?;
            if Instant::now() > deadline {
                bail!(
                    "redis-server on port {} did not answer PING within {START_LIMIT:?}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.daemon = Some(daemon);
        Ok(())
    }

    /// Runs `redis-cli -p <port> <args>` (as the default user) and returns its output. For
    /// test setup only (ACL users); tests observe the programs through their own surfaces.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .context("running redis-cli")?;
        if !out.status.success() {
            bail!(
                "redis-cli {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Whether the server answers `PING` with `+PONG` (raw RESP, no client library needed).
    pub fn answers_ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }
}
