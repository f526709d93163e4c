//! Every setting of the panel, in the shape the runner's `config.rs` has too: a
//! [`SettingsLayer`] with every setting optional, read from flags (each also an `OUTFITTER_*`
//! environment variable) and from the TOML file named by `--config`; layered
//! defaults < file < environment < flags; then checked into [`Settings`]. Defaults work on a
//! laptop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::builder::BoolishValueParser;
use clap::{ArgMatches, Args, FromArgMatches};
use outfitter_contract::logs::LogFormat;
use outfitter_contract::redis_tls::RedisTls;
use outfitter_contract::settings_file::{SettingsFileError, read_layer};
use serde::Deserialize;

use crate::agents::attention::Thresholds;

/// Defaults that work on a laptop.
pub mod default {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    pub const BIND: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
    pub const REDIS_URL: &str = "redis://127.0.0.1:6379/";
    pub const INSTALLERS: &str = "installers";
    pub const SECRET_FILE: &str = "outfitter-panel.secret";
    pub const RETENTION_DAYS: u64 = 30;
    pub const QUEUE_TTL_SECS: u64 = 86_400;
    pub const SESSION_TTL_SECS: u64 = 43_200;
    pub const MAX_BODY_BYTES: usize = 1024 * 1024;
    pub const PUBSUB_PING_SECS: u64 = 15;
    pub const AUTH_FAILURE_REFILL_SECS: u64 = 6;
    pub const AUTH_FAILURE_BURST: u32 = 10;
    pub const BODY_READ_TIMEOUT_SECS: u64 = 15;
    pub const WEBHOOK_TIMEOUT_MS: u64 = 10_000;
    pub const WEBHOOK_RETRY_BASE_MS: u64 = 60_000;
    pub const WEBHOOK_CONCURRENCY: usize = 16;
    pub const ATTENTION_DISK_PCT: f64 = 90.0;
    pub const ATTENTION_MEMORY_PCT: f64 = 95.0;
    pub const ATTENTION_OFFLINE_SECS: u64 = 120;
    pub const ATTENTION_LOAD_PER_CPU: f64 = 2.0;
    pub const ATTENTION_LOAD_SECS: u64 = 600;
}

