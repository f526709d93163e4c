//! Every setting of the panel, in one struct: a TOML file (`--config`), each setting also a
//! flag and an `OUTFITTER_*` environment variable. Precedence: flag or environment, then the
//! file, then the default. Defaults work on a laptop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches};
use serde::{Deserialize, Serialize};

/// Panel settings.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// TOML file with any of these settings (names as below, with underscores).
    #[arg(long, env = "OUTFITTER_CONFIG")]
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub config: Option<PathBuf>,

    /// Address the HTTP server listens on.
    #[arg(long, env = "OUTFITTER_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Redis the panel and the runners share.
    #[arg(
        long,
        env = "OUTFITTER_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/"
    )]
    pub redis_url: String,

    /// Directory of installer bundles (`<id>/manifest.yml` + script).
    #[arg(long, env = "OUTFITTER_INSTALLERS", default_value = "installers")]
    pub installers: PathBuf,

    /// The panel secret (created with mode 0600 if missing); every agent key derives from it.
    #[arg(
        long,
        env = "OUTFITTER_SECRET_FILE",
        default_value = "outfitter-panel.secret"
    )]
    pub secret_file: PathBuf,

    /// Finished jobs (record, events) and audit entries older than this many days are deleted.
    #[arg(long, env = "OUTFITTER_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u64,

    /// A queued job not started within this many seconds expires (envelope `expires_at`).
    #[arg(long, env = "OUTFITTER_QUEUE_TTL_SECS", default_value_t = 86_400)]
    pub queue_ttl_secs: u64,

    /// A browser session lasts this many seconds.
    #[arg(long, env = "OUTFITTER_SESSION_TTL_SECS", default_value_t = 43_200)]
    pub session_ttl_secs: u64,

    /// Mark the session cookie `Secure` (set it when the panel is served over HTTPS).
    #[arg(long, env = "OUTFITTER_COOKIE_SECURE", default_value_t = false)]
    pub cookie_secure: bool,

    /// Largest accepted request body in bytes (JSON or form); larger gets 413.
    #[arg(long, env = "OUTFITTER_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// A request body must arrive within this many seconds of its headers, or it gets 408 and
    /// the connection is closed (actix's own timeout covers only the headers).
    #[arg(long, env = "OUTFITTER_BODY_READ_TIMEOUT_SECS", default_value_t = 15)]
    pub body_read_timeout_secs: u64,

    /// Failed sign-ins and invalid bearer tokens one client address may make at once...
    #[arg(long, env = "OUTFITTER_AUTH_FAILURE_BURST", default_value_t = 10)]
    pub auth_failure_burst: u32,

    /// ...then one more per this many seconds; beyond that it gets 429 with `Retry-After`.
    #[arg(long, env = "OUTFITTER_AUTH_FAILURE_REFILL_SECS", default_value_t = 6)]
    pub auth_failure_refill_secs: u64,

    /// How often the live-events subscription is pinged (a dead connection is noticed then).
    #[arg(long, env = "OUTFITTER_PUBSUB_PING_SECS", default_value_t = 15)]
    pub pubsub_ping_secs: u64,

    /// Offer only apps whose `conformance.json` (written by the conformance harness) says
    /// `passed` for the current bundle digest (`CatalogStatus::is_proven` in the contract);
    /// failed, stale and untested apps are hidden, and admins still see them and why.
    #[arg(long, env = "OUTFITTER_ONLY_TESTED_APPS", default_value_t = false)]
    pub only_tested_apps: bool,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "OUTFITTER_WORKERS")]
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub workers: Option<usize>,
}

impl Settings {
    /// Settings for tests and tools: defaults, with the given Redis, installers and secret.
    pub fn for_paths(redis_url: &str, installers: &Path, secret_file: &Path) -> Self {
        let mut s = Self::from_flags_only(&[]).expect("defaults parse");
        s.redis_url = redis_url.to_owned();
        s.installers = installers.to_owned();
        s.secret_file = secret_file.to_owned();
        s
    }

    fn from_flags_only(args: &[&str]) -> anyhow::Result<Self> {
        let cmd = Self::augment_args(clap::Command::new("settings").no_binary_name(true));
        let m = cmd.try_get_matches_from(args)?;
        Ok(Self::from_arg_matches(&m)?)
    }

    /// Resolves the settings of a subcommand from its matches: flags and environment first,
    /// then the TOML file named by `--config`, then the defaults.
    pub fn resolve(matches: &ArgMatches) -> anyhow::Result<Self> {
        let cli = Self::from_arg_matches(matches)?;
        let Some(path) = cli.config.clone() else {
            return Ok(cli);
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let file: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        let known: Vec<String> = Self::augment_args(clap::Command::new("x"))
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect();
        let mut merged = toml::Table::try_from(&cli).context("serializing settings")?;
        for (key, value) in file {
            if key == "config" || !known.contains(&key) {
                anyhow::bail!(
                    "config {}: unknown setting {key:?} (known: {})",
                    path.display(),
                    known.join(", ")
                );
            }
            let from_cli = matches!(
                matches.value_source(&key),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
            if !from_cli {
                merged.insert(key, value);
            }
        }
        merged
            .try_into()
            .with_context(|| format!("config {}: a value has the wrong type", path.display()))
    }
}

/// The clap command for settings alone.
pub fn command() -> clap::Command {
    Settings::augment_args(clap::Command::new("outfitter-panel serve"))
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
}
