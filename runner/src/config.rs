//! The runner's configuration, in the shape the panel's `settings.rs` has too: a
//! [`SettingsLayer`] with every setting optional, read from flags (each also an `OUTFITTER_*`
//! environment variable) and from the TOML file named by `--config`; layered
//! defaults < file < environment < flags; then checked into [`DaemonConfig`] or [`Limits`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use outfitter_contract::keys::Key;
use outfitter_contract::logs::LogFormat;
use outfitter_contract::redis_tls::RedisTls;
use outfitter_contract::settings_file::{SettingsFileError, read_layer};
use outfitter_redis::{RedisTarget, TargetError};
use serde::Deserialize;

use crate::host_metrics::{ServiceSettings, Target};

/// Every setting, each optional: one layer (file, or flags + environment).
///
/// The names `agent_id`, `agent_key` and `redis_url` are the ones `outfitter-panel agent add`
/// prints; keep them.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsLayer {
    /// TOML file with these settings (flags and environment override it).
    #[arg(long, env = "OUTFITTER_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// This server's agent id, as registered in the panel.
    #[arg(long, env = "OUTFITTER_AGENT_ID")]
    pub agent_id: Option<String>,
    /// This agent's key (64 hex digits), printed once by `outfitter-panel agent add`.
    #[arg(long, env = "OUTFITTER_AGENT_KEY", hide_env_values = true)]
    pub agent_key: Option<String>,
    /// Redis URL, e.g. redis://user:password@panel.example:6379/0; rediss:// for TLS; with
    /// redis_cluster, seed nodes of the cluster separated by commas.
    #[arg(long, env = "OUTFITTER_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// redis_url is a Redis Cluster (its seed nodes; any one is enough to find the rest).
    #[arg(long, env = "OUTFITTER_REDIS_CLUSTER", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub redis_cluster: Option<bool>,
    /// PEM certificates to trust for a rediss:// Redis instead of the system's roots.
    #[arg(long, env = "OUTFITTER_REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,
    /// PEM certificate the runner presents to a rediss:// Redis that asks for one (with
    /// redis_client_key).
    #[arg(long, env = "OUTFITTER_REDIS_CLIENT_CERT")]
    pub redis_client_cert: Option<PathBuf>,
    /// PEM private key of redis_client_cert.
    #[arg(long, env = "OUTFITTER_REDIS_CLIENT_KEY")]
    pub redis_client_key: Option<PathBuf>,
    /// Root of the local catalog: one directory per installer bundle.
    #[arg(long, env = "OUTFITTER_INSTALLERS")]
    pub installers: Option<PathBuf>,
    /// Directory for per-job log files.
    #[arg(long, env = "OUTFITTER_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
    /// Directory for the runner's own state (the outbox).
    #[arg(long, env = "OUTFITTER_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Jobs run at the same time (installers contend for the dpkg lock; keep 1 unless you know).
    #[arg(long, env = "OUTFITTER_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Seconds between SIGTERM and SIGKILL when a job's tree is stopped (timeout, cancel, failure).
    #[arg(long, env = "OUTFITTER_KILL_GRACE_SECONDS")]
    pub kill_grace_seconds: Option<u64>,
    /// Seconds to keep reading output after the script exited (daemons holding stdout).
    #[arg(long, env = "OUTFITTER_DRAIN_GRACE_SECONDS")]
    pub drain_grace_seconds: Option<u64>,
    /// Seconds a running job may still take after SIGTERM before it is killed and left recoverable.
    #[arg(long, env = "OUTFITTER_STOP_GRACE_SECONDS")]
    pub stop_grace_seconds: Option<u64>,
    /// Memory limit per job in MiB through the memory cgroup (0 = none).
    #[arg(long, env = "OUTFITTER_MEMORY_MAX_MB")]
    pub memory_max_mb: Option<u64>,
    /// Process limit per job through the pids cgroup (0 = none).
    #[arg(long, env = "OUTFITTER_PIDS_MAX")]
    pub pids_max: Option<u64>,
    /// Largest file a script may write, in MiB (RLIMIT_FSIZE).
    #[arg(long, env = "OUTFITTER_FILE_SIZE_MAX_MB")]
    pub file_size_max_mb: Option<u64>,
    /// Open files per process of a script (RLIMIT_NOFILE; never above the runner's hard limit).
    #[arg(long, env = "OUTFITTER_OPEN_FILES_MAX")]
    pub open_files_max: Option<u64>,
    /// Output stored per attempt, in bytes; the rest is discarded behind a marker line.
    #[arg(long, env = "OUTFITTER_OUTPUT_MAX_BYTES")]
    pub output_max_bytes: Option<u64>,
    /// Longest output line in bytes; longer lines are split.
    #[arg(long, env = "OUTFITTER_LINE_MAX_BYTES")]
    pub line_max_bytes: Option<usize>,
    /// Put each job in its own cgroups where the host allows (false: process group and subreaper only).
    #[arg(long, env = "OUTFITTER_CGROUPS", action = clap::ArgAction::Set)]
    pub cgroups: Option<bool>,
    /// Log lines on stderr: `text`, or `json` for one JSON object per line.
    #[arg(long, env = "OUTFITTER_LOG_FORMAT", value_name = "text|json")]
    pub log_format: Option<LogFormat>,
    /// Serve Prometheus metrics on GET /metrics at this address, e.g. 127.0.0.1:9465 (unset: no listener).
    #[arg(long, env = "OUTFITTER_METRICS_BIND", value_name = "ADDRESS:PORT")]
    pub metrics_bind: Option<SocketAddr>,
    /// Measure well-known services (PostgreSQL, nginx, Redis, Docker) for the heartbeat's host metrics (false: none).
    #[arg(long, env = "OUTFITTER_METRICS_SERVICES", action = clap::ArgAction::Set)]
    pub metrics_services: Option<bool>,
    /// Ask a local PostgreSQL (through `runuser -u postgres -- psql`) when one runs.
    #[arg(long, env = "OUTFITTER_METRICS_POSTGRES", action = clap::ArgAction::Set)]
    pub metrics_postgres: Option<bool>,
    /// nginx stub_status URL (unset: http://127.0.0.1/nginx_status when nginx runs; `off`: never).
    #[arg(
        long,
        env = "OUTFITTER_METRICS_NGINX_STATUS_URL",
        value_name = "URL|off"
    )]
    pub metrics_nginx_status_url: Option<String>,
    /// Redis whose INFO is reported (unset: redis://127.0.0.1:6379/ when redis-server runs; `off`: never).
    #[arg(
        long,
        env = "OUTFITTER_METRICS_REDIS_URL",
        value_name = "URL|off",
        hide_env_values = true
    )]
    pub metrics_redis_url: Option<String>,
    /// Docker engine socket (unset: /var/run/docker.sock when it exists; `off`: never).
    #[arg(long, env = "OUTFITTER_METRICS_DOCKER_SOCKET", value_name = "PATH|off")]
    pub metrics_docker_socket: Option<String>,
}

