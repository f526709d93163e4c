//! HTML form strings to the declared JSON types, before validation.

use serde_json::{Map, Value};

use crate::limits;
use crate::manifest::{InputSpec, InputType, Manifest};

/// Converts form fields to the declared types.
///
/// - Names starting with `_` are the panel's own fields (`_csrf`, `_agent`) and are skipped;
///   input names can never start with `_`.
/// - An empty field of a non-boolean input means "not given" (the default then applies).
/// - A boolean that is absent is `false` (an unchecked checkbox sends nothing); `on`, `true`,
///   `1`, `yes` are `true`; `off`, `false`, `0`, `no` are `false`.
/// - A field given twice keeps its last value (the hidden-field-before-checkbox idiom).
/// - A value that does not convert stays a string, so validation reports it (I003); an
///   undeclared name is passed through, so validation reports it (I001).
pub fn coerce_form(manifest: &Manifest, form: &[(String, String)]) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, raw) in form {
        if name.starts_with('_') {
            continue;
        }
        if !out.contains_key(name) && out.len() >= limits::MAX_SUBMITTED_FIELDS {
            continue;
        }
        match manifest.input(name) {
            Some(input) => match coerce_value(input, raw) {
                Some(value) => {
                    out.insert(name.clone(), value);
                }
                None => {
                    out.remove(name);
                }
            },
            None => {
                out.insert(name.clone(), Value::String(raw.clone()));
            }
        }
    }
    for input in &manifest.inputs {
        if input.r#type == InputType::Boolean && !out.contains_key(&input.name) {
            out.insert(input.name.clone(), Value::Bool(false));
        }
    }
    out
}

/// One field; `None` means "not given".
fn coerce_value(input: &InputSpec, raw: &str) -> Option<Value> {
    if raw.is_empty() && input.r#type != InputType::Boolean {
        return None;
    }
    let value = match input.r#type {
        InputType::Integer | InputType::Port => match raw.trim().parse::<i64>() {
            Ok(number) => Value::from(number),
            Err(_) => Value::String(raw.to_owned()),
        },
        InputType::Boolean => match raw.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => Value::Bool(true),
            "" | "off" | "false" | "0" | "no" => Value::Bool(false),
            _ => Value::String(raw.to_owned()),
        },
        InputType::Select => input
            .allowed_values()
            .unwrap_or_default()
            .iter()
            .find(|allowed| form_spelling(allowed) == raw)
            .cloned()
            .unwrap_or_else(|| Value::String(raw.to_owned())),
        InputType::String | InputType::Password | InputType::Email => Value::String(raw.to_owned()),
    };
    Some(value)
}

/// How a value is written in an HTML form (`<option value="…">`).
pub fn form_spelling(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
