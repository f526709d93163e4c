//! Checks on `inputs` that the JSON Schema cannot express: names, validation keys, defaults,
//! and the `visible_if` graph.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use regex::Regex;
use serde_json::Value;

use super::diagnostic::Diagnostic;
use super::model::{InputSpec, InputType, Manifest, Validation};
use super::rules;
use crate::inputs::{PORT_RANGE, check_value, compile_pattern, reserved_reason};

/// Indexes of the inputs whose YAML says `sensitive: false` outright (the model cannot tell
/// that from an absent key).
pub(super) fn written_not_sensitive(document: &Value) -> BTreeSet<usize> {
    document
        .get("inputs")
        .and_then(Value::as_array)
        .map(|inputs| {
            inputs
                .iter()
                .enumerate()
                .filter(|(_, input)| input.get("sensitive") == Some(&Value::Bool(false)))
                .map(|(index, _)| index)
                .collect()
        })
        .unwrap_or_default()
}

/// Every input check. `written_not_sensitive` comes from [`written_not_sensitive`].
pub(super) fn check_inputs(
    manifest: &Manifest,
    written_not_sensitive: &BTreeSet<usize>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (index, input) in manifest.inputs.iter().enumerate() {
        let at = |field: &str| format!("inputs[{index}].{field}");
        if !seen.insert(input.name.as_str()) {
            out.push(Diagnostic::new(
                &rules::M031_INPUT_DUPLICATE,
                at("name"),
                format!("the input name '{}' is used twice", input.name),
            ));
        }
        if let Some(reason) = reserved_reason(&input.name) {
            out.push(Diagnostic::new(
                &rules::M032_INPUT_RESERVED,
                at("name"),
                format!(
                    "the input name '{}' is reserved: {reason}; choose another name",
                    input.name
                ),
            ));
        }
        let explicit_not_sensitive = written_not_sensitive.contains(&index);
        if input.r#type == InputType::Password && explicit_not_sensitive {
            out.push(Diagnostic::new(
                &rules::M041_PASSWORD_SENSITIVE,
                at("sensitive"),
                "a password input is always sensitive; remove 'sensitive: false'",
            ));
        }
        if input.is_sensitive() && input.default.is_some() {
            out.push(Diagnostic::new(
                &rules::M046_SECRET_DEFAULT,
                at("default"),
                "a sensitive input has a default, so the secret sits in the manifest for anyone \
                 to read; let the user enter it",
            ));
        }
        if input.r#type == InputType::Boolean && input.required {
            out.push(Diagnostic::new(
                &rules::M047_REQUIRED_BOOLEAN,
                at("required"),
                "required has no effect on a boolean: an unchecked box is false",
            ));
        }
        let (valid_rules, pattern) = check_validation(input, &at, &mut out);
        if valid_rules {
            check_default(input, pattern.as_ref(), &at, &mut out);
        }
    }
    check_visible_if(manifest, &mut out);
    out
}

