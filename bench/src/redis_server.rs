//! The bench's own `redis-server` on a free port, without persistence (never the system
//! Redis on 6379; started by `outfitter-test-support`), and what it reports about itself.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use outfitter_test_support::Persistence;
pub(crate) use outfitter_test_support::free_port;

/// A private redis-server (the launcher the test suites use), with the bench's questions.
#[derive(Debug)]
pub(crate) struct RedisServer {
    server: outfitter_test_support::RedisServer,
    pid: u32,
}

impl RedisServer {
    /// Starts `redis-server --save "" --appendonly no` on a free port, files in `dir`.
    pub(crate) fn start(dir: &Path) -> Result<Self> {
        let server = outfitter_test_support::RedisServer::start_in(dir, Persistence::None)?;
        let pid = server.pid().context("a started redis-server has a pid")?;
        Ok(Self { server, pid })
    }

    pub(crate) fn url(&self) -> String {
        self.server.url()
    }

    pub(crate) fn client(&self) -> Result<redis::Client> {
        Ok(redis::Client::open(self.url())?)
    }

    /// A blocking connection (for baselines and bookkeeping, not for measured paths that
    /// the programs under test take).
    pub(crate) fn connection(&self) -> Result<redis::Connection> {
        Ok(self.client()?.get_connection()?)
    }

    /// `used_memory` from `INFO memory`, in bytes.
    pub(crate) fn used_memory(&self) -> Result<u64> {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query(&mut self.connection()?)?;
        info_field(&info, "used_memory")
            .and_then(|v| v.parse().ok())
            .context("INFO memory has no used_memory")
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }
}

/// A `field:value` line of an `INFO` reply.
pub(crate) fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

/// `redis-server --version`, e.g. `7.0.15`.
pub(crate) fn server_version() -> String {
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
