//! The record of one run's steps: each step timed, its log written and its secrets masked.

use std::path::PathBuf;
use std::time::Instant;

use outfitter_contract::job::REDACTED;

use super::HarnessConfig;
use crate::checks::millis;
use crate::container::tail_lines;
use crate::report::{LOG_TAIL_LINES, Status, StepResult};

/// Every secret of the run replaced by the contract's redaction mark.
pub(super) fn mask(secrets: &[String], text: &str) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |t, s| t.replace(s.as_str(), REDACTED))
}

/// Collects the steps of one run.
pub(super) struct Run<'a> {
    pub(super) config: &'a HarnessConfig,
    pub(super) id: String,
    pub(super) secrets: Vec<String>,
    pub(super) steps: Vec<StepResult>,
    pub(super) log_dir: PathBuf,
}

impl Run<'_> {
    fn mask(&self, text: &str) -> String {
        mask(&self.secrets, text)
    }

    /// Records a step; returns whether it passed.
    pub(super) fn record(
        &mut self,
        name: &str,
        started: Instant,
        passed: bool,
        detail: &str,
        exit_code: Option<i32>,
        log: &str,
    ) -> bool {
        let log = self.mask(log);
        let log_path = (!log.is_empty()).then(|| {
            let path = self.log_dir.join(format!("{name}.log"));
            let _ = std::fs::create_dir_all(&self.log_dir);
            let _ = std::fs::write(&path, &log);
            path.display().to_string()
        });
        let status = if passed {
            Status::Passed
        } else {
            Status::Failed
        };
        tracing::info!(bundle = %self.id, step = name, ?status, "{}", self.mask(detail));
        self.steps.push(StepResult {
            name: name.to_owned(),
            status,
            duration_ms: millis(started.elapsed()),
            exit_code,
            detail: self.mask(detail),
            checks: Vec::new(),
            leftovers: Vec::new(),
            log_tail: tail_lines(&log, LOG_TAIL_LINES),
            log_path,
        });
        passed
    }

    /// Records a step that did not run, saying why.
    pub(super) fn skip(&mut self, name: &str, why: &str) {
        tracing::info!(bundle = %self.id, step = name, "skipped: {why}");
        self.steps.push(StepResult {
            name: name.to_owned(),
            status: Status::Skipped,
            duration_ms: 0,
            exit_code: None,
            detail: why.to_owned(),
            checks: Vec::new(),
            leftovers: Vec::new(),
            log_tail: String::new(),
            log_path: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_is_masked_and_empty_ones_are_ignored() {
        let secrets = vec!["hunter2".to_owned(), String::new()];
        assert_eq!(
            mask(&secrets, "pw=hunter2, again hunter2"),
            format!("pw={REDACTED}, again {REDACTED}")
        );
    }
}
