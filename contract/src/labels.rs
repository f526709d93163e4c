//! Server labels (`env=prod`, `region=eu`) and the selectors that pick servers by them.
//!
//! Labels are plain data a person types, so their rules are strict and stated once here:
//! a key is 1–63 characters of `a-z 0-9 . _ / -` starting and ending with a letter or digit;
//! a value is 0–63 characters of `A-Z a-z 0-9 . _ -`. Nothing that a shell, a glob or a
//! terminal would read as something else (`*`, `?`, `[`, spaces, control characters) gets in.
//!
//! A selector is a set of requirements that must all hold: `key=value`, or
//! `key in (a,b)`. Written as text: `env=prod, region in (eu,us)`; as JSON:
//! `{"env": "prod", "region": ["eu", "us"]}`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest label key and value.
pub const MAX_LABEL_CHARS: usize = 63;
/// Most labels one server carries.
pub const MAX_LABELS: usize = 32;
/// Most values one `key in (…)` requirement lists.
pub const MAX_IN_VALUES: usize = 32;

/// A label key as a regular expression (for schemas; [`check_key`] is the same rule).
pub const KEY_PATTERN: &str = "^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$";
/// A label value as a regular expression (for schemas; [`check_value`] is the same rule).
pub const VALUE_PATTERN: &str = "^[A-Za-z0-9._-]{0,63}$";

/// A server's labels, by key.
pub type Labels = BTreeMap<String, String>;

/// Why a label, a set of labels or a selector was refused; the message names the part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct LabelError {
    /// The key (or `labels` / `selector` for the whole) that broke a rule.
    pub field: String,
    /// The rule, for people.
    pub message: String,
}

fn error(field: impl Into<String>, message: impl Into<String>) -> LabelError {
    LabelError {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks a label key.
pub fn check_key(key: &str) -> Result<(), LabelError> {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok = !key.is_empty()
        && key.len() <= MAX_LABEL_CHARS
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._/-".contains(&b))
        && edge(key.chars().next())
        && edge(key.chars().last());
    if ok {
        Ok(())
    } else {
        Err(error(
            shown(key),
            format!(
                "a label key is 1 to {MAX_LABEL_CHARS} characters of a-z 0-9 . _ / - that \
                 start and end with a letter or digit"
            ),
        ))
    }
}

/// Checks a label value of key `key`.
pub fn check_value(key: &str, value: &str) -> Result<(), LabelError> {
    let ok = value.len() <= MAX_LABEL_CHARS
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(error(
            shown(key),
            format!(
                "value {:?}: a label value is 0 to {MAX_LABEL_CHARS} characters of \
                 A-Z a-z 0-9 . _ - (no spaces, globs or control characters)",
                value.chars().take(80).collect::<String>()
            ),
        ))
    }
}

/// A key as it may be shown in an error: control characters escaped, length bounded.
fn shown(key: &str) -> String {
    key.chars().take(80).flat_map(char::escape_debug).collect()
}

/// Checks a whole set of labels.
pub fn check_labels(labels: &Labels) -> Result<(), LabelError> {
    if labels.len() > MAX_LABELS {
        return Err(error(
            "labels",
            format!("a server carries at most {MAX_LABELS} labels"),
        ));
    }
    for (k, v) in labels {
        check_key(k)?;
        check_value(k, v)?;
    }
    Ok(())
}

/// Parses `key=value` (as the CLI and forms take it).
pub fn parse_assignment(text: &str) -> Result<(String, String), LabelError> {
    let Some((k, v)) = text.split_once('=') else {
        return Err(error(shown(text), "write a label as key=value"));
    };
    let (k, v) = (k.trim(), v.trim());
    check_key(k)?;
    check_value(k, v)?;
    Ok((k.to_owned(), v.to_owned()))
}

/// Parses labels written `key=value, key=value` (commas or new lines between them).
pub fn parse_labels(text: &str) -> Result<Labels, LabelError> {
    let mut labels = Labels::new();
    for part in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (k, v) = parse_assignment(part)?;
        if labels.insert(k.clone(), v).is_some() {
            return Err(error(k, "the key is given twice"));
        }
    }
    check_labels(&labels)?;
    Ok(labels)
}

