//! The install form generated from a manifest: one field per input with its label, help,
//! HTML5 constraints (as hints; the server validates), the value to show and its error.
//! Secrets are never echoed back.

use std::collections::BTreeMap;

use outfitter_contract::inputs::{PORT_RANGE, form_spelling};
use outfitter_contract::manifest::{InputSpec, InputType, Manifest};
use serde::Serialize;
use serde_json::Value;

/// One `<option>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptionView {
    pub value: String,
    pub selected: bool,
}

/// One extra attribute (`pattern`, `min`, …). Names come from this module only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attr {
    pub name: &'static str,
    pub value: String,
}

/// One form field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldView {
    pub name: String,
    pub label: String,
    /// `text` (an `<input>`), `select` or `checkbox`.
    pub kind: &'static str,
    /// `type` of the `<input>`.
    pub html_type: &'static str,
    /// The value to show (never a secret).
    pub value: String,
    pub checked: bool,
    pub options: Vec<OptionView>,
    pub attrs: Vec<Attr>,
    pub required: bool,
    /// `required` in HTML only when the field is always shown (a hidden required field
    /// would block the browser's submit).
    pub required_attr: bool,
    pub help: String,
    /// `visible_if` in words, for pages without JavaScript.
    pub condition: String,
    /// `visible_if` as JSON (name → accepted values) for `panel.js`; empty if none.
    pub visible_if: String,
    pub error: String,
}

fn truthy(raw: &str) -> bool {
    matches!(
        raw.trim().to_ascii_lowercase().as_str(),
        "on" | "true" | "1" | "yes"
    )
}

fn attrs(input: &InputSpec) -> Vec<Attr> {
    let mut out = Vec::new();
    let v = input.validation.clone().unwrap_or_default();
    let mut push = |name: &'static str, value: Option<String>| {
        if let Some(value) = value {
            out.push(Attr { name, value });
        }
    };
    match input.r#type {
        InputType::String | InputType::Password | InputType::Email => {
            push("minlength", v.min_length.map(|n| n.to_string()));
            push("maxlength", v.max_length.map(|n| n.to_string()));
            push("pattern", v.pattern);
            if input.r#type == InputType::Password || input.is_sensitive() {
                push("autocomplete", Some("new-password".into()));
            }
        }
        InputType::Integer => {
            push("step", Some("1".into()));
            push("min", v.min.map(|n| n.to_string()));
            push("max", v.max.map(|n| n.to_string()));
        }
        InputType::Port => {
            push("step", Some("1".into()));
            push("min", Some(v.min.unwrap_or(PORT_RANGE.0).to_string()));
            push("max", Some(v.max.unwrap_or(PORT_RANGE.1).to_string()));
        }
        InputType::Boolean | InputType::Select => {}
    }
    out
}

fn html_type(input: &InputSpec) -> &'static str {
    match input.r#type {
        InputType::Password => "password",
        _ if input.is_sensitive() => "password",
        InputType::Email => "email",
        InputType::Integer | InputType::Port => "number",
        _ => "text",
    }
}

fn condition(input: &InputSpec) -> (String, String) {
    if input.visible_if.is_empty() {
        return (String::new(), String::new());
    }
    let words: Vec<String> = input
        .visible_if
        .iter()
        .map(|(name, vv)| {
            let vals: Vec<String> = vv.values().iter().map(form_spelling).collect();
            format!("{name} is {}", vals.join(" or "))
        })
        .collect();
    let json: BTreeMap<&str, &[Value]> = input
        .visible_if
        .iter()
        .map(|(k, v)| (k.as_str(), v.values()))
        .collect();
    (
        words.join(" and "),
        serde_json::to_string(&json).expect("values serialize"),
    )
}

