//! Reading `manifest.yml` safely: size cap before parsing, UTF-8 check, YAML with a budget.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::diagnostic::Diagnostic;
use super::rules;
use crate::limits;

/// Reads the manifest bytes, refusing a file over the cap without reading it whole.
pub(super) fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, Diagnostic> {
    let file = File::open(path).map_err(|error| {
        Diagnostic::new(
            &rules::M001_UNREADABLE,
            "",
            format!("cannot open {}: {error}", path.display()),
        )
    })?;
    let metadata = file.metadata().map_err(|error| {
        Diagnostic::new(
            &rules::M001_UNREADABLE,
            "",
            format!("cannot stat {}: {error}", path.display()),
        )
    })?;
    if !metadata.is_file() {
        return Err(Diagnostic::new(
            &rules::M001_UNREADABLE,
            "",
            format!("{} is not a regular file", path.display()),
        ));
    }
    let too_large = |size: u64| {
        Diagnostic::new(
            &rules::M002_TOO_LARGE,
            "",
            format!("the manifest is {size} bytes; at most {cap} are allowed"),
        )
    };
    if metadata.len() > cap {
        return Err(too_large(metadata.len()));
    }
    // The file may grow between stat and read: read at most cap + 1 bytes.
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| {
            Diagnostic::new(
                &rules::M001_UNREADABLE,
                "",
                format!("cannot read {}: {error}", path.display()),
            )
        })?;
    if bytes.len() as u64 > cap {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Parses manifest bytes into a JSON value under the YAML budget.
pub(super) fn parse(bytes: &[u8]) -> Result<Value, Diagnostic> {
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(Diagnostic::new(
            &rules::M003_NOT_TEXT,
            "",
            format!("the manifest contains a NUL byte at offset {offset}; it must be YAML text"),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|error| {
        Diagnostic::new(
            &rules::M003_NOT_TEXT,
            "",
            format!(
                "the manifest is not UTF-8 text (invalid byte at offset {})",
                error.valid_up_to()
            ),
        )
    })?;
    if text.trim().is_empty() {
        return Err(Diagnostic::new(
            &rules::M004_YAML_SYNTAX,
            "",
            "the manifest is empty",
        ));
    }
    match super::yaml_tree::parse(text) {
        Some(value) => Ok(value),
        None => parse_with_serde_saphyr(text),
    }
}

/// The full parse under the budget, and the outcome (value or diagnostic) of record for every
/// document the fast path declines.
pub(super) fn parse_with_serde_saphyr(text: &str) -> Result<Value, Diagnostic> {
    let value: Value =
        serde_saphyr::from_str_with_options(text, options()).map_err(|e| classify(&e))?;
    if !value.is_object() {
        return Err(Diagnostic::new(
            &rules::M004_YAML_SYNTAX,
            "",
            "the manifest must be a YAML mapping of fields (id: …, name: …)",
        ));
    }
    Ok(value)
}

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_reader_input_bytes = Some(limits::MAX_MANIFEST_BYTES as usize);
    budget.max_depth = limits::YAML_MAX_DEPTH;
    budget.flow_nesting_limit = limits::YAML_MAX_FLOW_NESTING;
    budget.max_events = limits::YAML_MAX_EVENTS;
    budget.max_nodes = limits::YAML_MAX_NODES;
    budget.max_anchors = limits::YAML_MAX_ANCHORS;
    budget.max_aliases = limits::YAML_MAX_ALIASES;
    budget.max_total_scalar_bytes = limits::YAML_MAX_SCALAR_BYTES;
    budget.max_merge_keys = limits::YAML_MAX_MERGE_KEYS;
    budget.max_documents = 1;
    budget.max_inclusion_depth = 0;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    // YAML 1.2 core booleans only: `n`, `no`, `on`, `y` stay text (the "Norway problem").
    options.strict_booleans = true;
    options
}

fn classify(error: &serde_saphyr::Error) -> Diagnostic {
    let message = first_line(&error.to_string());
    let root = root_cause(error);
    if let serde_saphyr::Error::Budget {
        breach: serde_saphyr::budget::BudgetBreach::Documents { .. },
        ..
    } = root
    {
        return Diagnostic::new(
            &rules::M004_YAML_SYNTAX,
            "",
            "the manifest must be a single YAML document; remove the '---' separator",
        );
    }
    let lowered = message.to_ascii_lowercase();
    let over_budget = matches!(root, serde_saphyr::Error::Budget { .. })
        || lowered.contains("budget")
        || lowered.contains("nesting")
        || lowered.contains("depth")
        || lowered.contains("limit");
    if over_budget {
        Diagnostic::new(
            &rules::M005_YAML_BUDGET,
            "",
            format!(
                "the manifest exceeds the YAML budget (too many aliases, too deep or too large): {message}"
            ),
        )
    } else {
        Diagnostic::new(
            &rules::M004_YAML_SYNTAX,
            "",
            format!("the manifest is not valid YAML: {message}"),
        )
    }
}

/// The error without its snippet and alias wrappers.
fn root_cause(mut error: &serde_saphyr::Error) -> &serde_saphyr::Error {
    while let serde_saphyr::Error::WithSnippet { error: inner, .. }
    | serde_saphyr::Error::AliasError { error: inner, .. } = error
    {
        error = inner;
    }
    error
}

fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    line.chars().take(300).collect()
}
