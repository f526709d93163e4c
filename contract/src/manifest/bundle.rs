//! A loaded bundle and `load_bundle`: every check, in order, from directory to digest.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use super::diagnostic::{Diagnostic, has_errors};
use super::model::Manifest;
use super::{
    checks, digest, input_checks, lifecycle_checks, rules, schema_check, script_file, yaml,
};
use crate::inputs::{self, CompiledInputs, FieldError, InputValues};
use crate::limits;

/// The manifest's file name inside a bundle directory.
pub const MANIFEST_FILE: &str = "manifest.yml";

/// A valid installer bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory.
    pub dir: PathBuf,
    /// The checked manifest.
    pub manifest: Manifest,
    /// `dir/<install_script>`.
    pub script_path: PathBuf,
    /// Each lifecycle script the manifest names, as (manifest field, `dir/<file>`), in
    /// [`Manifest::lifecycle_scripts`] order.
    pub lifecycle_paths: Vec<(&'static str, PathBuf)>,
    /// [`digest::bundle_digest_with_lifecycle`] over the manifest and every script.
    pub digest: String,
    /// The input JSON Schema served to API callers.
    pub input_schema: Value,
    /// Warnings found while loading (errors would have rejected the bundle).
    pub warnings: Vec<Diagnostic>,
    /// The input validator, compiled on first use and shared by clones.
    compiled: Arc<OnceLock<CompiledInputs>>,
}

impl Bundle {
    /// The app id.
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    /// The digest of the bundle's files as they are on disk now. The runner compares it with
    /// [`Bundle::digest`] just before it runs the script, so a script edited after the
    /// catalog scan never runs under a digest the panel validated for other bytes.
    pub fn digest_on_disk(&self) -> Result<String, Diagnostic> {
        let manifest =
            yaml::read_capped(&self.dir.join(MANIFEST_FILE), limits::MAX_MANIFEST_BYTES)?;
        let script = yaml::read_capped(&self.script_path, limits::MAX_SCRIPT_BYTES)?;
        let mut lifecycle = Vec::with_capacity(self.lifecycle_paths.len());
        for (field, path) in &self.lifecycle_paths {
            lifecycle.push((*field, yaml::read_capped(path, limits::MAX_SCRIPT_BYTES)?));
        }
        Ok(digest_of(&manifest, &script, &lifecycle))
    }

    /// The install script, then each lifecycle script: with the manifest, the files the
    /// digest covers, in its order.
    pub fn script_paths(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.script_path.as_path())
            .chain(self.lifecycle_paths.iter().map(|(_, p)| p.as_path()))
    }

    /// The path of the script a manifest field names (`install_script` or a lifecycle one).
    pub fn script_for(&self, field: &str) -> Option<&Path> {
        if field == "install_script" {
            return Some(&self.script_path);
        }
        self.lifecycle_paths
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, p)| p.as_path())
    }

    /// Validates a submission with this bundle's compiled validator (compiled once).
    pub fn validate_inputs(
        &self,
        submitted: &Map<String, Value>,
    ) -> Result<InputValues, Vec<FieldError>> {
        let compiled = self
            .compiled
            .get_or_init(|| CompiledInputs::new(&self.manifest));
        inputs::validate_with(&self.manifest, submitted, compiled)
    }
}

fn digest_of(manifest: &[u8], script: &[u8], lifecycle: &[(&str, Vec<u8>)]) -> String {
    let parts: Vec<(&str, &[u8])> = lifecycle.iter().map(|(f, b)| (*f, b.as_slice())).collect();
    digest::bundle_digest_with_lifecycle(manifest, script, &parts)
}

/// Reads one script the manifest names, or records why it cannot be used.
fn read_script(
    dir: &Path,
    field: &'static str,
    name: &str,
    findings: &mut Vec<Diagnostic>,
) -> Option<(PathBuf, Vec<u8>)> {
    let path = match script_file::check_script(dir, field, name) {
        Ok(path) => path,
        Err(diagnostic) => {
            findings.push(diagnostic);
            return None;
        }
    };
    match fs::read(&path) {
        Ok(bytes) => Some((path, bytes)),
        Err(error) => {
            findings.push(Diagnostic::new(
                &rules::M016_SCRIPT_MISSING,
                field,
                format!("cannot read the script: {error}"),
            ));
            None
        }
    }
}