/// Every setting, each optional: one layer (the file, or flags + environment).
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsLayer {
    /// TOML file with any of these settings (names as below, with underscores).
    #[arg(long, env = "OUTFITTER_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address the HTTP server listens on [default: 127.0.0.1:8080].
    #[arg(long, env = "OUTFITTER_BIND")]
    pub bind: Option<SocketAddr>,

    /// Redis the panel and the runners share [default: redis://127.0.0.1:6379/];
    /// `rediss://` for TLS; with `redis_cluster`, seed nodes of the cluster separated by
    /// commas.
    #[arg(long, env = "OUTFITTER_REDIS_URL")]
    pub redis_url: Option<String>,

    /// `redis_url` is a Redis Cluster (its seed nodes; any one is enough to find the rest).
    #[arg(long, env = "OUTFITTER_REDIS_CLUSTER", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub redis_cluster: Option<bool>,

    /// PEM certificates to trust for a `rediss://` Redis instead of the system's roots.
    #[arg(long, env = "OUTFITTER_REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,

    /// PEM certificate the panel presents to a `rediss://` Redis that asks for one
    /// (with `redis_client_key`).
    #[arg(long, env = "OUTFITTER_REDIS_CLIENT_CERT")]
    pub redis_client_cert: Option<PathBuf>,

    /// PEM private key of `redis_client_cert`.
    #[arg(long, env = "OUTFITTER_REDIS_CLIENT_KEY")]
    pub redis_client_key: Option<PathBuf>,

    /// Directory of installer bundles (`<id>/manifest.yml` + script) [default: installers].
    #[arg(long, env = "OUTFITTER_INSTALLERS")]
    pub installers: Option<PathBuf>,

    /// The panel secret (created with mode 0600 if missing); every agent key derives from it
    /// [default: outfitter-panel.secret].
    #[arg(long, env = "OUTFITTER_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,

    /// Finished jobs (record, events) and audit entries older than this many days are deleted
    /// [default: 30].
    #[arg(long, env = "OUTFITTER_RETENTION_DAYS")]
    pub retention_days: Option<u64>,

    /// A queued job not started within this many seconds expires (envelope `expires_at`)
    /// [default: 86400].
    #[arg(long, env = "OUTFITTER_QUEUE_TTL_SECS")]
    pub queue_ttl_secs: Option<u64>,

    /// A browser session lasts this many seconds [default: 43200].
    #[arg(long, env = "OUTFITTER_SESSION_TTL_SECS")]
    pub session_ttl_secs: Option<u64>,

    /// Mark the session cookie `Secure` (set it when the panel is served over HTTPS).
    // `--cookie-secure` alone means true; `=` keeps a following positional (an agent id)
    // from being read as its value.
    #[arg(long, env = "OUTFITTER_COOKIE_SECURE", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub cookie_secure: Option<bool>,

    /// Largest accepted request body in bytes (JSON or form); larger gets 413
    /// [default: 1048576].
    #[arg(long, env = "OUTFITTER_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,

    /// A request body must arrive within this many seconds of its headers, or it gets 408 and
    /// the connection is closed (actix's own timeout covers only the headers) [default: 15].
    #[arg(long, env = "OUTFITTER_BODY_READ_TIMEOUT_SECS")]
    pub body_read_timeout_secs: Option<u64>,

    /// Failed sign-ins and invalid bearer tokens one client address may make at once... [default: 10]
    #[arg(long, env = "OUTFITTER_AUTH_FAILURE_BURST")]
    pub auth_failure_burst: Option<u32>,

    /// ...then one more per this many seconds; beyond that it gets 429 with `Retry-After` [default: 6].
    #[arg(long, env = "OUTFITTER_AUTH_FAILURE_REFILL_SECS")]
    pub auth_failure_refill_secs: Option<u64>,

    /// How often the live-events subscription is pinged (a dead connection is noticed then) [default: 15].
    #[arg(long, env = "OUTFITTER_PUBSUB_PING_SECS")]
    pub pubsub_ping_secs: Option<u64>,

    /// Offer only apps whose `conformance.json` (written by the conformance harness) says
    /// `passed` for the current bundle digest (`CatalogStatus::is_proven` in the contract);
    /// failed, stale and untested apps are hidden, and admins still see them and why.
    #[arg(long, env = "OUTFITTER_ONLY_TESTED_APPS", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub only_tested_apps: Option<bool>,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "OUTFITTER_WORKERS")]
    pub workers: Option<usize>,

    /// One webhook delivery attempt (connect, send, answer) may take this many milliseconds;
    /// a receiver that hangs is cut off then and retried [default: 10000].
    #[arg(long, env = "OUTFITTER_WEBHOOK_TIMEOUT_MS")]
    pub webhook_timeout_ms: Option<u64>,

    /// The first retry of a failed webhook delivery waits this many milliseconds, each next
    /// one twice as long up to 60 times it (one minute: about a day of retries) [default: 60000].
    #[arg(long, env = "OUTFITTER_WEBHOOK_RETRY_BASE_MS")]
    pub webhook_retry_base_ms: Option<u64>,

    /// Webhook deliveries one panel has in flight at once [default: 16].
    #[arg(long, env = "OUTFITTER_WEBHOOK_CONCURRENCY")]
    pub webhook_concurrency: Option<usize>,

    /// Refuse webhook URLs and resolved addresses that are loopback, private, link-local or
    /// otherwise internal (docs/operations.md) [default: false].
    #[arg(long, env = "OUTFITTER_WEBHOOK_DENY_PRIVATE", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub webhook_deny_private: Option<bool>,

    /// A server needs attention when its fullest mount is more than this percent used
    /// [default: 90].
    #[arg(long, env = "OUTFITTER_ATTENTION_DISK_PCT")]
    pub attention_disk_pct: Option<f64>,

    /// … or more than this percent of its memory is in use [default: 95].
    #[arg(long, env = "OUTFITTER_ATTENTION_MEMORY_PCT")]
    pub attention_memory_pct: Option<f64>,

    /// … or it sent no heartbeat for this many seconds [default: 120].
    #[arg(long, env = "OUTFITTER_ATTENTION_OFFLINE_SECS")]
    pub attention_offline_secs: Option<u64>,

    /// … or its one-minute load stayed above its CPU count times this [default: 2] …
    #[arg(long, env = "OUTFITTER_ATTENTION_LOAD_PER_CPU")]
    pub attention_load_per_cpu: Option<f64>,

    /// … for this many seconds [default: 600].
    #[arg(long, env = "OUTFITTER_ATTENTION_LOAD_SECS")]
    pub attention_load_secs: Option<u64>,

    /// Log lines on stderr: `text`, or `json` for one JSON object per line [default: text].
    #[arg(long, env = "OUTFITTER_LOG_FORMAT", value_name = "text|json")]
    pub log_format: Option<LogFormat>,
}

