//! Conformance results: one JSON file per bundle (`installers/<id>/conformance.json`, read by
//! the panel) and the human catalog `docs/catalog.md` rendered from all of them. The file's
//! name, schema id and the summary fields the panel reads are the contract's
//! (`outfitter_contract::conformance`); this module adds the per-step detail.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use outfitter_contract::conformance::{
    CatalogStatus, ConformanceSummary, RESULT_FILE, ResultFileError, catalog_status,
    read_result_bytes,
};
use outfitter_contract::limits::MAX_CONFORMANCE_RESULT_BYTES;
use serde::{Deserialize, Serialize};

use crate::checks::CheckResult;

/// A run's or a step's outcome (`passed`, `failed`, `skipped`), as the contract spells it.
pub use outfitter_contract::conformance::Outcome as Status;

/// Lines of each step's log kept in the result file (the full log is in the logs directory).
pub const LOG_TAIL_LINES: usize = 40;

fn label(status: Status) -> &'static str {
    match status {
        Status::Passed => "passed",
        Status::Failed => "FAILED",
        Status::Skipped => "skipped",
    }
}

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
    /// The last lines of the step's output, secrets masked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_tail: String,
    /// The full output on the machine that ran the harness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_path: Option<String>,
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

/// A catalog line: a bundle and its latest result, if any.
#[derive(Debug)]
pub struct CatalogEntry {
    pub id: String,
    pub result: Option<BundleResult>,
    /// The bundle's digest now; a result recorded under another digest is stale.
    pub current_digest: Option<String>,
}

impl CatalogEntry {
    fn is_stale(&self) -> bool {
        match (&self.result, &self.current_digest) {
            (Some(r), Some(now)) => catalog_status(Some(&r.summary), now) == CatalogStatus::Stale,
            _ => false,
        }
    }
}

/// Renders `docs/catalog.md`. `command` is how the results were produced.
pub fn render_catalog(entries: &[CatalogEntry], command: &str) -> String {
    let mut md = String::new();
    let passed = entries
        .iter()
        .filter(|e| {
            e.result
                .as_ref()
                .is_some_and(|r| r.summary.status == Status::Passed)
        })
        .count();
    let tested = entries.iter().filter(|e| e.result.is_some()).count();
    let _ = writeln!(md, "# Installer catalog and conformance results\n");
    let _ = writeln!(
        md,
        "Generated by `outfitter-conformance catalog` from each bundle's `conformance.json`; do not edit by hand.\n\
         Every bundle is installed for real on a throwaway Debian 12 system with systemd (debootstrap minbase +\n\
         systemd, booted with systemd-nspawn on an overlay, private network, packages through the harness's proxy),\n\
         checked, installed a second time with the same inputs, and checked again.\n"
    );
    let _ = writeln!(md, "Reproduce: `{command}`\n");
    let _ = writeln!(
        md,
        "**{passed} of {} bundles passed** ({tested} tested).\n",
        entries.len()
    );
    let _ = writeln!(
        md,
        "| Bundle | Version | Result | Install | Smoke | Reinstall | Smoke again | Tested at (UTC) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for entry in entries {
        match &entry.result {
            None => {
                let _ = writeln!(md, "| `{}` | | untested | | | | | |", entry.id);
            }
            Some(r) => {
                let stale = if entry.is_stale() {
                    " (stale: bundle changed since)"
                } else {
                    ""
                };
                let _ = writeln!(
                    md,
                    "| `{}` | {} | {}{stale} | {} | {} | {} | {} | {} |",
                    r.bundle,
                    r.version,
                    label(r.summary.status),
                    step_cell(r, "install"),
                    smoke_cell(r, "smoke"),
                    step_cell(r, "reinstall"),
                    smoke_cell(r, "smoke-after-reinstall"),
                    r.summary.tested_at.replace('T', " ").trim_end_matches('Z'),
                );
            }
        }
    }
    let _ = writeln!(
        md,
        "\nTimes are wall-clock on the machine that ran the harness; the first install includes"
    );
    let _ = writeln!(
        md,
        "downloading packages through the proxy (cached across runs), the reinstall shows the cost of"
    );
    let _ = writeln!(
        md,
        "re-running an idempotent bundle on a system that already has it.\n"
    );
    let _ = writeln!(md, "## Steps per bundle\n");
    for r in entries.iter().filter_map(|e| e.result.as_ref()) {
        let _ = writeln!(
            md,
            "### `{}` — {} ({}, via {})\n",
            r.bundle,
            r.name,
            label(r.summary.status),
            r.installed_via
        );
        if r.expected_exit != 0 {
            let _ = writeln!(
                md,
                "Expected to refuse with exit code {} (see its `tests.yml`).\n",
                r.expected_exit
            );
        }
        for step in &r.steps {
            let code = step
                .exit_code
                .map(|c| format!(", exit {c}"))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "- **{}**: {} in {}{code} — {}",
                step.name,
                label(step.status),
                seconds(step.duration_ms),
                step.detail
            );
            for check in &step.checks {
                let mark = if check.passed { "ok" } else { "FAILED" };
                let _ = writeln!(
                    md,
                    "  - {mark}: {} ({}) — {}",
                    check.name,
                    seconds(check.duration_ms),
                    check.detail
                );
            }
        }
        let _ = writeln!(md);
    }
    md
}

fn step_cell(r: &BundleResult, name: &str) -> String {
    match r.step(name) {
        None => String::new(),
        Some(s) => {
            let code = s
                .exit_code
                .map(|c| format!(", exit {c}"))
                .unwrap_or_default();
            format!("{} {}{code}", label(s.status), seconds(s.duration_ms))
        }
    }
}

fn smoke_cell(r: &BundleResult, name: &str) -> String {
    match r.step(name) {
        None => String::new(),
        Some(s) => {
            let ok = s.checks.iter().filter(|c| c.passed).count();
            format!("{} {ok}/{}", label(s.status), s.checks.len())
        }
    }
}

/// Milliseconds as seconds with one decimal, e.g. `12.3 s`.
pub fn seconds(ms: u64) -> String {
    format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
}

/// RFC 3339 UTC with second precision, e.g. `2026-11-22T09:41:07Z`.
pub fn rfc3339(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let at = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use outfitter_contract::conformance::RESULT_SCHEMA;

    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_339_267)),
            "2026-11-22T09:21:07Z"
        );
    }

    fn sample(status: Status) -> BundleResult {
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

    #[test]
    fn catalog_lists_tested_and_untested_bundles_with_times() {
        let entries = [
            CatalogEntry {
                id: "nginx".into(),
                result: Some(sample(Status::Passed)),
                current_digest: Some("ab".repeat(32)),
            },
            CatalogEntry {
                id: "redis".into(),
                result: None,
                current_digest: None,
            },
        ];
        let md = render_catalog(&entries, "outfitter-conformance run --all");
        assert!(md.contains("**1 of 2 bundles passed** (1 tested)"), "{md}");
        assert!(
            md.contains("| `nginx` | 1.0.0 | passed | passed 2.3 s, exit 0 | passed 1/1 |"),
            "{md}"
        );
        assert!(md.contains("| `redis` | | untested |"), "{md}");
    }

    #[test]
    fn result_of_a_changed_bundle_is_marked_stale() {
        let entries = [CatalogEntry {
            id: "nginx".into(),
            result: Some(sample(Status::Passed)),
            current_digest: Some("cd".repeat(32)),
        }];
        let md = render_catalog(&entries, "x");
        assert!(
            md.contains("| passed (stale: bundle changed since) |"),
            "{md}"
        );
    }
}
