//! `outfitter-panel lint`: every manifest rule plus script checks, for installer authors.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `outfitter-panel lint`.
#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// Bundle directories to check.
    #[arg(required = true)]
    pub bundles: Vec<PathBuf>,
}

/// Runs the linter and returns the process exit code.
pub fn run(_args: &LintArgs) -> ExitCode {
    ExitCode::from(2)
}
