//! Checks one value against one input's type and validation. Used for submissions (rules
//! `I003`–`I010`) and for manifest defaults (rule `M040`). Messages never repeat the value,
//! because it may be a secret.

use regex::Regex;
use serde_json::Value;
use validator::ValidateEmail;

use super::rules::{
    I003_WRONG_TYPE, I004_CONTROL_CHARACTER, I005_TOO_LONG, I006_LENGTH, I007_RANGE, I008_PATTERN,
    I009_NOT_ALLOWED, I010_EMAIL,
};
use crate::limits;
use crate::manifest::{InputSpec, InputType, Rule};

/// Lowest and highest port number.
pub const PORT_RANGE: (i64, i64) = (1, 65_535);

/// A failed check: the rule and a sentence.
pub(super) type Failure = (&'static Rule, String);

/// The first control character in `text`, if any: C0 (including TAB, CR, LF and NUL), DEL, C1,
/// and the Unicode line and paragraph separators. TAB is refused too: inputs are single-line
/// values that end up in environment variables and config files, where a TAB is never wanted.
pub fn find_control_character(text: &str) -> Option<char> {
    text.chars()
        .find(|&c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
}

/// Checks `value` for `spec`; `pattern` is the compiled `validation.pattern`, if any.
pub fn check_value(
    spec: &InputSpec,
    value: &Value,
    pattern: Option<&Regex>,
) -> Result<(), Failure> {
    let validation = spec.validation.clone().unwrap_or_default();
    match spec.r#type {
        InputType::String | InputType::Password | InputType::Email => {
            let Value::String(text) = value else {
                return Err((&I003_WRONG_TYPE, "must be text".into()));
            };
            check_text(text)?;
            let chars = text.chars().count() as u64;
            if let Some(min) = validation.min_length.filter(|&min| chars < min) {
                return Err((
                    &I006_LENGTH,
                    format!("must be at least {min} characters long"),
                ));
            }
            if let Some(max) = validation.max_length.filter(|&max| chars > max) {
                return Err((
                    &I006_LENGTH,
                    format!("must be at most {max} characters long"),
                ));
            }
            if let Some(regex) = pattern
                && !regex.is_match(text)
            {
                return Err((&I008_PATTERN, pattern_message(spec)));
            }
            if spec.r#type == InputType::Email && !text.validate_email() {
                return Err((
                    &I010_EMAIL,
                    "must be an e-mail address such as admin@example.com".into(),
                ));
            }
        }
        InputType::Integer | InputType::Port => {
            let Some(number) = value.as_i64().filter(|_| value.is_i64() || value.is_u64()) else {
                return Err((&I003_WRONG_TYPE, "must be a whole number".into()));
            };
            if spec.r#type == InputType::Port && !(PORT_RANGE.0..=PORT_RANGE.1).contains(&number) {
                return Err((&I007_RANGE, "must be a port number from 1 to 65535".into()));
            }
            if let Some(min) = validation.min.filter(|&min| number < min) {
                return Err((&I007_RANGE, format!("must be at least {min}")));
            }
            if let Some(max) = validation.max.filter(|&max| number > max) {
                return Err((&I007_RANGE, format!("must be at most {max}")));
            }
        }
        InputType::Boolean => {
            if !value.is_boolean() {
                return Err((&I003_WRONG_TYPE, "must be true or false".into()));
            }
        }
        InputType::Select => match value {
            Value::String(text) => check_text(text)?,
            Value::Number(_) | Value::Bool(_) => {}
            _ => {
                return Err((
                    &I003_WRONG_TYPE,
                    "must be one of the offered choices".into(),
                ));
            }
        },
    }
    if let Some(allowed) = validation.allowed_values.as_deref()
        && !allowed.contains(value)
    {
        return Err((
            &I009_NOT_ALLOWED,
            format!("must be one of {}", list(allowed)),
        ));
    }
    Ok(())
}

fn check_text(text: &str) -> Result<(), Failure> {
    if let Some(c) = find_control_character(text) {
        return Err((
            &I004_CONTROL_CHARACTER,
            format!(
                "must not contain control characters (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    if text.len() > limits::MAX_INPUT_VALUE_BYTES {
        return Err((
            &I005_TOO_LONG,
            format!(
                "must be at most {} bytes long",
                limits::MAX_INPUT_VALUE_BYTES
            ),
        ));
    }
    Ok(())
}

fn pattern_message(spec: &InputSpec) -> String {
    // The description usually says in words what the pattern wants; prefer it to regex syntax.
    match &spec.description {
        Some(description) => format!("does not have the expected form ({description})"),
        None => "does not have the expected form".into(),
    }
}

fn list(values: &[Value]) -> String {
    let shown: Vec<String> = values.iter().take(10).map(Value::to_string).collect();
    let more = if values.len() > 10 { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}
