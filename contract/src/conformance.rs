//! A bundle's latest conformance result, as the harness writes it and the panel reads it:
//! the file's name and schema id, the summary fields both sides use, a reader that survives a
//! hostile file, and the rule that turns a result into `passed|failed|stale|untested`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::limits::MAX_CONFORMANCE_RESULT_BYTES;

/// File name of a bundle's latest result, inside the bundle directory.
pub const RESULT_FILE: &str = "conformance.json";
/// Identifies the JSON shape; bump the number on an incompatible change.
pub const RESULT_SCHEMA: &str = "outfitter-conformance-result/1";

/// How a conformance run, or one of its steps, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The run or step did what the bundle's `tests.yml` expects.
    Passed,
    /// The run or step went wrong; for a run, at least one of its steps failed.
    Failed,
    /// Not run (a step after a failure). A whole run is never skipped, but a file saying so
    /// counts as untested.
    Skipped,
}

/// The fields of a result file that both the harness and the panel rely on. The harness
/// flattens this into its full result, so the two cannot drift apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConformanceSummary {
    /// Always [`RESULT_SCHEMA`].
    pub schema: String,
    /// The contract's bundle digest when tested (empty when the bundle could not be read);
    /// a different current digest makes the result stale.
    pub digest: String,
    /// `passed` when every step passed, else `failed`.
    pub status: Outcome,
    /// RFC 3339 time the run started, e.g. `2026-11-22T09:41:07Z`.
    pub tested_at: String,
    /// Wall time of the first install, when it ran.
    pub install_ms: Option<u64>,
    /// Wall time of the second install with the same inputs, when it ran.
    pub reinstall_ms: Option<u64>,
    /// Whether the smoke checks passed after the first install, when they ran.
    pub smoke_passed: Option<bool>,
    /// Whether the smoke checks passed after the reinstall, when they ran.
    pub reinstall_smoke_passed: Option<bool>,
}

/// What the catalog says about a bundle's conformance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatalogStatus {
    /// The current bundle passed.
    Passed,
    /// The current bundle failed.
    Failed,
    /// The result was recorded for another version of the bundle (its digest differs).
    Stale,
    /// No readable result.
    Untested,
}

impl CatalogStatus {
    /// Every status, in the order the docs list them.
    pub const ALL: [Self; 4] = [Self::Passed, Self::Failed, Self::Stale, Self::Untested];

    /// The status's wire name (`passed`, `failed`, `stale`, `untested`), the same as its serde
    /// name; the panel's OpenAPI document lists these as the allowed values.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Stale => "stale",
            Self::Untested => "untested",
        }
    }

    /// Whether the bundle is proven: the only status offered when an operator hides untested
    /// and failing bundles.
    pub fn is_proven(self) -> bool {
        self == Self::Passed
    }
}

/// The catalog status of a bundle whose digest is now `current_digest`, given its latest
/// result (`None`: never tested, or the file could not be read).
pub fn catalog_status(summary: Option<&ConformanceSummary>, current_digest: &str) -> CatalogStatus {
    match summary {
        None => CatalogStatus::Untested,
        Some(s) if s.digest != current_digest => CatalogStatus::Stale,
        Some(s) => match s.status {
            Outcome::Passed => CatalogStatus::Passed,
            Outcome::Failed => CatalogStatus::Failed,
            Outcome::Skipped => CatalogStatus::Untested,
        },
    }
}

