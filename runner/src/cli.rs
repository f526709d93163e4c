//! Command line: `run` (the daemon), `exec` (one bundle, for authors), and the generated
//! `completions` and `man` pages.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::{SettingsLayer, default};

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
    /// Print a shell completion script on stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (outfitter-runner.1 and one per subcommand) into a directory.
    Man {
        /// Directory to write the pages into (created if missing).
        dir: PathBuf,
    },
}

/// Each setting's default as shown in `--help`. The settings are optional (so that the file,
/// environment and flags can be layered), so clap cannot show the defaults by itself.
fn defaults() -> Vec<(&'static str, String)> {
    vec![
        ("redis_url", default::REDIS_URL.to_owned()),
        ("installers", default::INSTALLERS.to_owned()),
        ("log_dir", default::LOG_DIR.to_owned()),
        ("state_dir", default::STATE_DIR.to_owned()),
        ("concurrency", default::CONCURRENCY.to_string()),
        (
            "kill_grace_seconds",
            default::KILL_GRACE_SECONDS.to_string(),
        ),
        (
            "drain_grace_seconds",
            default::DRAIN_GRACE_SECONDS.to_string(),
        ),
        (
            "stop_grace_seconds",
            default::STOP_GRACE_SECONDS.to_string(),
        ),
        ("memory_max_mb", default::MEMORY_MAX_MB.to_string()),
        ("pids_max", default::PIDS_MAX.to_string()),
        ("file_size_max_mb", default::FILE_SIZE_MAX_MB.to_string()),
        ("open_files_max", default::OPEN_FILES_MAX.to_string()),
        ("output_max_bytes", default::OUTPUT_MAX_BYTES.to_string()),
        ("line_max_bytes", default::LINE_MAX_BYTES.to_string()),
        ("cgroups", "true".to_owned()),
        ("log_format", "text".to_owned()),
        ("metrics_bind", "off".to_owned()),
        ("metrics_services", "true".to_owned()),
        ("metrics_postgres", "true".to_owned()),
        ("metrics_nginx_status_url", "auto".to_owned()),
        ("metrics_redis_url", "auto".to_owned()),
        ("metrics_docker_socket", "auto".to_owned()),
    ]
}

fn with_defaults(mut cmd: clap::Command) -> clap::Command {
    let ids: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    for (id, value) in defaults() {
        if ids.iter().any(|i| i == id) {
            cmd = cmd.mut_arg(id, |a| {
                let help = a.get_help().map(ToString::to_string).unwrap_or_default();
                a.help(format!("{help} [default: {value}]"))
            });
        }
    }
    cmd
}

/// The whole command line, as clap sees it (for parsing, completions and man pages).
pub fn command() -> clap::Command {
    Cli::command()
        .mut_subcommand("run", with_defaults)
        .mut_subcommand("exec", with_defaults)
}

/// Writes the completion script of `shell` for the whole command line.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = command();
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, out);
}

/// Writes `outfitter-runner.1` and one page per subcommand into `dir`.
pub fn man_pages(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(command(), dir)
}