/// The outcome of checking one bundle directory: the bundle when it has no error, and every
/// finding (errors and warnings) either way.
#[derive(Debug, Clone)]
pub struct BundleReport {
    /// The bundle, when no error was found.
    pub bundle: Option<Bundle>,
    /// Every finding, errors first.
    pub diagnostics: Vec<Diagnostic>,
    /// The manifest id if it could be read, else `None` (for reporting invalid bundles).
    pub id_hint: Option<String>,
    /// The parsed manifest of a bundle that did not load but passed the schema (the linter
    /// still checks the script against its inputs). `None` when `bundle` is set: use
    /// [`BundleReport::manifest`], which covers both.
    pub manifest: Option<Manifest>,
}

impl BundleReport {
    /// The parsed manifest, from the bundle or from a bundle that failed later checks.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.bundle
            .as_ref()
            .map(|b| &b.manifest)
            .or(self.manifest.as_ref())
    }
}

/// Loads and checks a bundle. `Err` holds at least one error (and any warnings).
pub fn load_bundle(dir: &Path) -> Result<Bundle, Vec<Diagnostic>> {
    let report = check_bundle(dir);
    match report.bundle {
        Some(bundle) => Ok(bundle),
        None => Err(report.diagnostics),
    }
}

/// Runs every manifest check on a bundle directory and reports all findings.
pub fn check_bundle(dir: &Path) -> BundleReport {
    let mut report = BundleReport {
        bundle: None,
        diagnostics: Vec::new(),
        id_hint: None,
        manifest: None,
    };
    let fail = |mut report: BundleReport, diagnostic: Diagnostic| {
        report.diagnostics.push(diagnostic);
        report
    };
    if !fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        let message = format!("{} is not a directory", dir.display());
        return fail(
            report,
            Diagnostic::new(&rules::M001_UNREADABLE, "", message),
        );
    }
    let manifest_bytes =
        match yaml::read_capped(&dir.join(MANIFEST_FILE), limits::MAX_MANIFEST_BYTES) {
            Ok(bytes) => bytes,
            Err(diagnostic) => return fail(report, diagnostic),
        };
    let document = match yaml::parse(&manifest_bytes) {
        Ok(document) => document,
        Err(diagnostic) => return fail(report, diagnostic),
    };
    report.id_hint = document
        .get("id")
        .and_then(Value::as_str)
        .map(|id| id.chars().take(64).collect());
    let schema_findings = schema_check::check_schema(&document);
    if has_errors(&schema_findings) {
        report.diagnostics = schema_findings;
        return report;
    }
    // The model loses whether `sensitive: false` was written out (rule M041); note it first
    // so the document can be moved into the model without a copy.
    let written_not_sensitive = input_checks::written_not_sensitive(&document);
    let manifest: Manifest = match serde_json::from_value(document) {
        Ok(manifest) => manifest,
        Err(error) => {
            // The schema and the model disagree: a contract bug, reported rather than hidden.
            let message = format!("the manifest does not fit the model: {error}");
            return fail(
                report,
                Diagnostic::new(&rules::M009_SCHEMA_VALUE, "", message),
            );
        }
    };
    let mut findings = checks::check_top_level(&manifest, dir);
    findings.extend(input_checks::check_inputs(
        &manifest,
        &written_not_sensitive,
    ));
    findings.extend(lifecycle_checks::check_lifecycle(&manifest));
    let script = read_script(
        dir,
        "install_script",
        &manifest.install_script,
        &mut findings,
    );
    let mut lifecycle = Vec::new();
    for (field, name) in manifest.lifecycle_scripts() {
        if let Some(found) = read_script(dir, field, name, &mut findings) {
            lifecycle.push((field, found));
        }
    }
    findings.sort_by_key(|d| d.severity);
    report.diagnostics = findings;
    if has_errors(&report.diagnostics) {
        report.manifest = Some(manifest);
        return report;
    }
    if let Some((script_path, script_bytes)) = script {
        let input_schema = inputs::input_schema(&manifest);
        let lifecycle_bytes: Vec<(&str, Vec<u8>)> = lifecycle
            .iter()
            .map(|(f, (_, b))| (*f, b.clone()))
            .collect();
        report.bundle = Some(Bundle {
            dir: dir.to_path_buf(),
            digest: digest_of(&manifest_bytes, &script_bytes, &lifecycle_bytes),
            script_path,
            lifecycle_paths: lifecycle.into_iter().map(|(f, (p, _))| (f, p)).collect(),
            input_schema,
            warnings: report.diagnostics.clone(),
            manifest,
            compiled: Arc::new(OnceLock::new()),
        });
    }
    report
}
