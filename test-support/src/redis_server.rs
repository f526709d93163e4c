//! A `redis-server` owned by one test (or one bench run): its own port and directory, its
//! output in `redis.log` there, killed on drop. It can be stopped or killed and started again
//! on the same port, to play an outage.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{TestCerts, free_port};

/// How long a fresh redis-server may take to answer `PING` on a busy machine.
const START_LIMIT: Duration = Duration::from_secs(10);
/// How often a port may turn out to be taken by someone else before starting gives up.
const PORT_ATTEMPTS: usize = 5;
/// Lines of `redis.log` quoted in an error.
const LOG_TAIL_LINES: usize = 20;

/// Whether the data survives [`RedisServer::stop`] and [`RedisServer::restart`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// `--save "" --appendonly no`: everything is gone when the server stops.
    None,
    /// An append-only file synced on every write (`--appendfsync always`).
    AppendOnly,
}

/// Why a redis-server could not be started or asked something.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("creating the redis-server directory {dir}: {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("starting redis-server (is it installed? scripts/test installs it): {0}")]
    Spawn(std::io::Error),
    #[error("redis-server on port {port} exited with {status}; redis.log ends:\n{log}")]
    Exited {
        port: u16,
        status: ExitStatus,
        log: String,
    },
    #[error("redis-server on port {port} did not answer PING within {START_LIMIT:?}")]
    NoAnswer { port: u16 },
    #[error("redis-cli {args:?}: {message}")]
    Cli { args: Vec<String>, message: String },
}

/// A private redis-server.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    persistence: Persistence,
    /// A TLS port beside the plain one, with its certificates.
    tls: Option<(u16, TestCerts)>,
    /// A node of a Redis Cluster: its cluster bus port.
    cluster_port: Option<u16>,
    child: Option<Child>,
    /// Set when the server made its own directory; removed after the server is gone.
    _own_dir: Option<tempfile::TempDir>,
}

impl RedisServer {
    /// A server without persistence in a directory of its own.
    ///
    /// # Panics
    /// When redis-server cannot be started: a test that needs one cannot go on.
    pub fn start() -> Self {
        Self::start_own(Persistence::None)
    }

    /// A server with an append-only file in a directory of its own, so data survives
    /// [`RedisServer::stop`] + [`RedisServer::restart`].
    ///
    /// # Panics
    /// When redis-server cannot be started.
    pub fn start_persistent() -> Self {
        Self::start_own(Persistence::AppendOnly)
    }

    /// A server with its files (and `redis.log`) in `dir`, for callers that keep a run's
    /// files together and report errors instead of panicking.
    pub fn start_in(dir: &Path, persistence: Persistence) -> Result<Self, StartError> {
        std::fs::create_dir_all(dir).map_err(|source| StartError::Dir {
            dir: dir.to_owned(),
            source,
        })?;
        Self::launch(dir.to_owned(), persistence, None, None)
    }

    /// A node for a Redis Cluster (`cluster-enabled`, its bus on a free port, a node timeout
    /// of 2 s so a failover takes seconds), with its files in `dir`; `nodes.conf` there keeps
    /// its place in the cluster across [`RedisServer::restart`]. See `RedisCluster`.
    pub fn start_cluster_node_in(dir: &Path) -> Result<Self, StartError> {
        std::fs::create_dir_all(dir).map_err(|source| StartError::Dir {
            dir: dir.to_owned(),
            source,
        })?;
        let mut server = Self::unstarted(dir.to_owned(), Persistence::AppendOnly, None, None);
        server.cluster_port = Some(free_port());
        server.spawn_retrying()
    }

    /// Like [`RedisServer::start_in`], also listening for TLS on a port of its own with
    /// `certs`, and asking every TLS client for a certificate signed by their CA
    /// (`tls-auth-clients yes`). The plain port stays, bound to 127.0.0.1, for the test's
    /// own setup; [`RedisServer::tls_url`] is the one to give the programs.
    pub fn start_tls_in(dir: &Path, certs: TestCerts) -> Result<Self, StartError> {
        std::fs::create_dir_all(dir).map_err(|source| StartError::Dir {
            dir: dir.to_owned(),
            source,
        })?;
        Self::launch(dir.to_owned(), Persistence::None, Some(certs), None)
    }

    fn start_own(persistence: Persistence) -> Self {
        let made = tempfile::tempdir()
            .map_err(|source| StartError::Dir {
                dir: std::env::temp_dir(),
                source,
            })
            .and_then(|own| Self::launch(own.path().to_owned(), persistence, None, Some(own)));
        match made {
            Ok(server) => server,
            Err(e) => panic!("{e}"),
        }
    }

    fn launch(
        dir: PathBuf,
        persistence: Persistence,
        certs: Option<TestCerts>,
        own_dir: Option<tempfile::TempDir>,
    ) -> Result<Self, StartError> {
        Self::unstarted(dir, persistence, certs, own_dir).spawn_retrying()
    }

