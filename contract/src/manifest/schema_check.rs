//! Validates the parsed manifest against `schemas/manifest.schema.json` and turns each schema
//! error into a diagnostic with a specific rule id where one exists.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use super::diagnostic::Diagnostic;
use super::rules::{self, Rule};

/// The manifest JSON Schema, as shipped in `schemas/` for editors.
pub const MANIFEST_SCHEMA: &str = include_str!("../../../schemas/manifest.schema.json");

/// The compiled manifest schema, built on first use. A constant: it never changes at runtime.
fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(MANIFEST_SCHEMA).expect("schemas/manifest.schema.json is JSON");
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&schema)
            .expect("schemas/manifest.schema.json compiles")
    })
}

/// The manifest schema as JSON (for serving to editors and tools).
pub fn manifest_schema() -> Value {
    serde_json::from_str(MANIFEST_SCHEMA).unwrap_or(Value::Null)
}

/// Every schema violation of `document`, as diagnostics.
pub(super) fn check_schema(document: &Value) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = Vec::new();
    // Fast path: `is_valid` short-circuits and builds no error values.
    if validator().is_valid(document) {
        return out;
    }
    for error in validator().iter_errors(document) {
        let pointer: Vec<String> = error
            .instance_path()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let here = field_path(&pointer);
        let diagnostic = match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for name in unexpected {
                    let path = join(&here, name);
                    out.push(Diagnostic::new(
                        &rules::M006_UNKNOWN_FIELD,
                        path,
                        format!("unknown field '{name}'; check its spelling against the contract"),
                    ));
                }
                continue;
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                Diagnostic::new(
                    &rules::M007_MISSING_FIELD,
                    join(&here, name),
                    format!("the required field '{name}' is missing"),
                )
            }
            ValidationErrorKind::Type { kind } => {
                let actual = error.instance();
                Diagnostic::new(
                    &rules::M008_WRONG_TYPE,
                    here.clone(),
                    type_message(kind, actual.as_ref()),
                )
            }
            kind => {
                let rule = specific_rule(&pointer, kind);
                Diagnostic::new(rule, here.clone(), value_message(kind, &error.to_string()))
            }
        };
        out.push(diagnostic);
    }
    // `oneOf` reports its branches too; one finding per path and rule is enough.
    out.dedup_by(|a, b| a.path == b.path && a.rule == b.rule);
    out
}

/// `/inputs/2/default` as `inputs[2].default`.
pub(super) fn field_path(pointer: &[String]) -> String {
    let mut path = String::new();
    for segment in pointer {
        if segment.parse::<usize>().is_ok() {
            path.push_str(&format!("[{segment}]"));
        } else {
            path = join(&path, segment);
        }
    }
    path
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_owned()
    } else {
        format!("{base}.{name}")
    }
}

/// The rule a value-level schema error belongs to, by the field it concerns.
fn specific_rule(pointer: &[String], kind: &ValidationErrorKind) -> &'static Rule {
    let fields: Vec<&str> = pointer
        .iter()
        .map(String::as_str)
        .filter(|s| s.parse::<usize>().is_err())
        .collect();
    match fields.as_slice() {
        ["id"] => &rules::M010_ID_FORMAT,
        ["version"] => &rules::M012_VERSION_FORMAT,
        ["name" | "description" | "author" | "post_install_message"] => &rules::M013_TEXT,
        ["inputs", "label" | "description"] => &rules::M013_TEXT,
        ["category"] => &rules::M014_CATEGORY_FORMAT,
        ["install_script"] => &rules::M015_SCRIPT_NAME,
        ["timeout_seconds"] => &rules::M020_TIMEOUT_RANGE,
        ["retry", ..] => &rules::M021_RETRY_RANGE,
        ["os_requirements", ..] => &rules::M022_OS_REQUIREMENTS,
        ["resource_requirements", ..] => &rules::M023_RESOURCES,
        ["homepage"] => &rules::M024_HOMEPAGE,
        ["requires", ..] => &rules::M048_REQUIRES,
        ["inputs"] => &rules::M033_TOO_MANY_INPUTS,
        ["inputs", "name"] => &rules::M030_INPUT_NAME,
        ["inputs", "validation", "pattern"] => &rules::M037_PATTERN,
        ["inputs", "validation", "min_length" | "max_length"]
            if matches!(kind, ValidationErrorKind::Maximum { .. }) =>
        {
            &rules::M045_LENGTH_CAP
        }
        ["inputs", "validation", "allowed_values"]
            if matches!(kind, ValidationErrorKind::MinItems { .. }) =>
        {
            &rules::M034_SELECT_VALUES
        }
        ["inputs", "visible_if", ..] => &rules::M042_VISIBLE_IF_UNKNOWN,
        _ => &rules::M009_SCHEMA_VALUE,
    }
}

fn type_message(expected: &TypeKind, actual: &Value) -> String {
    let wanted = match expected {
        TypeKind::Single(t) => t.to_string(),
        TypeKind::Multiple(ts) => {
            let names: Vec<String> = ts.iter().map(|t| t.to_string()).collect();
            names.join(" or ")
        }
    };
    let got = json_kind(actual);
    let hint = if wanted == "string" && matches!(actual, Value::Number(_) | Value::Bool(_)) {
        "; put it in quotes, e.g. version: \"1.0\""
    } else {
        ""
    };
    format!("must be {wanted}, not {got}{hint}")
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn value_message(kind: &ValidationErrorKind, fallback: &str) -> String {
    match kind {
        ValidationErrorKind::Pattern { pattern } => format!("must match {pattern}"),
        ValidationErrorKind::Minimum { limit } => format!("must be at least {limit}"),
        ValidationErrorKind::Maximum { limit } => format!("must be at most {limit}"),
        ValidationErrorKind::MinLength { limit: 1 } => "must not be empty".to_owned(),
        ValidationErrorKind::MinLength { limit } => {
            format!("must be at least {limit} characters long")
        }
        ValidationErrorKind::MaxLength { limit } => {
            format!("must be at most {limit} characters long")
        }
        ValidationErrorKind::MinItems { limit } => format!("must list at least {limit} item(s)"),
        ValidationErrorKind::MaxItems { limit } => format!("must list at most {limit} items"),
        ValidationErrorKind::MaxProperties { limit } => {
            format!("must have at most {limit} entries")
        }
        ValidationErrorKind::Enum { options } => format!("must be one of {options}"),
        _ => shorten(fallback),
    }
}

/// Schema messages quote the offending value; keep them readable on one line.
fn shorten(text: &str) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() > 200 {
        format!("{}…", one_line.chars().take(200).collect::<String>())
    } else {
        one_line
    }
}
