//! Command line: `run` (the daemon) and `exec` (one bundle, for authors).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::SettingsLayer;

#[derive(Debug, Parser)]
#[command(
    name = "outfitter-runner",
    version,
    about = "Runs signed installer jobs in a sandbox"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Take signed jobs from Redis and run them (the daemon).
    Run {
        #[command(flatten)]
        settings: SettingsLayer,
    },
    /// Run one bundle through the same validation and sandbox, without Redis.
    Exec {
        /// The bundle directory (with manifest.yml and its script).
        bundle: PathBuf,
        /// An input value, `name=value` (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = crate::exec::parse_set)]
        sets: Vec<(String, String)>,
        /// Overrides the manifest's timeout_seconds.
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<u64>,
        /// The sandbox settings (`--config` and flags; the agent settings are ignored here).
        #[command(flatten)]
        settings: SettingsLayer,
    },
}
