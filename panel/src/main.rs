//! `outfitter-panel`: the command line entry point.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "outfitter-panel", version, about = "Outfitter panel: catalog, forms, jobs and API")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check installer bundles and report every problem with its rule id.
    Lint(outfitter_panel::lint::LintArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Lint(args) => outfitter_panel::lint::run(&args),
    }
}