/// Labels as text, the way [`parse_labels`] reads them.
pub fn labels_text(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one key of a selector asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Requirement {
    /// `key=value`.
    Equals(String),
    /// `key in (a,b)`.
    In(BTreeSet<String>),
}

impl Requirement {
    fn admits(&self, value: &str) -> bool {
        match self {
            Requirement::Equals(v) => v == value,
            Requirement::In(vs) => vs.contains(value),
        }
    }
}

/// Requirements on labels that must all hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LabelSelector(pub BTreeMap<String, Requirement>);

impl LabelSelector {
    /// Checks every key and value; an empty selector (which would pick every server by
    /// accident) is refused.
    pub fn check(&self) -> Result<(), LabelError> {
        if self.0.is_empty() {
            return Err(error(
                "selector",
                "name at least one label; to pick every server, list them by id",
            ));
        }
        if self.0.len() > MAX_LABELS {
            return Err(error(
                "selector",
                format!("a selector has at most {MAX_LABELS} requirements"),
            ));
        }
        for (k, r) in &self.0 {
            check_key(k)?;
            match r {
                Requirement::Equals(v) => check_value(k, v)?,
                Requirement::In(vs) => {
                    if vs.is_empty() || vs.len() > MAX_IN_VALUES {
                        return Err(error(
                            shown(k),
                            format!("`in` lists 1 to {MAX_IN_VALUES} values"),
                        ));
                    }
                    for v in vs {
                        check_value(k, v)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a server with `labels` is picked.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0
            .iter()
            .all(|(k, r)| labels.get(k).is_some_and(|v| r.admits(v)))
    }

    /// Parses `env=prod, region in (eu,us)`.
    pub fn parse(text: &str) -> Result<Self, LabelError> {
        let mut reqs = BTreeMap::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let (key, req, after) = parse_requirement(rest)?;
            if reqs.insert(key.clone(), req).is_some() {
                return Err(error(key, "the key is given twice"));
            }
            rest = after.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
            } else if !rest.is_empty() {
                return Err(error(
                    "selector",
                    format!("expected `,` before {:?}", head(rest)),
                ));
            }
        }
        let sel = Self(reqs);
        sel.check()?;
        Ok(sel)
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, r)| match r {
                Requirement::Equals(v) => format!("{k}={v}"),
                Requirement::In(vs) => {
                    format!(
                        "{k} in ({})",
                        vs.iter().cloned().collect::<Vec<_>>().join(",")
                    )
                }
            })
            .collect();
        f.write_str(&parts.join(", "))
    }
}

fn head(s: &str) -> String {
    s.chars().take(20).collect()
}

/// One `key=value` or `key in (…)` from the front of `text`, and what follows it.
fn parse_requirement(text: &str) -> Result<(String, Requirement, &str), LabelError> {
    let key_end = text
        .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
        .unwrap_or(text.len());
    let key = &text[..key_end];
    check_key(key)?;
    let rest = text[key_end..].trim_start();
    if let Some(after) = rest.strip_prefix('=') {
        let after = after.trim_start();
        let end = after.find(',').unwrap_or(after.len());
        let value = after[..end].trim_end();
        check_value(key, value)?;
        return Ok((
            key.to_owned(),
            Requirement::Equals(value.to_owned()),
            &after[end..],
        ));
    }
    let Some(after) = rest.strip_prefix("in") else {
        return Err(error(shown(key), "write key=value or key in (a,b)"));
    };
    let after = after.trim_start();
    let Some(inner) = after.strip_prefix('(') else {
        return Err(error(
            shown(key),
            "`in` takes a list in parentheses: key in (a,b)",
        ));
    };
    let Some(close) = inner.find(')') else {
        return Err(error(
            shown(key),
            "the list after `in` is not closed with `)`",
        ));
    };
    let values: BTreeSet<String> = inner[..close]
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    for v in &values {
        check_value(key, v)?;
    }
    Ok((key.to_owned(), Requirement::In(values), &inner[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn keys_and_values_follow_the_rules() {
        for good in ["env", "a", "team.io/role", "x-1_2"] {
            check_key(good).unwrap();
        }
        for bad in [
            "",
            "Env",
            "-env",
            "env-",
            "e nv",
            "e*",
            "e?",
            "e\u{7}",
            &"k".repeat(64),
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        for good in ["", "prod", "EU-1.2_b"] {
            check_value("k", good).unwrap();
        }
        for bad in ["pro*", "a b", "x\ny", "[a]", "é", &"v".repeat(64)] {
            let e = check_value("k", bad).unwrap_err();
            assert_eq!(e.field, "k");
        }
    }

    #[test]
    fn the_patterns_say_what_the_checks_do() {
        let key = regex::Regex::new(KEY_PATTERN).unwrap();
        let value = regex::Regex::new(VALUE_PATTERN).unwrap();
        for k in [
            "env",
            "a",
            "a1",
            "team.io/role",
            "-a",
            "a-",
            "A",
            "",
            "a b",
            &"k".repeat(63),
            &"k".repeat(64),
        ] {
            assert_eq!(key.is_match(k), check_key(k).is_ok(), "{k:?}");
        }
        for v in [
            "",
            "prod",
            "EU-1",
            "a b",
            "*",
            "é",
            &"v".repeat(63),
            &"v".repeat(64),
        ] {
            assert_eq!(value.is_match(v), check_value("k", v).is_ok(), "{v:?}");
        }
    }

    #[test]
    fn an_error_escapes_control_characters_in_the_key() {
        let e = check_key("a\u{1b}[31m").unwrap_err();
        assert!(!e.field.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn labels_parse_from_text_and_back() {
        let l = parse_labels("env=prod, region=eu\nrole=web").unwrap();
        assert_eq!(
            l,
            labels(&[("env", "prod"), ("region", "eu"), ("role", "web")])
        );
        assert_eq!(parse_labels(&labels_text(&l)).unwrap(), l);
        assert!(parse_labels("env=prod, env=dev").is_err());
        assert!(parse_labels("env").is_err());
        assert!(parse_labels("").unwrap().is_empty());
    }

    #[test]
    fn selectors_parse_and_match() {
        let s = LabelSelector::parse("env=prod, region in (eu, us)").unwrap();
        assert!(s.matches(&labels(&[("env", "prod"), ("region", "us"), ("x", "y")])));
        assert!(!s.matches(&labels(&[("env", "prod"), ("region", "asia")])));
        assert!(!s.matches(&labels(&[("env", "prod")])));
        assert_eq!(LabelSelector::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn selectors_read_json_of_strings_and_lists() {
        let s: LabelSelector =
            serde_json::from_str(r#"{"env": "prod", "region": ["eu", "us"]}"#).unwrap();
        s.check().unwrap();
        assert_eq!(
            s,
            LabelSelector::parse("region in (us,eu),env=prod").unwrap()
        );
    }

    #[test]
    fn bad_selectors_are_refused_with_the_part_named() {
        for (text, field) in [
            ("", "selector"),
            ("env=pr*d", "env"),
            ("env in eu", "env"),
            ("env in (eu", "env"),
            ("env in ()", "env"),
            ("env=prod region=eu", "env"),
            ("env in (eu) region=eu", "selector"),
            ("Env=prod", "Env"),
        ] {
            let e = LabelSelector::parse(text).unwrap_err();
            assert_eq!(e.field, field, "{text:?}: {e}");
        }
        let empty: LabelSelector = serde_json::from_str("{}").unwrap();
        assert!(empty.check().is_err());
    }
}