    fn unstarted(
        dir: PathBuf,
        persistence: Persistence,
        certs: Option<TestCerts>,
        own_dir: Option<tempfile::TempDir>,
    ) -> Self {
        Self {
            port: free_port(),
            dir,
            persistence,
            tls: certs.map(|c| (free_port(), c)),
            cluster_port: None,
            child: None,
            _own_dir: own_dir,
        }
    }

    /// Starts it; another process may take a port between `free_port` and the bind, so a
    /// server that exits at start tries other ports.
    fn spawn_retrying(mut self) -> Result<Self, StartError> {
        for attempt in 1..=PORT_ATTEMPTS {
            match self.spawn() {
                Err(StartError::Exited { .. }) if attempt < PORT_ATTEMPTS => {
                    self.port = free_port();
                    if let Some((port, _)) = &mut self.tls {
                        *port = free_port();
                    }
                    if let Some(port) = &mut self.cluster_port {
                        *port = free_port();
                    }
                }
                other => return other.map(|()| self),
            }
        }
        unreachable!("the last attempt returns")
    }

    fn spawn(&mut self) -> Result<(), StartError> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(StartError::Spawn)?;
        let log_err = log.try_clone().map_err(StartError::Spawn)?;
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(&self.dir);
        match self.persistence {
            Persistence::None => cmd.args(["--appendonly", "no"]),
            Persistence::AppendOnly => cmd.args(["--appendonly", "yes", "--appendfsync", "always"]),
        };
        if let Some((port, certs)) = &self.tls {
            cmd.args(["--tls-port", &port.to_string()])
                .arg("--tls-cert-file")
                .arg(&certs.server_cert)
                .arg("--tls-key-file")
                .arg(&certs.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&certs.ca)
                .args(["--tls-auth-clients", "yes"]);
        }
        if let Some(bus) = self.cluster_port {
            cmd.args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "2000"])
                // A replica fails over whatever the age of its data: a test kills masters
                // on purpose, and a replica idle between tests must still take over.
                .args(["--cluster-replica-validity-factor", "0"])
                .args(["--cluster-port", &bus.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(StartError::Spawn)?;
        let deadline = Instant::now() + START_LIMIT;
        while !self.answers_ping() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(StartError::Exited {
                    port: self.port,
                    status,
                    log: self.log_tail(),
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(StartError::NoAnswer { port: self.port });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
        Ok(())
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rediss://127.0.0.1:<tls port>/` of a server started with [`RedisServer::start_tls_in`].
    pub fn tls_url(&self) -> Option<String> {
        self.tls
            .as_ref()
            .map(|(port, _)| format!("rediss://127.0.0.1:{port}/"))
    }

    /// The TLS port, when there is one.
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.as_ref().map(|(port, _)| *port)
    }

    /// The server's directory (its data files and `redis.log`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL: an outage, not a shutdown. Unsynced data is lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server with SIGTERM and waits for it: a persistent one writes its data first.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory (stopping it first if it runs).
    pub fn restart(&mut self) -> Result<(), StartError> {
        self.stop();
        self.spawn()
    }

    /// Runs `redis-cli -p <port> <args>` as the default user and returns its output. For test
    /// setup (ACL users); tests observe the programs through their own surfaces.
    pub fn cli(&self, args: &[&str]) -> Result<String, StartError> {
        let cli_error = |message: String| StartError::Cli {
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            message,
        };
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .map_err(|e| cli_error(e.to_string()))?;
        if !out.status.success() {
            return Err(cli_error(String::from_utf8_lossy(&out.stderr).into_owned()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Whether the server answers `PING` with `+PONG` (raw RESP: no client library needed).
    pub fn answers_ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_server_answers_and_is_never_the_system_one() {
        let server = RedisServer::start();
        assert_ne!(server.port(), 6379);
        assert!(server.answers_ping());
        assert_eq!(server.cli(&["SET", "k", "v"]).unwrap(), "OK");
    }

    #[test]
    fn killed_server_comes_back_on_the_same_port_without_its_data() {
        let mut server = RedisServer::start();
        server.cli(&["SET", "k", "v"]).unwrap();
        let url = server.url();
        server.kill();
        assert!(!server.answers_ping(), "a killed server must not answer");
        server.restart().unwrap();
        assert_eq!(server.url(), url);
        assert_eq!(server.cli(&["GET", "k"]).unwrap(), "");
    }

    #[test]
    fn persistent_server_keeps_its_data_across_a_stop() {
        let mut server = RedisServer::start_persistent();
        server.cli(&["SET", "k", "v"]).unwrap();
        server.stop();
        server.restart().unwrap();
        assert_eq!(server.cli(&["GET", "k"]).unwrap(), "v");
    }

    #[test]
    fn server_in_a_given_directory_logs_there() {
        let dir = tempfile::tempdir().unwrap();
        let server = RedisServer::start_in(&dir.path().join("redis"), Persistence::None).unwrap();
        assert!(server.answers_ping());
        assert!(dir.path().join("redis/redis.log").exists());
    }
}