/// Defaults that work on a server installed by the shipped unit file.
pub mod default {
    pub const REDIS_URL: &str = "redis://127.0.0.1:6379/";
    pub const INSTALLERS: &str = "/var/lib/outfitter/installers";
    pub const LOG_DIR: &str = "/var/log/outfitter/jobs";
    pub const STATE_DIR: &str = "/var/lib/outfitter/runner";
    pub const CONCURRENCY: usize = 1;
    pub const KILL_GRACE_SECONDS: u64 = 10;
    pub const DRAIN_GRACE_SECONDS: u64 = 5;
    pub const STOP_GRACE_SECONDS: u64 = 300;
    pub const MEMORY_MAX_MB: u64 = 0;
    pub const PIDS_MAX: u64 = 4096;
    pub const FILE_SIZE_MAX_MB: u64 = 16 * 1024;
    pub const OPEN_FILES_MAX: u64 = 65_536;
    pub const OUTPUT_MAX_BYTES: u64 = 16 * 1024 * 1024;
    pub const LINE_MAX_BYTES: usize = 16 * 1024;
}

/// Bounds no setting may cross.
pub mod bound {
    pub const MAX_CONCURRENCY: usize = 64;
    pub const MIN_LINE_MAX_BYTES: usize = 256;
    pub const MAX_LINE_MAX_BYTES: usize = 1024 * 1024;
    pub const MIN_OUTPUT_MAX_BYTES: u64 = 4096;
}