/// Validation keys, select values, pattern, bounds. Returns whether the default can be
/// checked, and the compiled pattern (compiled once: it is the costliest check).
fn check_validation(
    input: &InputSpec,
    at: &dyn Fn(&str) -> String,
    out: &mut Vec<Diagnostic>,
) -> (bool, Option<Regex>) {
    let before = out.len();
    let validation = input.validation.clone().unwrap_or_default();
    let kind = input.r#type;
    if kind == InputType::Select && validation.allowed_values.as_ref().is_none_or(Vec::is_empty) {
        out.push(Diagnostic::new(
            &rules::M034_SELECT_VALUES,
            at("validation.allowed_values"),
            "a select input needs validation.allowed_values listing its choices",
        ));
    }
    for key in inapplicable_keys(kind, &validation) {
        out.push(Diagnostic::new(
            &rules::M036_VALIDATION_KEY,
            at(&format!("validation.{key}")),
            format!(
                "validation.{key} does not apply to a {} input",
                kind.as_str()
            ),
        ));
    }
    if let Some(allowed) = &validation.allowed_values {
        for (i, value) in allowed.iter().enumerate() {
            if !value_fits_type(kind, value) {
                out.push(Diagnostic::new(
                    &rules::M035_ALLOWED_VALUE_TYPE,
                    at(&format!("validation.allowed_values[{i}]")),
                    format!("{value} is not a {} value", kind.as_str()),
                ));
            } else if allowed[..i].contains(value) {
                out.push(Diagnostic::new(
                    &rules::M035_ALLOWED_VALUE_TYPE,
                    at(&format!("validation.allowed_values[{i}]")),
                    format!("{value} is listed twice"),
                ));
            }
        }
    }
    let mut compiled = None;
    if let Some(pattern) = &validation.pattern {
        match compile_pattern_once(pattern) {
            Ok(regex) => compiled = Some(regex),
            Err(reason) => {
                out.push(Diagnostic::new(
                    &rules::M037_PATTERN,
                    at("validation.pattern"),
                    reason,
                ));
            }
        }
    }
    if let (Some(min), Some(max)) = (validation.min, validation.max)
        && min > max
    {
        out.push(Diagnostic::new(
            &rules::M038_MIN_MAX,
            at("validation.min"),
            format!("min ({min}) is greater than max ({max})"),
        ));
    }
    if let (Some(min), Some(max)) = (validation.min_length, validation.max_length)
        && min > max
    {
        out.push(Diagnostic::new(
            &rules::M038_MIN_MAX,
            at("validation.min_length"),
            format!("min_length ({min}) is greater than max_length ({max})"),
        ));
    }
    if kind == InputType::Port {
        for (key, bound) in [("min", validation.min), ("max", validation.max)] {
            if let Some(bound) = bound.filter(|b| !(PORT_RANGE.0..=PORT_RANGE.1).contains(b)) {
                out.push(Diagnostic::new(
                    &rules::M039_PORT_RANGE,
                    at(&format!("validation.{key}")),
                    format!("{bound} is not a port number; ports are 1 to 65535"),
                ));
            }
        }
    }
    (out.len() == before, compiled)
}

/// [`compile_pattern`], remembered per thread for the last few dozen patterns. Compiling is
/// the costliest single check (a small pattern becomes a full DFA), and a catalog repeats
/// its patterns (host names, e-mail addresses, versions) across bundles. The same text
/// always compiles to the same outcome, so no check is skipped; the limits stay those of
/// `compile_pattern`, and at most `KEEP` compiled patterns stay in memory per thread.
fn compile_pattern_once(pattern: &str) -> Result<Regex, String> {
    const KEEP: usize = 32;
    thread_local! {
        static COMPILED: RefCell<HashMap<String, Result<Regex, String>>> =
            RefCell::new(HashMap::new());
    }
    COMPILED.with(|compiled| {
        if let Some(known) = compiled.borrow().get(pattern) {
            return known.clone();
        }
        let outcome = compile_pattern(pattern);
        let mut compiled = compiled.borrow_mut();
        if compiled.len() >= KEEP {
            compiled.clear();
        }
        compiled.insert(pattern.to_owned(), outcome.clone());
        outcome
    })
}

fn inapplicable_keys(kind: InputType, v: &Validation) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if !kind.is_text() {
        if v.pattern.is_some() {
            keys.push("pattern");
        }
        if v.min_length.is_some() {
            keys.push("min_length");
        }
        if v.max_length.is_some() {
            keys.push("max_length");
        }
    }
    if !kind.is_integer() {
        if v.min.is_some() {
            keys.push("min");
        }
        if v.max.is_some() {
            keys.push("max");
        }
    }
    if kind == InputType::Boolean && v.allowed_values.is_some() {
        keys.push("allowed_values");
    }
    keys
}

/// Whether a literal (allowed value, `visible_if` value) can be a value of an input of `kind`.
fn value_fits_type(kind: InputType, value: &Value) -> bool {
    match kind {
        InputType::String | InputType::Password | InputType::Email => value.is_string(),
        InputType::Integer => value.is_i64(),
        InputType::Port => value
            .as_i64()
            .is_some_and(|p| (PORT_RANGE.0..=PORT_RANGE.1).contains(&p)),
        InputType::Boolean => value.is_boolean(),
        InputType::Select => value.is_string() || value.is_i64() || value.is_boolean(),
    }
}

