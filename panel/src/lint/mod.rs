//! `outfitter-panel lint`: every manifest rule plus script checks, for installer authors.

mod report;
mod script_checks;
mod shell;
mod shellcheck;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use outfitter_contract::manifest::{Diagnostic, MANIFEST_FILE, check_bundle};

pub use report::{BundleResult, Finding, Format};
pub use script_checks::check_script;

/// Exit code: no errors (warnings allowed).
pub const EXIT_CLEAN: u8 = 0;
/// Exit code: at least one bundle has an error.
pub const EXIT_ERRORS: u8 = 1;
/// Exit code: the command line was wrong (clap uses the same code for its own errors).
pub const EXIT_USAGE: u8 = 2;

/// Arguments of `outfitter-panel lint`.
#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// Bundle directories to check.
    #[arg(required = true)]
    pub bundles: Vec<PathBuf>,
    /// Output format: `human` (one `path: RULE: severity: message` line per finding) or
    /// `json` (one document for tools).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Do not run shellcheck even when it is installed (rule S005).
    #[arg(long)]
    pub no_shellcheck: bool,
}

/// Runs the linter, prints the report to stdout and returns the process exit code.
pub fn run(args: &LintArgs) -> ExitCode {
    let use_shellcheck = !args.no_shellcheck && shellcheck::available();
    let results: Vec<BundleResult> = args
        .bundles
        .iter()
        .map(|dir| lint_bundle(dir, use_shellcheck))
        .collect();
    let rendered = match args.format {
        Format::Human => report::human(&results, use_shellcheck || args.no_shellcheck),
        Format::Json => report::json(&results),
    };
    print!("{rendered}");
    let failed = results
        .iter()
        .any(|r| r.findings.iter().any(|f| f.diagnostic.is_error()));
    ExitCode::from(if failed { EXIT_ERRORS } else { EXIT_CLEAN })
}

/// Lints one bundle directory: manifest rules, then the script rules when the manifest
/// names a script that can be read.
pub fn lint_bundle(dir: &Path, use_shellcheck: bool) -> BundleResult {
    let report = check_bundle(dir);
    let manifest_file = dir.join(MANIFEST_FILE);
    let mut findings: Vec<Finding> = report
        .diagnostics
        .iter()
        .map(|d| Finding {
            file: manifest_file.clone(),
            diagnostic: d.clone(),
        })
        .collect();
    let script_name = report.manifest().map(|m| m.install_script.clone());
    let manifest_blocks_script = report
        .diagnostics
        .iter()
        .any(|d| matches!(d.rule, "M015" | "M016" | "M017" | "M018"));
    if let (Some(name), false) = (script_name, manifest_blocks_script) {
        let path = dir.join(&name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let mut diagnostics = check_script(&name, &bytes, report.manifest());
                let is_text = !has_rule(&diagnostics, "S006");
                if use_shellcheck && is_text {
                    diagnostics.extend(shellcheck::check(&path, &name));
                }
                findings.extend(diagnostics.into_iter().map(|d| Finding {
                    file: dir.to_path_buf(),
                    diagnostic: d,
                }));
            }
            Err(_) => {
                // M016 already says the script is missing.
            }
        }
    }
    findings.sort_by_key(|f| f.diagnostic.severity);
    let ok = !findings.iter().any(|f| f.diagnostic.is_error());
    BundleResult {
        dir: dir.to_path_buf(),
        id: report.id_hint,
        ok,
        findings,
    }
}

fn has_rule(diagnostics: &[Diagnostic], rule: &str) -> bool {
    diagnostics.iter().any(|d| d.rule == rule)
}

#[cfg(test)]
mod tests;
