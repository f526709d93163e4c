//! The command line's shape: subcommands, their arguments, and which settings each takes.
//! `serve` takes every setting; the one-shot commands only those they read, so their `--help`
//! lists nothing they would ignore.

use std::marker::PhantomData;
use std::path::PathBuf;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::auth::Role;
use crate::settings::SettingsLayer;

#[derive(Debug, Parser)]
#[command(
    name = "outfitter-panel",
    version,
    about = "Outfitter panel: catalog, forms, jobs and API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The whole command line, as clap sees it (for parsing, completions and man pages).
pub fn command() -> clap::Command {
    Cli::command()
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check installer bundles and report every problem with its rule id.
    Lint(crate::lint::LintArgs),
    /// Serve the pages and the API.
    Serve(SettingsLayer),
    /// Manage agents (servers running outfitter-runner).
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Manage API tokens (also the browser sign-in).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print a shell completion script on stdout (e.g. `completions bash >
    /// /usr/share/bash-completion/completions/outfitter-panel`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (outfitter-panel.1 and one per subcommand) into a directory.
    Man {
        /// Directory to write the pages into (created if missing).
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Register an agent and print its runner configuration (TOML) on stdout.
    Add {
        /// Agent id: lowercase letters, digits and '-' (at most 63).
        id: String,
        /// A label of the server, `key=value` (repeat for more): `--label env=prod`.
        #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Also give the agent its own Redis user, confined by ACL to its keys and channels,
        /// and put it into the printed `redis_url` (the panel's Redis user needs `ACL`).
        #[arg(long)]
        redis_user: bool,
        #[command(flatten)]
        settings: Only<WithSecret>,
    },
    /// Change a registered agent's labels: `key=value` sets one, `key-` removes one; with no
    /// changes it prints the labels.
    Label {
        /// Agent id.
        id: String,
        /// `key=value` to set, `key-` to remove.
        #[arg(value_name = "KEY=VALUE|KEY-")]
        changes: Vec<String>,
        #[command(flatten)]
        settings: Only<RedisOnly>,
    },
    /// Print a registered agent's runner configuration (TOML) again, with its current key.
    Config {
        /// Agent id.
        id: String,
        #[command(flatten)]
        settings: Only<WithSecret>,
    },
    /// Give an agent a new key and print its new runner configuration (TOML) on stdout; what
    /// becomes of its queued jobs goes to stderr.
    Rotate {
        /// Agent id.
        id: String,
        #[command(flatten)]
        settings: Only<WithSecret>,
    },
    /// Unregister an agent. Refused while it has queued, retrying or running jobs, unless
    /// --force: waiting jobs are then canceled, running ones finish.
    Remove {
        /// Agent id.
        id: String,
        /// Remove even with unfinished jobs (waiting ones end `canceled`).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        settings: Only<RedisOnly>,
    },
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    outfitter_contract::labels::parse_assignment(text).map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once, alone on the last line, and stored only hashed.
    Add {
        /// Token name (shown in the audit log).
        #[arg(long)]
        name: String,
        /// What the token may do.
        #[arg(long, value_enum)]
        role: Role,
        #[command(flatten)]
        settings: Only<RedisOnly>,
    },
}

/// Which settings a one-shot command takes (by their ids in [`SettingsLayer`]).
pub trait Subset {
    const NAMES: &'static [&'static str];
}

/// `--config`, `--redis-url` (`--redis-cluster`) and its TLS files, `--log-format`.
#[derive(Debug, Clone, Copy)]
pub struct RedisOnly;
impl Subset for RedisOnly {
    const NAMES: &'static [&'static str] = &[
        "config",
        "redis_url",
        "redis_cluster",
        "redis_ca_file",
        "redis_client_cert",
        "redis_client_key",
        "log_format",
    ];
}

/// Those and `--secret-file` (commands that derive agent keys).
#[derive(Debug, Clone, Copy)]
pub struct WithSecret;
impl Subset for WithSecret {
    const NAMES: &'static [&'static str] = &[
        "config",
        "redis_url",
        "redis_cluster",
        "redis_ca_file",
        "redis_client_cert",
        "redis_client_key",
        "secret_file",
        "log_format",
    ];
}

/// A [`SettingsLayer`] of which only the settings in `S` are flags; the file named by
/// `--config` may still hold any setting. The flags are taken from `SettingsLayer` itself, so
/// their help, environment variable and parser are defined once.
#[derive(Debug, Clone)]
pub struct Only<S> {
    pub layer: SettingsLayer,
    subset: PhantomData<S>,
}

impl<S: Subset> Args for Only<S> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        SettingsLayer::augment_args(clap::Command::new("settings"))
            .get_arguments()
            .filter(|a| S::NAMES.contains(&a.get_id().as_str()))
            .cloned()
            .fold(cmd, clap::Command::arg)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl<S: Subset> FromArgMatches for Only<S> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let path = |id: &str| m.get_one::<PathBuf>(id).cloned();
        let has = |id: &str| S::NAMES.contains(&id);
        Ok(Only {
            layer: SettingsLayer {
                config: path("config"),
                redis_url: m.get_one::<String>("redis_url").cloned(),
                redis_cluster: m.get_one::<bool>("redis_cluster").copied(),
                redis_ca_file: path("redis_ca_file"),
                redis_client_cert: path("redis_client_cert"),
                redis_client_key: path("redis_client_key"),
                secret_file: if has("secret_file") {
                    path("secret_file")
                } else {
                    None
                },
                log_format: m.get_one("log_format").copied(),
                ..SettingsLayer::default()
            },
            subset: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}
