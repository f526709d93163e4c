//! Compiles a manifest's inputs into one JSON Schema (draft 2020-12) for API callers, and the
//! validator the server runs on every submission.
//!
//! `pattern` is served anchored (`^(?:…)$`) so it means "the whole value" as in HTML forms,
//! but the server checks patterns itself with the `regex` crate (rule I008): the validator is
//! compiled from the same schema without `pattern`, so there is exactly one regex engine
//! deciding, and an ECMA/Rust dialect difference can never make the two disagree.

use serde_json::{Map, Value, json};

use super::pattern;
use super::value_check::PORT_RANGE;
use crate::manifest::{InputSpec, InputType, Manifest};

/// The JSON Schema URI of draft 2020-12.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// The schema served to API callers (`GET /api/v1/apps/<id>/schema`).
pub fn input_schema(manifest: &Manifest) -> Value {
    build(manifest, true)
}

/// Compiles the server-side validator (the served schema minus `pattern`).
pub(super) fn compile_validator(manifest: &Manifest) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&build(manifest, false))
        .map_err(|error| error.to_string())
}

fn build(manifest: &Manifest, with_patterns: bool) -> Value {
    let properties: Map<String, Value> = manifest
        .inputs
        .iter()
        .map(|input| (input.name.clone(), property(input, with_patterns)))
        .collect();
    let always_required: Vec<&str> = manifest
        .inputs
        .iter()
        .filter(|i| needs_value(i) && i.visible_if.is_empty())
        .map(|i| i.name.as_str())
        .collect();
    let conditional: Vec<Value> = manifest
        .inputs
        .iter()
        .filter(|i| needs_value(i) && !i.visible_if.is_empty())
        .map(|i| json!({ "if": condition(manifest, i), "then": { "required": [i.name] } }))
        .collect();
    let mut schema = json!({
        "$schema": DRAFT_2020_12,
        "title": manifest.name,
        "description": format!("Inputs of {} {}", manifest.id, manifest.version),
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    });
    if !always_required.is_empty() {
        schema["required"] = json!(always_required);
    }
    if !conditional.is_empty() {
        schema["allOf"] = Value::Array(conditional);
    }
    schema
}

/// Required and without a default: the caller must send it (when visible).
fn needs_value(input: &InputSpec) -> bool {
    input.required && input.default.is_none() && input.r#type != InputType::Boolean
}

/// The `if` of a `visible_if`: the input is visible exactly when the server would keep it,
/// i.e. every controlling input is itself visible and has an accepted value, counting its
/// default when it is absent (as validation does).
fn condition(manifest: &Manifest, input: &InputSpec) -> Value {
    let mut tests = Vec::new();
    visibility_tests(manifest, input, 0, &mut tests);
    json!({ "allOf": tests })
}

fn visibility_tests(manifest: &Manifest, input: &InputSpec, depth: usize, out: &mut Vec<Value>) {
    // Loaded manifests have no cycles (M043); the bound keeps any other input finite.
    if depth > manifest.inputs.len() {
        out.push(json!(false));
        return;
    }
    for (name, accepted) in &input.visible_if {
        let Some(controller) = manifest.input(name) else {
            out.push(json!(false));
            continue;
        };
        let test = match accepted.values() {
            [one] => json!({ "const": one }),
            many => json!({ "enum": many }),
        };
        let default_matches = controller
            .default
            .as_ref()
            .is_some_and(|d| accepted.matches(d));
        if default_matches {
            // Absent means the default, which matches: only a present value is tested.
            out.push(json!({ "properties": { name: test } }));
        } else {
            out.push(json!({ "properties": { name: test }, "required": [name] }));
        }
        visibility_tests(manifest, controller, depth + 1, out);
    }
}

fn property(input: &InputSpec, with_patterns: bool) -> Value {
    let validation = input.validation.clone().unwrap_or_default();
    let mut p = Map::new();
    p.insert("title".into(), json!(input.label));
    if let Some(description) = &input.description {
        p.insert("description".into(), json!(description));
    }
    match input.r#type {
        InputType::String | InputType::Password | InputType::Email => {
            p.insert("type".into(), json!("string"));
            if let Some(min) = validation.min_length {
                p.insert("minLength".into(), json!(min));
            }
            if let Some(max) = validation.max_length {
                p.insert("maxLength".into(), json!(max));
            }
            if let (true, Some(source)) = (with_patterns, &validation.pattern) {
                p.insert("pattern".into(), json!(pattern::anchored(source)));
            }
            if input.r#type == InputType::Email {
                p.insert("format".into(), json!("email"));
            }
        }
        InputType::Integer | InputType::Port => {
            p.insert("type".into(), json!("integer"));
            let (mut low, mut high) = (validation.min, validation.max);
            if input.r#type == InputType::Port {
                low = Some(low.map_or(PORT_RANGE.0, |l| l.max(PORT_RANGE.0)));
                high = Some(high.map_or(PORT_RANGE.1, |h| h.min(PORT_RANGE.1)));
            }
            if let Some(low) = low {
                p.insert("minimum".into(), json!(low));
            }
            if let Some(high) = high {
                p.insert("maximum".into(), json!(high));
            }
        }
        InputType::Boolean => {
            p.insert("type".into(), json!("boolean"));
        }
        InputType::Select => {}
    }
    if let Some(allowed) = validation.allowed_values {
        p.insert("enum".into(), Value::Array(allowed));
    }
    if input.is_sensitive() {
        p.insert("writeOnly".into(), json!(true));
    } else if let Some(default) = &input.default {
        // A secret's default is never served.
        p.insert("default".into(), default.clone());
    }
    Value::Object(p)
}