/// A setting that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] SettingsFileError),
    #[error(transparent)]
    Flags(#[from] clap::Error),
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
            bind: self.bind.or(lower.bind),
            redis_url: self.redis_url.or(lower.redis_url),
            redis_cluster: self.redis_cluster.or(lower.redis_cluster),
            redis_ca_file: self.redis_ca_file.or(lower.redis_ca_file),
            redis_client_cert: self.redis_client_cert.or(lower.redis_client_cert),
            redis_client_key: self.redis_client_key.or(lower.redis_client_key),
            installers: self.installers.or(lower.installers),
            secret_file: self.secret_file.or(lower.secret_file),
            retention_days: self.retention_days.or(lower.retention_days),
            queue_ttl_secs: self.queue_ttl_secs.or(lower.queue_ttl_secs),
            session_ttl_secs: self.session_ttl_secs.or(lower.session_ttl_secs),
            cookie_secure: self.cookie_secure.or(lower.cookie_secure),
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            body_read_timeout_secs: self.body_read_timeout_secs.or(lower.body_read_timeout_secs),
            auth_failure_burst: self.auth_failure_burst.or(lower.auth_failure_burst),
            auth_failure_refill_secs: self
                .auth_failure_refill_secs
                .or(lower.auth_failure_refill_secs),
            pubsub_ping_secs: self.pubsub_ping_secs.or(lower.pubsub_ping_secs),
            only_tested_apps: self.only_tested_apps.or(lower.only_tested_apps),
            workers: self.workers.or(lower.workers),
            log_format: self.log_format.or(lower.log_format),
            webhook_timeout_ms: self.webhook_timeout_ms.or(lower.webhook_timeout_ms),
            webhook_retry_base_ms: self.webhook_retry_base_ms.or(lower.webhook_retry_base_ms),
            webhook_concurrency: self.webhook_concurrency.or(lower.webhook_concurrency),
            webhook_deny_private: self.webhook_deny_private.or(lower.webhook_deny_private),
            attention_disk_pct: self.attention_disk_pct.or(lower.attention_disk_pct),
            attention_memory_pct: self.attention_memory_pct.or(lower.attention_memory_pct),
            attention_offline_secs: self.attention_offline_secs.or(lower.attention_offline_secs),
            attention_load_per_cpu: self.attention_load_per_cpu.or(lower.attention_load_per_cpu),
            attention_load_secs: self.attention_load_secs.or(lower.attention_load_secs),
        }
    }

    /// Flags and environment (`self`) over the file named by `--config`, if any.
    pub fn layered(self) -> Result<SettingsLayer, ConfigError> {
        match self.config.clone() {
            Some(path) => Ok(self.over(SettingsLayer::from_file(&path)?)),
            None => Ok(self),
        }
    }

    /// The defaults fill what no layer set.
    pub fn settings(self) -> Settings {
        let attention = self.thresholds();
        Settings {
            bind: self.bind.unwrap_or(default::BIND),
            redis_url: self
                .redis_url
                .unwrap_or_else(|| default::REDIS_URL.to_owned()),
            redis_cluster: self.redis_cluster.unwrap_or(false),
            redis_tls: RedisTls {
                ca_file: self.redis_ca_file,
                client_cert: self.redis_client_cert,
                client_key: self.redis_client_key,
            },
            installers: self
                .installers
                .unwrap_or_else(|| default::INSTALLERS.into()),
            secret_file: self
                .secret_file
                .unwrap_or_else(|| default::SECRET_FILE.into()),
            retention_days: self.retention_days.unwrap_or(default::RETENTION_DAYS),
            queue_ttl_secs: self.queue_ttl_secs.unwrap_or(default::QUEUE_TTL_SECS),
            session_ttl_secs: self.session_ttl_secs.unwrap_or(default::SESSION_TTL_SECS),
            cookie_secure: self.cookie_secure.unwrap_or(false),
            max_body_bytes: self.max_body_bytes.unwrap_or(default::MAX_BODY_BYTES),
            body_read_timeout_secs: self
                .body_read_timeout_secs
                .unwrap_or(default::BODY_READ_TIMEOUT_SECS),
            auth_failure_burst: self
                .auth_failure_burst
                .unwrap_or(default::AUTH_FAILURE_BURST),
            auth_failure_refill_secs: self
                .auth_failure_refill_secs
                .unwrap_or(default::AUTH_FAILURE_REFILL_SECS),
            pubsub_ping_secs: self.pubsub_ping_secs.unwrap_or(default::PUBSUB_PING_SECS),
            only_tested_apps: self.only_tested_apps.unwrap_or(false),
            workers: self.workers,
            log_format: self.log_format.unwrap_or_default(),
            webhook_timeout_ms: self
                .webhook_timeout_ms
                .unwrap_or(default::WEBHOOK_TIMEOUT_MS)
                .max(1),
            webhook_retry_base_ms: self
                .webhook_retry_base_ms
                .unwrap_or(default::WEBHOOK_RETRY_BASE_MS)
                .max(1),
            webhook_concurrency: self
                .webhook_concurrency
                .unwrap_or(default::WEBHOOK_CONCURRENCY)
                .max(1),
            webhook_deny_private: self.webhook_deny_private.unwrap_or(false),
            attention,
        }
    }

    /// The attention thresholds; a percentage is kept within 0–100 and a factor above 0 (a
    /// NaN is the default), so no setting can mark every server or none by accident of sign.
    fn thresholds(&self) -> Thresholds {
        let pct = |v: Option<f64>, d: f64| v.filter(|v| !v.is_nan()).unwrap_or(d).clamp(0.0, 100.0);
        let secs_ms = |v: Option<u64>, d: u64| (v.unwrap_or(d).min(u64::MAX / 1000) * 1000) as i64;
        Thresholds {
            disk_pct: pct(self.attention_disk_pct, default::ATTENTION_DISK_PCT),
            memory_pct: pct(self.attention_memory_pct, default::ATTENTION_MEMORY_PCT),
            offline_ms: secs_ms(self.attention_offline_secs, default::ATTENTION_OFFLINE_SECS),
            load_per_cpu: self
                .attention_load_per_cpu
                .filter(|v| v.is_finite() && *v > 0.0)
                .unwrap_or(default::ATTENTION_LOAD_PER_CPU),
            load_ms: secs_ms(self.attention_load_secs, default::ATTENTION_LOAD_SECS),
        }
    }
}

