//! The bench's own `redis-server` on a free port, without persistence (never the system
//! Redis on 6379), and what it reports about itself.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::process::{Daemon, wait_until};

/// A private redis-server.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    daemon: Daemon,
}

impl RedisServer {
    /// Starts `redis-server --save "" --appendonly no` on a free port, files in `dir`.
    pub fn start(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(dir);
        let mut daemon = Daemon::spawn("redis-server", cmd, &dir.join("redis.log"))
            .context("redis-server must be installed (apt-get install redis-server)")?;
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
        wait_until(
            Duration::from_secs(10),
            "redis-server answering PING",
            || {
                daemon.ensure_running().is_ok()
                    && client
                        .get_connection()
                        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                        .is_ok()
            },
        )?;
        daemon.ensure_running()?;
        Ok(Self { port, daemon })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> Result<redis::Client> {
        Ok(redis::Client::open(self.url())?)
    }

    /// A blocking connection (for baselines and bookkeeping, not for measured paths that
    /// the programs under test take).
    pub fn connection(&self) -> Result<redis::Connection> {
        Ok(self.client()?.get_connection()?)
    }

    /// `used_memory` from `INFO memory`, in bytes.
    pub fn used_memory(&self) -> Result<u64> {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query(&mut self.connection()?)?;
        info_field(&info, "used_memory")
            .and_then(|v| v.parse().ok())
            .context("INFO memory has no used_memory")
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }
}

/// A `field:value` line of an `INFO` reply.
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

/// `redis-server --version`, e.g. `7.0.15`.
pub fn server_version() -> String {
    Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.split_whitespace()
                .find_map(|w| w.strip_prefix("v=").map(str::to_owned))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A TCP port on 127.0.0.1 that was free a moment ago and not handed out before by this
/// process (the kernel may offer a just-closed port twice in a row).
pub fn free_port() -> Result<u16> {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
        if HANDED_OUT
            .lock()
            .expect("port registry poisoned")
            .insert(port)
        {
            return Ok(port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_field_finds_exact_names_only() {
        let info = "# Memory\r\nused_memory:1024\r\nused_memory_human:1.00K\r\n";
        assert_eq!(info_field(info, "used_memory"), Some("1024"));
        assert_eq!(info_field(info, "used_memory_human"), Some("1.00K"));
        assert_eq!(info_field(info, "used"), None);
    }

    #[test]
    fn private_server_starts_and_reports_memory() {
        let dir = tempfile::tempdir().unwrap();
        let server = RedisServer::start(dir.path()).unwrap();
        assert_ne!(server.url(), "redis://127.0.0.1:6379/");
        assert!(server.used_memory().unwrap() > 0);
    }
}
