//! The linter's two output formats.

use std::fmt::Write;
use std::path::PathBuf;

use outfitter_contract::manifest::Diagnostic;
use serde::Serialize;

/// Output format of `lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `path: RULE: severity: message`, one line per finding, then a summary.
    Human,
    /// One JSON document: `{ "bundles": [...], "errors": n, "warnings": n }`.
    Json,
}

/// One finding with the file it is about. For manifest findings `file` is the manifest and
/// the diagnostic's path is a field; for script findings `file` is the bundle directory and
/// the path is `<script>:<line>`.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The file (or bundle directory) the finding is about.
    pub file: PathBuf,
    /// The finding.
    #[serde(flatten)]
    pub diagnostic: Diagnostic,
}

impl Finding {
    /// `installers/nginx/manifest.yml: inputs[0].name` or `installers/nginx/install.sh:12`.
    pub fn location(&self) -> String {
        let path = &self.diagnostic.path;
        if self.diagnostic.rule.starts_with('S') {
            self.file.join(path).display().to_string()
        } else if path.is_empty() {
            self.file.display().to_string()
        } else {
            format!("{}: {path}", self.file.display())
        }
    }
}

/// The result for one bundle directory.
#[derive(Debug, Clone, Serialize)]
pub struct BundleResult {
    /// The directory given on the command line.
    pub dir: PathBuf,
    /// The manifest id, if it could be read.
    pub id: Option<String>,
    /// Whether the bundle has no error.
    pub ok: bool,
    /// Errors first, then warnings.
    pub findings: Vec<Finding>,
}

fn counts(results: &[BundleResult]) -> (usize, usize) {
    let all = results.iter().flat_map(|r| &r.findings);
    let errors = all.clone().filter(|f| f.diagnostic.is_error()).count();
    (errors, all.count() - errors)
}

/// Human output: one line per finding and a summary line.
pub(super) fn human(results: &[BundleResult], shellcheck_ran_or_disabled: bool) -> String {
    let mut out = String::new();
    for finding in results.iter().flat_map(|r| &r.findings) {
        let d = &finding.diagnostic;
        let _ = writeln!(
            out,
            "{}: {}: {}: {}",
            finding.location(),
            d.rule,
            d.severity,
            d.message
        );
    }
    let (errors, warnings) = counts(results);
    let bundles = results.len();
    let failed = results.iter().filter(|r| !r.ok).count();
    let _ = writeln!(
        out,
        "{bundles} bundle(s) checked, {failed} with errors: {errors} error(s), {warnings} warning(s)"
    );
    if !shellcheck_ran_or_disabled {
        let _ = writeln!(
            out,
            "note: shellcheck is not installed; rule S005 was skipped"
        );
    }
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    bundles: &'a [BundleResult],
    errors: usize,
    warnings: usize,
}

/// JSON output for tools.
pub(super) fn json(results: &[BundleResult]) -> String {
    let (errors, warnings) = counts(results);
    let report = JsonReport {
        bundles: results,
        errors,
        warnings,
    };
    let mut text = serde_json::to_string_pretty(&report).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}