/// The panel's settings, every one resolved (see [`SettingsLayer`] for what each means).
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub redis_url: String,
    pub redis_cluster: bool,
    /// `redis_ca_file`, `redis_client_cert`, `redis_client_key`.
    pub redis_tls: RedisTls,
    pub installers: PathBuf,
    pub secret_file: PathBuf,
    pub retention_days: u64,
    pub queue_ttl_secs: u64,
    pub session_ttl_secs: u64,
    pub cookie_secure: bool,
    pub max_body_bytes: usize,
    pub body_read_timeout_secs: u64,
    pub auth_failure_burst: u32,
    pub auth_failure_refill_secs: u64,
    pub pubsub_ping_secs: u64,
    pub only_tested_apps: bool,
    pub workers: Option<usize>,
    pub log_format: LogFormat,
    pub webhook_timeout_ms: u64,
    pub webhook_retry_base_ms: u64,
    pub webhook_concurrency: usize,
    pub webhook_deny_private: bool,
    /// When a server needs attention (`attention_*`).
    pub attention: Thresholds,
}

impl Settings {
    /// Settings for tests and tools: defaults, with the given Redis, installers and secret.
    pub fn for_paths(redis_url: &str, installers: &Path, secret_file: &Path) -> Self {
        SettingsLayer {
            redis_url: Some(redis_url.to_owned()),
            installers: Some(installers.to_owned()),
            secret_file: Some(secret_file.to_owned()),
            ..SettingsLayer::default()
        }
        .settings()
    }

