//! Conformance results: one JSON file per bundle (`installers/<id>/conformance.json`, read by
//! the panel) and the human catalog `docs/catalog.md` rendered from all of them. The file's
//! name, schema id and the summary fields the panel reads are the contract's
//! (`outfitter_contract::conformance`); this module adds the per-step detail, and `catalog.rs` renders the catalog.

mod catalog;

use std::path::{Path, PathBuf};

use outfitter_contract::conformance::{
    ConformanceSummary, RESULT_FILE, ResultFileError, read_result_bytes,
};
use outfitter_contract::limits::MAX_CONFORMANCE_RESULT_BYTES;
use serde::{Deserialize, Serialize};

use crate::checks::CheckResult;

pub use catalog::{CatalogEntry, render_catalog, seconds};
/// A run's or a step's outcome (`passed`, `failed`, `skipped`), as the contract spells it.
pub use outfitter_contract::conformance::Outcome as Status;

/// Lines of each step's log kept in the result file (the full log is in the logs directory).
pub const LOG_TAIL_LINES: usize = 40;

/// The latest conformance run of one bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleResult {
    /// schema, digest, status, tested_at, install and reinstall times, smoke results: the
    /// fields the panel reads, flattened so the JSON keeps one flat object.
    #[serde(flatten)]
    pub summary: ConformanceSummary,
    pub bundle: String,
    pub name: String,
    pub version: String,
    pub category: String,
    /// The throwaway system the bundle was installed on.
    pub system: String,
    /// How the bundle was installed: `outfitter-runner exec` or `bash install.sh`.
    pub installed_via: String,
    /// Exit code both installs were expected to end with.
    pub expected_exit: i32,
    pub total_ms: u64,
    pub steps: Vec<StepResult>,
}

/// One step of a run: lint, boot, prerequisites, setup, install, smoke, reinstall, …
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    pub name: String,
    pub status: Status,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// One line saying what happened.
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
    /// What an uninstall left behind, for the leftovers steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leftovers: Vec<Leftover>,
    /// The last lines of the step's output, secrets masked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_tail: String,
    /// The full output on the machine that ran the harness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_path: Option<String>,
}

/// One thing an uninstall left on the system that the fresh system did not have.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Leftover {
    /// `unit`, `port`, `user`, `group`, `package` or `file`.
    pub kind: String,
    /// The unit, `tcp/80`, the user, group or package name, or the path under /etc.
    pub name: String,
}

impl BundleResult {
    pub fn step(&self, name: &str) -> Option<&StepResult> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Writes `<bundle_dir>/conformance.json` through a temporary file. Refuses a result the
    /// panel would refuse to read (too large, or a summary field breaking the contract's rules).
    pub fn write(&self, bundle_dir: &Path) -> std::io::Result<PathBuf> {
        self.summary.check().map_err(std::io::Error::other)?;
        let path = bundle_dir.join(RESULT_FILE);
        let tmp = bundle_dir.join(format!(".{RESULT_FILE}.tmp"));
        let mut json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        json.push('\n');
        if json.len() as u64 > MAX_CONFORMANCE_RESULT_BYTES {
            return Err(std::io::Error::other(format!(
                "the result of {} is {} bytes; readers accept at most {MAX_CONFORMANCE_RESULT_BYTES}",
                self.bundle,
                json.len()
            )));
        }
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// Reads a bundle's latest result through the contract's capped reader; `Ok(None)` when it
    /// was never tested.
    pub fn read(bundle_dir: &Path) -> Result<Option<Self>, ResultFileError> {
        let Some(bytes) = read_result_bytes(bundle_dir)? else {
            return Ok(None);
        };
        let result: Self =
            serde_json::from_slice(&bytes).map_err(|e| ResultFileError::Malformed {
                reason: e.to_string().chars().take(200).collect(),
            })?;
        result.summary.check()?;
        Ok(Some(result))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use outfitter_contract::conformance::RESULT_SCHEMA;

    use super::*;

    pub(crate) fn sample(status: Status) -> BundleResult {
        BundleResult {
            summary: ConformanceSummary {
                schema: RESULT_SCHEMA.into(),
                digest: "ab".repeat(32),
                status,
                tested_at: "2026-11-22T09:21:07Z".into(),
                install_ms: Some(2_345),
                reinstall_ms: Some(600),
                smoke_passed: Some(true),
                reinstall_smoke_passed: Some(status == Status::Passed),
            },
            bundle: "nginx".into(),
            name: "Nginx".into(),
            version: "1.0.0".into(),
            category: "web".into(),
            system: "debian bookworm".into(),
            installed_via: "outfitter-runner exec".into(),
            expected_exit: 0,
            total_ms: 9_000,
            steps: vec![
                StepResult {
                    name: "install".into(),
                    status: Status::Passed,
                    duration_ms: 2_345,
                    exit_code: Some(0),
                    detail: "exit 0".into(),
                    checks: vec![],
                    leftovers: vec![],
                    log_tail: String::new(),
                    log_path: None,
                },
                StepResult {
                    name: "smoke".into(),
                    status: Status::Passed,
                    duration_ms: 40,
                    exit_code: None,
                    detail: "1 of 1".into(),
                    checks: vec![CheckResult {
                        name: "page".into(),
                        passed: true,
                        detail: "status 200".into(),
                        duration_ms: 40,
                    }],
                    leftovers: vec![],
                    log_tail: String::new(),
                    log_path: None,
                },
            ],
        }
    }

    #[test]
    fn result_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        sample(Status::Passed).write(dir.path()).unwrap();
        let back = BundleResult::read(dir.path()).unwrap().unwrap();
        assert_eq!(
            (back.summary.status, back.summary.install_ms),
            (Status::Passed, Some(2_345))
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(RESULT_FILE)).unwrap())
                .unwrap();
        assert_eq!(json["status"], "passed");
        assert_eq!(json["schema"], RESULT_SCHEMA);
    }

    #[test]
    fn every_committed_result_parses_and_writes_back_the_same_json() {
        let installers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../installers");
        let mut seen = 0;
        for entry in std::fs::read_dir(&installers).unwrap() {
            let dir = entry.unwrap().path();
            let file = dir.join(RESULT_FILE);
            if !file.exists() {
                continue;
            }
            let result = BundleResult::read(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
                .unwrap();
            let committed: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            assert_eq!(
                serde_json::to_value(&result).unwrap(),
                committed,
                "{} changes shape when written back",
                file.display()
            );
            seen += 1;
        }
        assert!(
            seen > 0,
            "no committed results under {}",
            installers.display()
        );
    }

    #[test]
    fn unreadable_result_is_an_error_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let mut json = serde_json::to_value(sample(Status::Passed)).unwrap();
        json["tested_at"] = serde_json::json!("last tuesday");
        std::fs::write(dir.path().join(RESULT_FILE), json.to_string()).unwrap();
        let e = BundleResult::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("`tested_at`"), "{e}");
        let mut bad = sample(Status::Passed);
        bad.summary.digest = "not hex".into();
        let e = bad.write(dir.path()).unwrap_err().to_string();
        assert!(e.contains("`digest`"), "{e}");
    }
}