/// A setting that is missing or breaks a rule.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] SettingsFileError),
    #[error(
        "setting `{field}` is required (flag --{flag}, env {env}, or `{field}` in the config file)"
    )]
    Missing {
        field: &'static str,
        flag: &'static str,
        env: &'static str,
    },
    #[error("setting `{field}`: {rule}")]
    Invalid { field: &'static str, rule: String },
    /// `redis_url` with `redis_cluster` and the TLS files (the message names the setting).
    #[error("setting {0}")]
    Redis(#[from] TargetError),
}

impl SettingsLayer {
    /// Reads a TOML file of settings; a key that is no setting is an error naming it.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Ok(read_layer(path, &Self::names())?)
    }

    /// The names a file may set: every flag but `config`.
    fn names() -> Vec<String> {
        Self::augment_args(clap::Command::new("settings"))
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .filter(|id| id != "config")
            .collect()
    }

    /// `self` wins where it has a value; `lower` fills the gaps.
    pub fn over(self, lower: SettingsLayer) -> SettingsLayer {
        SettingsLayer {
            config: self.config.or(lower.config),
            agent_id: self.agent_id.or(lower.agent_id),
            agent_key: self.agent_key.or(lower.agent_key),
            redis_url: self.redis_url.or(lower.redis_url),
            redis_cluster: self.redis_cluster.or(lower.redis_cluster),
            redis_ca_file: self.redis_ca_file.or(lower.redis_ca_file),
            redis_client_cert: self.redis_client_cert.or(lower.redis_client_cert),
            redis_client_key: self.redis_client_key.or(lower.redis_client_key),
            installers: self.installers.or(lower.installers),
            log_dir: self.log_dir.or(lower.log_dir),
            state_dir: self.state_dir.or(lower.state_dir),
            concurrency: self.concurrency.or(lower.concurrency),
            kill_grace_seconds: self.kill_grace_seconds.or(lower.kill_grace_seconds),
            drain_grace_seconds: self.drain_grace_seconds.or(lower.drain_grace_seconds),
            stop_grace_seconds: self.stop_grace_seconds.or(lower.stop_grace_seconds),
            memory_max_mb: self.memory_max_mb.or(lower.memory_max_mb),
            pids_max: self.pids_max.or(lower.pids_max),
            file_size_max_mb: self.file_size_max_mb.or(lower.file_size_max_mb),
            open_files_max: self.open_files_max.or(lower.open_files_max),
            output_max_bytes: self.output_max_bytes.or(lower.output_max_bytes),
            line_max_bytes: self.line_max_bytes.or(lower.line_max_bytes),
            cgroups: self.cgroups.or(lower.cgroups),
            log_format: self.log_format.or(lower.log_format),
            metrics_bind: self.metrics_bind.or(lower.metrics_bind),
            metrics_services: self.metrics_services.or(lower.metrics_services),
            metrics_postgres: self.metrics_postgres.or(lower.metrics_postgres),
            metrics_nginx_status_url: self
                .metrics_nginx_status_url
                .or(lower.metrics_nginx_status_url),
            metrics_redis_url: self.metrics_redis_url.or(lower.metrics_redis_url),
            metrics_docker_socket: self.metrics_docker_socket.or(lower.metrics_docker_socket),
        }
    }

    /// Flags and environment (`self`) over the file named by `--config`, if any.
    pub fn layered(self) -> Result<SettingsLayer, ConfigError> {
        match self.config.clone() {
            Some(path) => Ok(self.over(SettingsLayer::from_file(&path)?)),
            None => Ok(self),
        }
    }

    /// The sandbox limits (all settings have defaults).
    pub fn limits(&self) -> Result<Limits, ConfigError> {
        let line_max = self.line_max_bytes.unwrap_or(default::LINE_MAX_BYTES);
        if !(bound::MIN_LINE_MAX_BYTES..=bound::MAX_LINE_MAX_BYTES).contains(&line_max) {
            return Err(ConfigError::Invalid {
                field: "line_max_bytes",
                rule: format!(
                    "must be from {} to {}",
                    bound::MIN_LINE_MAX_BYTES,
                    bound::MAX_LINE_MAX_BYTES
                ),
            });
        }
        let output_max = self.output_max_bytes.unwrap_or(default::OUTPUT_MAX_BYTES);
        if output_max < bound::MIN_OUTPUT_MAX_BYTES {
            return Err(ConfigError::Invalid {
                field: "output_max_bytes",
                rule: format!("must be at least {}", bound::MIN_OUTPUT_MAX_BYTES),
            });
        }
        let nonzero = |v: u64| (v > 0).then_some(v);
        Ok(Limits {
            kill_grace: Duration::from_secs(
                self.kill_grace_seconds
                    .unwrap_or(default::KILL_GRACE_SECONDS),
            ),
            drain_grace: Duration::from_secs(
                self.drain_grace_seconds
                    .unwrap_or(default::DRAIN_GRACE_SECONDS),
            ),
            memory_max_bytes: nonzero(self.memory_max_mb.unwrap_or(default::MEMORY_MAX_MB))
                .map(|m| m * 1024 * 1024),
            pids_max: nonzero(self.pids_max.unwrap_or(default::PIDS_MAX)),
            file_size_max_bytes: self.file_size_max_mb.unwrap_or(default::FILE_SIZE_MAX_MB)
                * 1024
                * 1024,
            open_files_max: self.open_files_max.unwrap_or(default::OPEN_FILES_MAX),
            output_max_bytes: output_max,
            line_max_bytes: line_max,
            cgroups: self.cgroups.unwrap_or(true),
        })
    }

    /// Which services the host metrics ask (all have defaults that look for the service).
    pub fn service_metrics(&self) -> Result<ServiceSettings, ConfigError> {
        let nginx = Target::from_setting(self.metrics_nginx_status_url.as_deref());
        if let Target::At(url) = &nginx
            && !url.starts_with("http://")
        {
            return Err(ConfigError::Invalid {
                field: "metrics_nginx_status_url",
                rule: format!("must be an http:// URL or `off`, not {url}"),
            });
        }
        let redis = Target::from_setting(self.metrics_redis_url.as_deref());
        if let Target::At(url) = &redis
            && let Err(e) = redis::Client::open(url.as_str())
        {
            return Err(ConfigError::Invalid {
                field: "metrics_redis_url",
                rule: format!("must be a Redis URL or `off`: {e}"),
            });
        }
        Ok(ServiceSettings {
            enabled: self.metrics_services.unwrap_or(true),
            postgres: self.metrics_postgres.unwrap_or(true),
            nginx,
            redis,
            docker: Target::from_setting(self.metrics_docker_socket.as_deref()),
        })
    }

    /// Everything `run` needs, checked.
    pub fn daemon(&self) -> Result<DaemonConfig, ConfigError> {
        let agent_id = self.agent_id.clone().ok_or(ConfigError::Missing {
            field: "agent_id",
            flag: "agent-id",
            env: "OUTFITTER_AGENT_ID",
        })?;
        outfitter_contract::ids::validate_agent_id(&agent_id).map_err(|e| {
            ConfigError::Invalid {
                field: "agent_id",
                rule: e.to_string(),
            }
        })?;
        let key_hex = self.agent_key.as_deref().ok_or(ConfigError::Missing {
            field: "agent_key",
            flag: "agent-key",
            env: "OUTFITTER_AGENT_KEY",
        })?;
        let agent_key = Key::from_hex(key_hex).map_err(|e| ConfigError::Invalid {
            field: "agent_key",
            rule: e.to_string(),
        })?;
        let concurrency = self.concurrency.unwrap_or(default::CONCURRENCY);
        if !(1..=bound::MAX_CONCURRENCY).contains(&concurrency) {
            return Err(ConfigError::Invalid {
                field: "concurrency",
                rule: format!("must be from 1 to {}", bound::MAX_CONCURRENCY),
            });
        }
        let redis_url = self
            .redis_url
            .clone()
            .unwrap_or_else(|| default::REDIS_URL.to_owned());
        let tls = RedisTls {
            ca_file: self.redis_ca_file.clone(),
            client_cert: self.redis_client_cert.clone(),
            client_key: self.redis_client_key.clone(),
        };
        let redis = RedisTarget::new(&redis_url, self.redis_cluster.unwrap_or(false), &tls)?;
        Ok(DaemonConfig {
            agent_id,
            agent_key,
            redis_url,
            redis,
            installers: self
                .installers
                .clone()
                .unwrap_or_else(|| default::INSTALLERS.into()),
            log_dir: self
                .log_dir
                .clone()
                .unwrap_or_else(|| default::LOG_DIR.into()),
            state_dir: self
                .state_dir
                .clone()
                .unwrap_or_else(|| default::STATE_DIR.into()),
            concurrency,
            stop_grace: Duration::from_secs(
                self.stop_grace_seconds
                    .unwrap_or(default::STOP_GRACE_SECONDS),
            ),
            metrics_bind: self.metrics_bind,
            service_metrics: self.service_metrics()?,
            limits: self.limits()?,
        })
    }
}