    /// Resolves the settings of a subcommand from its matches: flags and environment, then
    /// the TOML file named by `--config`, then the defaults.
    pub fn resolve(matches: &ArgMatches) -> Result<Self, ConfigError> {
        Ok(SettingsLayer::from_arg_matches(matches)?
            .layered()?
            .settings())
    }
}

/// The clap command for settings alone.
pub fn command() -> clap::Command {
    SettingsLayer::augment_args(clap::Command::new("outfitter-panel serve"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(args: &[&str]) -> ArgMatches {
        command()
            .no_binary_name(true)
            .try_get_matches_from(args)
            .unwrap()
    }

    #[test]
    fn file_values_apply_unless_a_flag_overrides_them() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("panel.toml");
        std::fs::write(
            &cfg,
            "bind = \"0.0.0.0:9000\"\nretention_days = 7\nredis_url = \"redis://file/\"\n",
        )
        .unwrap();
        let cfg_s = cfg.to_str().unwrap();
        let s = Settings::resolve(&matches(&[
            "--config",
            cfg_s,
            "--redis-url",
            "redis://flag/",
        ]))
        .unwrap();
        assert_eq!(s.bind.to_string(), "0.0.0.0:9000");
        assert_eq!(s.retention_days, 7);
        assert_eq!(s.redis_url, "redis://flag/");
        assert_eq!(s.queue_ttl_secs, 86_400);
    }

    #[test]
    fn unknown_or_mistyped_file_settings_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("panel.toml");
        std::fs::write(&cfg, "bnd = \"x\"\n").unwrap();
        let e = Settings::resolve(&matches(&["--config", cfg.to_str().unwrap()])).unwrap_err();
        assert!(e.to_string().contains("unknown setting \"bnd\""), "{e}");
        std::fs::write(&cfg, "retention_days = \"many\"\n").unwrap();
        assert!(Settings::resolve(&matches(&["--config", cfg.to_str().unwrap()])).is_err());
    }

    #[test]
    fn defaults_apply_where_no_layer_sets_a_value() {
        let s = Settings::resolve(&matches(&[])).unwrap();
        assert_eq!(s.bind, default::BIND);
        assert_eq!(s.redis_url, default::REDIS_URL);
        assert!(!s.cookie_secure && !s.only_tested_apps);
        assert_eq!(s.workers, None);
    }

    #[test]
    fn a_bare_boolean_flag_means_true_and_beats_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("panel.toml");
        std::fs::write(&cfg, "cookie_secure = false\nonly_tested_apps = true\n").unwrap();
        let cfg_s = cfg.to_str().unwrap();
        let s = Settings::resolve(&matches(&["--config", cfg_s, "--cookie-secure"])).unwrap();
        assert!(s.cookie_secure, "the flag wins over the file");
        assert!(s.only_tested_apps, "the file wins over the default");
        let s = Settings::resolve(&matches(&["--cookie-secure=false"])).unwrap();
        assert!(!s.cookie_secure);
    }
}