fn check_default(
    input: &InputSpec,
    pattern: Option<&Regex>,
    at: &dyn Fn(&str) -> String,
    out: &mut Vec<Diagnostic>,
) {
    let Some(default) = &input.default else {
        return;
    };
    if input.r#type == InputType::Port
        && default
            .as_i64()
            .is_some_and(|p| !(PORT_RANGE.0..=PORT_RANGE.1).contains(&p))
    {
        out.push(Diagnostic::new(
            &rules::M039_PORT_RANGE,
            at("default"),
            format!("{default} is not a port number; ports are 1 to 65535"),
        ));
        return;
    }
    if let Err((rule, message)) = check_value(input, default, pattern) {
        out.push(Diagnostic::new(
            &rules::M040_DEFAULT_INVALID,
            at("default"),
            format!(
                "the default fails the input's own validation ({}): it {message}",
                rule.id
            ),
        ));
    }
}

fn check_visible_if(manifest: &Manifest, out: &mut Vec<Diagnostic>) {
    let by_name: BTreeMap<&str, &InputSpec> = manifest
        .inputs
        .iter()
        .map(|i| (i.name.as_str(), i))
        .collect();
    for (index, input) in manifest.inputs.iter().enumerate() {
        for (target, accepted) in &input.visible_if {
            let path = format!("inputs[{index}].visible_if.{target}");
            let Some(controller) = by_name.get(target.as_str()) else {
                out.push(Diagnostic::new(
                    &rules::M042_VISIBLE_IF_UNKNOWN,
                    path,
                    format!("visible_if refers to '{target}', which is not a declared input"),
                ));
                continue;
            };
            if target == &input.name {
                out.push(Diagnostic::new(
                    &rules::M042_VISIBLE_IF_UNKNOWN,
                    path,
                    "an input cannot depend on itself",
                ));
                continue;
            }
            if controller.is_sensitive() {
                out.push(Diagnostic::new(
                    &rules::M044_VISIBLE_IF_VALUE,
                    path,
                    format!("'{target}' is sensitive; visibility cannot depend on a secret"),
                ));
                continue;
            }
            for value in accepted.values() {
                let fits = value_fits_type(controller.r#type, value)
                    && controller
                        .allowed_values()
                        .is_none_or(|allowed| allowed.contains(value));
                if !fits {
                    out.push(Diagnostic::new(
                        &rules::M044_VISIBLE_IF_VALUE,
                        path.clone(),
                        format!(
                            "'{target}' is a {} input and can never be {value}",
                            controller.r#type.as_str()
                        ),
                    ));
                }
            }
        }
    }
    if let Some(cycle) = find_cycle(manifest) {
        let first = manifest
            .inputs
            .iter()
            .position(|i| i.name == cycle[0])
            .unwrap_or(0);
        out.push(Diagnostic::new(
            &rules::M043_VISIBLE_IF_CYCLE,
            format!("inputs[{first}].visible_if"),
            format!("visible_if forms a cycle: {}", cycle.join(" -> ")),
        ));
    }
}

/// One `visible_if` cycle (names, first repeated at the end), if any. Self-references are
/// reported by M042 and skipped here.
fn find_cycle(manifest: &Manifest) -> Option<Vec<String>> {
    let edges: BTreeMap<&str, Vec<&str>> = manifest
        .inputs
        .iter()
        .map(|i| {
            let targets = i
                .visible_if
                .keys()
                .map(String::as_str)
                .filter(|t| *t != i.name)
                .collect();
            (i.name.as_str(), targets)
        })
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done. Iterative DFS: no recursion on author input.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    for start in edges.keys() {
        if state.get(start).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        state.insert(start, 1);
        while let Some(&(node, next)) = stack.last() {
            let targets = edges.get(node).map(Vec::as_slice).unwrap_or_default();
            if let Some(&target) = targets.get(next) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                match state.get(target).copied().unwrap_or(0) {
                    0 if edges.contains_key(target) => {
                        state.insert(target, 1);
                        stack.push((target, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            stack[from..].iter().map(|(n, _)| (*n).to_owned()).collect();
                        cycle.push(target.to_owned());
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                state.insert(node, 2);
                stack.pop();
            }
        }
    }
    None
}
