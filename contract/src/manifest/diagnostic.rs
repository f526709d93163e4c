//! A finding about a bundle: rule id, severity, where, and a sentence for the author.

use std::fmt;

use serde::Serialize;

use super::rules::Rule;

/// How bad a finding is. Errors keep a bundle out of the catalog and fail `lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The bundle is unusable until fixed.
    Error,
    /// Probably a mistake; the bundle still loads.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Stable rule id, e.g. `M012`.
    pub rule: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// Where: a manifest field path such as `inputs[2].default`, a script location such as
    /// `install.sh:12`, or empty when it concerns the whole file.
    pub path: String,
    /// What is wrong and how to fix it, in a sentence.
    pub message: String,
}

impl Diagnostic {
    /// A finding of `rule` (its id and default severity) at `path`.
    pub fn new(rule: &Rule, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            rule: rule.id,
            severity: rule.severity,
            path: path.into(),
            message: message.into(),
        }
    }

    /// Whether this finding is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}: {}", self.rule, self.severity, self.message)
        } else {
            write!(
                f,
                "{}: {}: {}: {}",
                self.path, self.rule, self.severity, self.message
            )
        }
    }
}

/// Whether any finding is an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(Diagnostic::is_error)
}
