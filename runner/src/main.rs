//! `outfitter-runner`: parses the command line and hands off to the library.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use outfitter_runner::cli::{Cli, Command};

use outfitter_runner::sandbox::sys::RealSys;

static SYS: RealSys = RealSys;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OUTFITTER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("outfitter-runner: {e:#}");
            ExitCode::from(outfitter_runner::exec::EXIT_INVALID_BUNDLE as u8)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run { settings } => {
            let cfg = settings.layered()?.daemon().context("configuration")?;
            outfitter_runner::daemon::run(cfg, &SYS).await?;
            Ok(0)
        }
        Command::Exec {
            bundle,
            sets,
            timeout,
            settings,
        } => {
            let limits = settings.layered()?.limits()?;
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