/// The fields of a manifest. `submitted` is the posted form (None on first display, which
/// shows defaults); `errors` maps input names to messages.
pub fn fields(
    manifest: &Manifest,
    submitted: Option<&[(String, String)]>,
    errors: &BTreeMap<String, String>,
) -> Vec<FieldView> {
    manifest
        .inputs
        .iter()
        .map(|input| {
            let raw: Option<String> = match submitted {
                None => input.default.as_ref().map(form_spelling),
                Some(form) => super::form_value(form, &input.name).map(str::to_owned),
            };
            let secret = input.is_sensitive();
            let value = if secret {
                String::new()
            } else {
                raw.clone().unwrap_or_default()
            };
            let checked = match (input.r#type, submitted) {
                (InputType::Boolean, None) => input
                    .default
                    .as_ref()
                    .is_some_and(|d| d == &Value::Bool(true)),
                (InputType::Boolean, Some(_)) => raw.as_deref().is_some_and(truthy),
                _ => false,
            };
            let options = input
                .allowed_values()
                .unwrap_or_default()
                .iter()
                .map(|a| {
                    let v = form_spelling(a);
                    OptionView {
                        selected: raw.as_deref() == Some(v.as_str()),
                        value: v,
                    }
                })
                .collect();
            let kind = match input.r#type {
                InputType::Boolean => "checkbox",
                InputType::Select => "select",
                _ => "text",
            };
            let (condition, visible_if) = condition(input);
            FieldView {
                name: input.name.clone(),
                label: input.label.clone(),
                kind,
                html_type: html_type(input),
                value,
                checked,
                options,
                attrs: attrs(input),
                required: input.required,
                required_attr: input.required
                    && input.visible_if.is_empty()
                    && input.r#type != InputType::Boolean,
                help: input.description.clone().unwrap_or_default(),
                condition,
                visible_if,
                error: errors.get(&input.name).cloned().unwrap_or_default(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        serde_json::from_value(serde_json::json!({
            "id": "x", "name": "X", "version": "1", "description": "d", "category": "web",
            "author": "a", "os_requirements": {"family": ["debian"]},
            "timeout_seconds": 60, "idempotent": true,
            "inputs": [
                {"name": "server_name", "type": "string", "label": "Server name", "required": true,
                 "default": "example.com", "validation": {"pattern": "[a-z.]+", "max_length": 100}},
                {"name": "port", "type": "port", "label": "Port", "default": 80},
                {"name": "mode", "type": "select", "label": "Mode", "default": "local",
                 "validation": {"allowed_values": ["local", "external"]}},
                {"name": "db_password", "type": "password", "label": "Password", "required": true,
                 "visible_if": {"mode": "external"}},
                {"name": "tls", "type": "boolean", "label": "TLS", "default": true}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn first_display_shows_defaults_and_constraints() {
        let f = fields(&manifest(), None, &BTreeMap::new());
        assert_eq!(f[0].value, "example.com");
        assert!(f[0].required_attr);
        assert!(f[0].attrs.contains(&Attr {
            name: "pattern",
            value: "[a-z.]+".into()
        }));
        assert_eq!((f[1].html_type, f[1].value.as_str()), ("number", "80"));
        assert!(f[1].attrs.contains(&Attr {
            name: "max",
            value: "65535".into()
        }));
        assert_eq!(f[2].kind, "select");
        assert!(
            f[2].options
                .iter()
                .any(|o| o.value == "local" && o.selected)
        );
        assert!(f[4].checked);
    }

    #[test]
    fn conditional_fields_carry_their_rule_and_are_not_html_required() {
        let f = fields(&manifest(), None, &BTreeMap::new());
        assert_eq!(f[3].visible_if, r#"{"mode":["external"]}"#);
        assert_eq!(f[3].condition, "mode is external");
        assert!(f[3].required && !f[3].required_attr);
    }

    #[test]
    fn submitted_values_are_kept_except_secrets() {
        let form: Vec<(String, String)> = [
            ("server_name", "BAD NAME"),
            ("db_password", "hunter2"),
            ("mode", "external"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let errors = BTreeMap::from([("server_name".to_owned(), "does not match".to_owned())]);
        let f = fields(&manifest(), Some(&form), &errors);
        assert_eq!(f[0].value, "BAD NAME");
        assert_eq!(f[0].error, "does not match");
        assert_eq!(f[3].value, "");
        assert!(!f[4].checked, "an unchecked box sends nothing");
        assert!(
            f[2].options
                .iter()
                .any(|o| o.value == "external" && o.selected)
        );
    }
}
