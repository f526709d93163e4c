//! Validates one submission: unknown fields, visibility, defaults, hand checks, then the
//! compiled JSON Schema. One error per field, in manifest order.

use std::collections::{BTreeMap, BTreeSet};

use jsonschema::error::ValidationErrorKind;
use regex::Regex;
use serde::Serialize;
use serde_json::{Map, Value};

use super::rules::{
    I001_UNKNOWN_FIELD, I002_REQUIRED, I003_WRONG_TYPE, I006_LENGTH, I007_RANGE, I009_NOT_ALLOWED,
    I010_EMAIL, I011_SCHEMA,
};
use super::value_check::check_value;
use super::visibility::{effective_value, visible_inputs};
use super::{pattern, schema};
use crate::limits;
use crate::manifest::{InputType, Manifest, Rule};

/// One problem with one submitted field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The input name (or the undeclared name that was sent).
    pub field: String,
    /// Stable rule id, e.g. `I003`.
    pub rule: &'static str,
    /// What is wrong, in a sentence; never contains the submitted value.
    pub message: String,
}

impl FieldError {
    fn new(field: &str, rule: &Rule, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            rule: rule.id,
            message: message.into(),
        }
    }
}

/// Validated values: visible inputs only, defaults applied. Keyed by input name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InputValues(pub BTreeMap<String, Value>);

/// What validation needs compiled from a manifest; build once per bundle and reuse.
#[derive(Debug)]
pub struct CompiledInputs {
    validator: Option<jsonschema::Validator>,
    patterns: BTreeMap<String, Regex>,
}

impl CompiledInputs {
    /// Compiles the validator and every pattern. A pattern that does not compile is skipped
    /// here (a loaded manifest cannot have one: rule M037).
    pub fn new(manifest: &Manifest) -> Self {
        let validator = match schema::compile_validator(manifest) {
            Ok(validator) => Some(validator),
            Err(error) => {
                tracing::warn!(app = %manifest.id, %error, "input schema does not compile; hand checks only");
                None
            }
        };
        let patterns = manifest
            .inputs
            .iter()
            .filter_map(|input| {
                let source = input.validation.as_ref()?.pattern.as_ref()?;
                Some((input.name.clone(), pattern::compile(source).ok()?))
            })
            .collect();
        Self {
            validator,
            patterns,
        }
    }
}

/// Validates a submission against a manifest, compiling what it needs on the spot.
/// Prefer `Bundle::validate_inputs`, which compiles once per bundle.
pub fn validate_inputs(
    manifest: &Manifest,
    submitted: &Map<String, Value>,
) -> Result<InputValues, Vec<FieldError>> {
    validate_with(manifest, submitted, &CompiledInputs::new(manifest))
}

/// Validates with precompiled parts.
pub fn validate_with(
    manifest: &Manifest,
    submitted: &Map<String, Value>,
    compiled: &CompiledInputs,
) -> Result<InputValues, Vec<FieldError>> {
    let mut errors: Vec<FieldError> = Vec::new();
    for name in submitted
        .keys()
        .filter(|name| manifest.input(name).is_none())
    {
        if errors.len() >= limits::MAX_SUBMITTED_FIELDS {
            break;
        }
        errors.push(FieldError::new(
            &truncate(name),
            &I001_UNKNOWN_FIELD,
            "is not an input of this app",
        ));
    }

    let visible = visible_inputs(manifest, submitted);
    let mut values = BTreeMap::new();
    let mut field_errors: BTreeMap<String, FieldError> = BTreeMap::new();
    for input in manifest.inputs.iter().filter(|i| visible.contains(&i.name)) {
        match effective_value(input, submitted) {
            Some(value) => match check_value(input, value, compiled.patterns.get(&input.name)) {
                Ok(()) => {
                    values.insert(input.name.clone(), value.clone());
                }
                Err((rule, message)) => {
                    field_errors.insert(
                        input.name.clone(),
                        FieldError::new(&input.name, rule, message),
                    );
                }
            },
            None if input.required && input.r#type != InputType::Boolean => {
                field_errors.insert(
                    input.name.clone(),
                    FieldError::new(&input.name, &I002_REQUIRED, "is required"),
                );
            }
            None => {}
        }
    }

    if let Some(validator) = &compiled.validator {
        schema_errors(validator, &values, &visible, &mut field_errors);
    }

    // Manifest order for field errors, then the unknown fields.
    let mut ordered: Vec<FieldError> = manifest
        .inputs
        .iter()
        .filter_map(|input| field_errors.remove(&input.name))
        .collect();
    ordered.append(&mut errors);
    if ordered.is_empty() {
        Ok(InputValues(values))
    } else {
        Err(ordered)
    }
}

/// Runs the compiled schema over the values that passed the hand checks; anything it still
/// finds is mapped to the field it concerns. Fields that already have an error keep it.
fn schema_errors(
    validator: &jsonschema::Validator,
    values: &BTreeMap<String, Value>,
    visible: &BTreeSet<String>,
    field_errors: &mut BTreeMap<String, FieldError>,
) {
    let instance = Value::Object(values.clone().into_iter().collect());
    for error in validator.iter_errors(&instance) {
        let (fields, rule): (Vec<String>, &Rule) = match error.kind() {
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default().to_owned();
                // A required input that failed its own checks is absent here; keep that error.
                (vec![name], &I002_REQUIRED)
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                (unexpected.clone(), &I001_UNKNOWN_FIELD)
            }
            kind => {
                let field = error
                    .instance_path()
                    .iter()
                    .next()
                    .map(|segment| segment.to_string())
                    .unwrap_or_default();
                (vec![field], rule_for(kind))
            }
        };
        for field in fields {
            if field.is_empty() || (!visible.contains(&field) && rule.id != I001_UNKNOWN_FIELD.id) {
                continue;
            }
            field_errors
                .entry(field.clone())
                .or_insert_with(|| FieldError::new(&field, rule, schema_message(rule)));
        }
    }
}

fn rule_for(kind: &ValidationErrorKind) -> &'static Rule {
    match kind {
        ValidationErrorKind::Type { .. } => &I003_WRONG_TYPE,
        ValidationErrorKind::MinLength { .. } | ValidationErrorKind::MaxLength { .. } => {
            &I006_LENGTH
        }
        ValidationErrorKind::Minimum { .. } | ValidationErrorKind::Maximum { .. } => &I007_RANGE,
        ValidationErrorKind::Enum { .. } | ValidationErrorKind::Constant { .. } => {
            &I009_NOT_ALLOWED
        }
        ValidationErrorKind::Format { .. } => &I010_EMAIL,
        _ => &I011_SCHEMA,
    }
}

fn schema_message(rule: &Rule) -> String {
    // Schema messages quote the instance; a generic sentence cannot leak a secret.
    format!("is not valid: {}", rule.title)
}

/// Undeclared names are echoed back: keep them short and printable.
fn truncate(name: &str) -> String {
    name.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use jsonschema::error::ValidationErrorKind;

    use super::rule_for;

    #[test]
    fn schema_errors_without_a_specific_rule_map_to_i011() {
        // The hand checks catch everything the generated schema expresses; a schema keyword
        // they do not know (here `uniqueItems`) still yields a field error with I011.
        assert_eq!(rule_for(&ValidationErrorKind::UniqueItems).id, "I011");
        assert_eq!(rule_for(&ValidationErrorKind::Contains).id, "I011");
    }

    #[test]
    fn echoed_unknown_field_names_are_short_and_printable() {
        assert_eq!(super::truncate("a\nb\u{0}c"), "a?b?c");
        assert_eq!(super::truncate(&"x".repeat(500)).len(), 64);
    }
}