/// Why a result file cannot be used. Each message names the file or the field and the rule.
#[derive(Debug, thiserror::Error)]
pub enum ResultFileError {
    /// The file exists but its metadata or bytes could not be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The result file that failed.
        path: PathBuf,
        /// The I/O error, as text.
        reason: String,
    },
    /// The path is a directory, FIFO, device or socket: it is never opened, since a FIFO would
    /// block the reader.
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The result file that is not a file.
        path: PathBuf,
    },
    /// The file is larger than [`MAX_CONFORMANCE_RESULT_BYTES`].
    #[error("{path} is {size} bytes; at most {cap} are allowed")]
    TooLarge {
        /// The result file that is too large.
        path: PathBuf,
        /// Its size in bytes (at least `cap + 1` when it grew while being read).
        size: u64,
        /// The cap in bytes, [`MAX_CONFORMANCE_RESULT_BYTES`].
        cap: u64,
    },
    /// The bytes are not JSON of the [`ConformanceSummary`] shape.
    #[error("{RESULT_FILE} is not a conformance result: {reason}")]
    Malformed {
        /// serde_json's message, cut to 200 characters so a hostile file cannot flood a page.
        reason: String,
    },
    /// The JSON has the right shape but a field breaks a rule of [`ConformanceSummary::check`].
    #[error("{RESULT_FILE}: `{field}` {rule}")]
    Field {
        /// The JSON field name, such as `digest`.
        field: &'static str,
        /// What the field must be, as the end of a sentence (`must be …`).
        rule: String,
    },
}

/// Reads the bytes of `<bundle_dir>/conformance.json` under the size cap; `Ok(None)` when the
/// bundle has no result. Never opens a FIFO or device (that could block or never end).
pub fn read_result_bytes(bundle_dir: &Path) -> Result<Option<Vec<u8>>, ResultFileError> {
    let path = bundle_dir.join(RESULT_FILE);
    let unreadable = |error: std::io::Error| ResultFileError::Unreadable {
        path: path.clone(),
        reason: error.to_string(),
    };
    // Checked before opening: opening a FIFO waits for a writer.
    match std::fs::metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e)),
        Ok(m) if !m.is_file() => return Err(ResultFileError::NotAFile { path }),
        Ok(_) => {}
    }
    let file = File::open(&path).map_err(unreadable)?;
    let metadata = file.metadata().map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(ResultFileError::NotAFile { path });
    }
    let cap = MAX_CONFORMANCE_RESULT_BYTES;
    if metadata.len() > cap {
        return Err(ResultFileError::TooLarge {
            path,
            size: metadata.len(),
            cap,
        });
    }
    // The file may grow between stat and read: read at most cap + 1 bytes.
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > cap {
        return Err(ResultFileError::TooLarge {
            path,
            size: bytes.len() as u64,
            cap,
        });
    }
    Ok(Some(bytes))
}

/// Parses and checks the summary fields of a result file's bytes; other fields are ignored.
pub fn parse_summary(bytes: &[u8]) -> Result<ConformanceSummary, ResultFileError> {
    let summary: ConformanceSummary =
        serde_json::from_slice(bytes).map_err(|e| ResultFileError::Malformed {
            // serde_json may quote the offending value; keep the message short.
            reason: e.to_string().chars().take(200).collect(),
        })?;
    summary.check()?;
    Ok(summary)
}

/// Reads `<bundle_dir>/conformance.json`: `Ok(None)` when the bundle was never tested.
pub fn read_summary(bundle_dir: &Path) -> Result<Option<ConformanceSummary>, ResultFileError> {
    read_result_bytes(bundle_dir)?
        .map(|bytes| parse_summary(&bytes))
        .transpose()
}

/// Whether `text` is an RFC 3339 date-time (`2026-11-22T09:41:07Z`, `…+01:00`, fractions)
/// naming a day that exists: `2026-02-31` is refused.
pub fn is_rfc3339(text: &str) -> bool {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).is_ok()
}

impl ConformanceSummary {
    /// The rules a result must meet beyond its JSON types.
    pub fn check(&self) -> Result<(), ResultFileError> {
        if self.schema != RESULT_SCHEMA {
            return Err(ResultFileError::Field {
                field: "schema",
                rule: format!("must be \"{RESULT_SCHEMA}\""),
            });
        }
        let hex =
            |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !self.digest.is_empty() && !hex(&self.digest) {
            return Err(ResultFileError::Field {
                field: "digest",
                rule: "must be 64 lowercase hex digits (or empty)".into(),
            });
        }
        if !is_rfc3339(&self.tested_at) {
            return Err(ResultFileError::Field {
                field: "tested_at",
                rule: "must be an RFC 3339 date-time such as 2026-11-22T09:41:07Z".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
