//! `outfitter-panel`: the command line entry point.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::FromArgMatches;
use outfitter_contract::logs::{self, LogFormat};
use outfitter_panel::Settings;
use outfitter_panel::cli::args::{AgentCommand, Cli, Command, TokenCommand};
use outfitter_panel::settings::SettingsLayer;

/// The settings layer the subcommand takes, if any.
fn layer(command: &Command) -> Option<&SettingsLayer> {
    match command {
        Command::Serve(l) => Some(l),
        Command::Agent(
            AgentCommand::Add { settings, .. }
            | AgentCommand::Config { settings, .. }
            | AgentCommand::Rotate { settings, .. },
        ) => Some(&settings.layer),
        Command::Agent(AgentCommand::Remove { settings, .. })
        | Command::Agent(AgentCommand::Label { settings, .. })
        | Command::Token(TokenCommand::Add { settings, .. }) => Some(&settings.layer),
        Command::Lint(_) | Command::Completions { .. } | Command::Man { .. } => None,
    }
}

fn run(cli: Cli, settings: Option<Settings>) -> anyhow::Result<ExitCode> {
    let settings = move || settings.context("this command takes no settings");
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    match cli.command {
        Command::Lint(args) => Ok(outfitter_panel::lint::run(&args)),
        Command::Completions { shell } => {
            outfitter_panel::cli::docs::completions(shell, &mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => {
            outfitter_panel::cli::docs::man_pages(&dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(_) => {
            let s = settings()?;
            actix_web::rt::System::new().block_on(outfitter_panel::cli::serve(s))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent(AgentCommand::Add {
            id,
            labels,
            redis_user,
            ..
        }) => {
            let s = settings()?;
            let labels = labels.into_iter().collect();
            let config = rt()?.block_on(outfitter_panel::cli::agent_add(
                &s, &id, &labels, redis_user,
            ))?;
            print!("{config}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent(AgentCommand::Label { id, changes, .. }) => {
            let s = settings()?;
            let labels = rt()?.block_on(outfitter_panel::cli::agent_label(&s, &id, &changes))?;
            println!("{}", outfitter_contract::labels::labels_text(&labels));
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
    let matches = outfitter_panel::cli::args::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    // Settings are read before the log starts, so `log_format` may come from the file too.
    let settings = match layer(&cli.command).map(|l| l.clone().layered()) {
        None => None,
        Some(Ok(l)) => Some(l.settings()),
        Some(Err(e)) => {
            eprintln!("outfitter-panel: {e:#}");
            return ExitCode::from(1);
        }
    };
    logs::init(settings.as_ref().map_or(LogFormat::Text, |s| s.log_format));
    match run(cli, settings) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("outfitter-panel: {e:#}");
            ExitCode::from(1)
        }
    }
}