/// What the sandbox enforces on every script.
#[derive(Debug, Clone)]
pub struct Limits {
    pub kill_grace: Duration,
    pub drain_grace: Duration,
    pub memory_max_bytes: Option<u64>,
    pub pids_max: Option<u64>,
    pub file_size_max_bytes: u64,
    pub open_files_max: u64,
    pub output_max_bytes: u64,
    pub line_max_bytes: usize,
    pub cgroups: bool,
}

impl Default for Limits {
    fn default() -> Self {
        SettingsLayer::default()
            .limits()
            .expect("the defaults are valid")
    }
}

/// The checked configuration of `outfitter-runner run`.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub agent_id: String,
    pub agent_key: Key,
    pub redis_url: String,
    /// The server or cluster of `redis_url`, with the CA and client certificate for a
    /// rediss:// URL read at start.
    pub redis: RedisTarget,
    pub installers: PathBuf,
    pub log_dir: PathBuf,
    pub state_dir: PathBuf,
    pub concurrency: usize,
    pub stop_grace: Duration,
    /// Where `/metrics` is served; `None`: nowhere.
    pub metrics_bind: Option<SocketAddr>,
    /// Which services the heartbeat's host metrics ask.
    pub service_metrics: ServiceSettings,
    pub limits: Limits,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_hex() -> String {
        "ab".repeat(32)
    }

    #[test]
    fn file_values_are_used_where_flags_are_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runner.toml");
        std::fs::write(
            &path,
            format!("agent_id = \"web-1\"\nagent_key = \"{}\"\nredis_url = \"redis://x:1/\"\nconcurrency = 2\n", key_hex()),
        )
        .unwrap();
        let cli = SettingsLayer {
            config: Some(path),
            concurrency: Some(3),
            ..SettingsLayer::default()
        };
        let cfg = cli.layered().unwrap().daemon().unwrap();
        assert_eq!(cfg.agent_id, "web-1");
        assert_eq!(cfg.redis_url, "redis://x:1/");
        assert_eq!(cfg.concurrency, 3, "the flag wins over the file");
        assert_eq!(cfg.limits.line_max_bytes, default::LINE_MAX_BYTES);
    }

    #[test]
    fn unknown_field_in_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runner.toml");
        std::fs::write(&path, "agent_idd = \"x\"\n").unwrap();
        let err = SettingsLayer::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("agent_idd"), "{err}");
    }

    #[test]
    fn missing_or_bad_agent_settings_name_the_field() {
        let err = SettingsLayer::default().daemon().unwrap_err().to_string();
        assert!(
            err.contains("agent_id") && err.contains("OUTFITTER_AGENT_ID"),
            "{err}"
        );
        let s = SettingsLayer {
            agent_id: Some("web-1".into()),
            agent_key: Some("abcd".into()),
            ..SettingsLayer::default()
        };
        assert!(s.daemon().unwrap_err().to_string().contains("agent_key"));
        let s = SettingsLayer {
            agent_id: Some("Web*".into()),
            agent_key: Some(key_hex()),
            ..SettingsLayer::default()
        };
        assert!(s.daemon().unwrap_err().to_string().contains("agent_id"));
        let s = SettingsLayer {
            agent_id: Some("web-1".into()),
            agent_key: Some(key_hex()),
            concurrency: Some(0),
            ..SettingsLayer::default()
        };
        assert!(s.daemon().unwrap_err().to_string().contains("concurrency"));
    }

    #[test]
    fn the_example_in_docs_runner_md_is_a_valid_configuration() {
        let doc = include_str!("../../docs/runner.md");
        let start = doc.find("```toml\n").expect("a toml example") + "```toml\n".len();
        let len = doc[start..].find("```").unwrap();
        let settings: SettingsLayer = toml::from_str(&doc[start..start + len]).unwrap();
        let cfg = settings.daemon().unwrap();
        assert_eq!(cfg.agent_id, "web-1");
        assert_eq!(cfg.concurrency, 1);
    }

    #[test]
    fn metrics_listener_is_off_unless_an_address_is_set() {
        let base = SettingsLayer {
            agent_id: Some("web-1".into()),
            agent_key: Some(key_hex()),
            ..SettingsLayer::default()
        };
        assert_eq!(base.daemon().unwrap().metrics_bind, None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runner.toml");
        std::fs::write(&path, "metrics_bind = \"127.0.0.1:9465\"\n").unwrap();
        let on = SettingsLayer {
            config: Some(path),
            ..base
        };
        assert_eq!(
            on.layered().unwrap().daemon().unwrap().metrics_bind,
            Some("127.0.0.1:9465".parse().unwrap())
        );
    }

    #[test]
    fn service_metrics_look_for_services_unless_told_otherwise() {
        let s = SettingsLayer::default().service_metrics().unwrap();
        assert_eq!(s, ServiceSettings::default());
        assert!(s.enabled && s.postgres && s.redis == Target::Auto);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runner.toml");
        std::fs::write(
            &path,
            "metrics_postgres = false\nmetrics_redis_url = \"redis://127.0.0.1:7001/\"\nmetrics_nginx_status_url = \"off\"\n",
        )
        .unwrap();
        let flags = SettingsLayer {
            config: Some(path),
            metrics_redis_url: Some("redis://127.0.0.1:7002/".into()),
            ..SettingsLayer::default()
        };
        let s = flags.layered().unwrap().service_metrics().unwrap();
        assert!(!s.postgres);
        assert_eq!(s.nginx, Target::Off);
        assert_eq!(
            s.redis,
            Target::At("redis://127.0.0.1:7002/".into()),
            "the flag wins"
        );
        assert_eq!(s.docker, Target::Auto);
        let bad = SettingsLayer {
            metrics_nginx_status_url: Some("https://x/status".into()),
            ..SettingsLayer::default()
        };
        let err = bad.service_metrics().unwrap_err().to_string();
        assert!(err.contains("metrics_nginx_status_url"), "{err}");
    }

    #[test]
    fn zero_memory_and_pids_mean_no_limit() {
        let s = SettingsLayer {
            memory_max_mb: Some(0),
            pids_max: Some(0),
            ..SettingsLayer::default()
        };
        let l = s.limits().unwrap();
        assert_eq!(l.memory_max_bytes, None);
        assert_eq!(l.pids_max, None);
    }
}
