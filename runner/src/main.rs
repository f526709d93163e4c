//! `outfitter-runner`: parses the command line and hands off to the library.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::FromArgMatches as _;
use outfitter_contract::logs::{self, LogFormat};
use outfitter_runner::cli::{Cli, Command};
use outfitter_runner::config::SettingsLayer;

use outfitter_runner::sandbox::sys::RealSys;

static SYS: RealSys = RealSys;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::from_arg_matches(&outfitter_runner::cli::command().get_matches()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match run(cli).await {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("outfitter-runner: {e:#}");
            ExitCode::from(outfitter_runner::exec::EXIT_INVALID_BUNDLE as u8)
        }
    }
}

/// Starts the log once the settings (which may name its format) are read.
fn start_log(settings: &SettingsLayer) {
    logs::init(settings.log_format.unwrap_or(LogFormat::Text));
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Completions { shell } => {
            outfitter_runner::cli::completions(shell, &mut std::io::stdout());
            Ok(0)
        }
        Command::Man { dir } => {
            outfitter_runner::cli::man_pages(&dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            Ok(0)
        }
        Command::Run { settings } => {
            let settings = settings.layered()?;
            start_log(&settings);
            let cfg = settings.daemon().context("configuration")?;
            outfitter_runner::daemon::run(cfg, &SYS).await?;
            Ok(0)
        }
        Command::Exec {
            bundle,
            sets,
            timeout,
            settings,
        } => {
            let settings = settings.layered()?;
            start_log(&settings);
            let limits = settings.limits()?;
            Ok(outfitter_runner::exec::exec(
                &bundle,
                &sets,
                limits,
                timeout.map(Duration::from_secs),
                &SYS,
            )
            .await)
        }
    }
}
