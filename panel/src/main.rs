//! `outfitter-panel`: the command line entry point.

use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use outfitter_panel::Settings;
use outfitter_panel::auth::Role;
use outfitter_panel::settings::SettingsLayer;

#[derive(Debug, Parser)]
#[command(
    name = "outfitter-panel",
    version,
    about = "Outfitter panel: catalog, forms, jobs and API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check installer bundles and report every problem with its rule id.
    Lint(outfitter_panel::lint::LintArgs),
    /// Serve the pages and the API.
    Serve(SettingsLayer),
    /// Manage agents (servers running outfitter-runner).
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Manage API tokens (also the browser sign-in).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Register an agent and print its runner configuration (TOML) on stdout.
    Add {
        /// Agent id: lowercase letters, digits and '-' (at most 63).
        id: String,
        #[command(flatten)]
        settings: SettingsLayer,
    },
    /// Print a registered agent's runner configuration (TOML) again, with its current key.
    Config {
        /// Agent id.
        id: String,
        #[command(flatten)]
        settings: SettingsLayer,
    },
    /// Give an agent a new key and print its new runner configuration (TOML) on stdout; what
    /// becomes of its queued jobs goes to stderr.
    Rotate {
        /// Agent id.
        id: String,
        #[command(flatten)]
        settings: SettingsLayer,
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
        settings: SettingsLayer,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once, alone on the last line, and stored only hashed.
    Add {
        /// Token name (shown in the audit log).
        #[arg(long)]
        name: String,
        /// What the token may do.
        #[arg(long, value_enum)]
        role: Role,
        #[command(flatten)]
        settings: SettingsLayer,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OUTFITTER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The matches of the innermost subcommand (where the settings flags live).
fn leaf(m: &ArgMatches) -> &ArgMatches {
    match m.subcommand() {
        Some((_, sub)) => leaf(sub),
        None => m,
    }
}

fn run(cli: Cli, matches: &ArgMatches) -> anyhow::Result<ExitCode> {
    let settings = || Settings::resolve(leaf(matches));
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    match cli.command {
        Command::Lint(args) => Ok(outfitter_panel::lint::run(&args)),
        Command::Serve(_) => {
            let s = settings()?;
            actix_web::rt::System::new().block_on(outfitter_panel::cli::serve(s))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent(AgentCommand::Add { id, .. }) => {
            let s = settings()?;
            let config = rt()?.block_on(outfitter_panel::cli::agent_add(&s, &id))?;
            print!("{config}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent(AgentCommand::Config { id, .. }) => {
            let s = settings()?;
            let config = rt()?.block_on(outfitter_panel::cli::agent_config(&s, &id))?;
            eprintln!("runner configuration of agent {id} follows (keep it secret)");
            print!("{config}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent(AgentCommand::Rotate { id, .. }) => {
            let s = settings()?;
            let (config, rotation) = rt()?.block_on(outfitter_panel::cli::agent_rotate(&s, &id))?;
            eprint!("{}", rotation.notice());
            eprintln!("the new runner configuration of agent {id} follows (keep it secret)");
            print!("{config}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent(AgentCommand::Remove { id, force, .. }) => {
            let s = settings()?;
            let r = rt()?.block_on(outfitter_panel::cli::agent_remove(&s, &id, force))?;
            println!(
                "removed agent {id} (key generation {}); its job history stays. Stop its runner \
                 on the server and delete its Redis user.",
                r.key_generation
            );
            if !r.canceled.is_empty() {
                println!(
                    "canceled {} waiting job(s): {}",
                    r.canceled.len(),
                    r.canceled.join(" ")
                );
            }
            if !r.still_running.is_empty() {
                println!(
                    "{} job(s) still running, to finish and report as usual: {}",
                    r.still_running.len(),
                    r.still_running.join(" ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::Add { name, role, .. }) => {
            let s = settings()?;
            let token = rt()?.block_on(outfitter_panel::cli::token_add(&s, &name, role))?;
            eprintln!("token {name:?} ({role}) created; it is shown once:");
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    init_tracing();
    match run(cli, &matches) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("outfitter-panel: {e:#}");
            ExitCode::from(1)
        }
    }
}
