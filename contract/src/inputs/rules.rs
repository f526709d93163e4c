//! The table of input-submission rules (`I…`): every field error carries one of these ids.

use crate::manifest::Rule;
use crate::manifest::Severity::Error;

const fn rule(id: &'static str, title: &'static str) -> Rule {
    Rule {
        id,
        severity: Error,
        title,
    }
}

pub const I001_UNKNOWN_FIELD: Rule = rule("I001", "only declared inputs are submitted");
pub const I002_REQUIRED: Rule = rule("I002", "a required visible input has a value");
pub const I003_WRONG_TYPE: Rule = rule("I003", "a value has the input's type");
pub const I004_CONTROL_CHARACTER: Rule = rule(
    "I004",
    "a value has no control characters (NUL, TAB, CR, LF, DEL, C1, U+2028/9)",
);
pub const I005_TOO_LONG: Rule = rule("I005", "a value is at most 4096 bytes");
pub const I006_LENGTH: Rule = rule("I006", "a text value respects min_length and max_length");
pub const I007_RANGE: Rule = rule("I007", "a number respects min and max (ports 1..=65535)");
pub const I008_PATTERN: Rule = rule("I008", "a text value matches the whole pattern");
pub const I009_NOT_ALLOWED: Rule = rule("I009", "a value is one of allowed_values");
pub const I010_EMAIL: Rule = rule("I010", "an email input holds an e-mail address");
pub const I011_SCHEMA: Rule = rule("I011", "the submission satisfies the app's input schema");

/// Every input rule, in id order.
pub const ALL: &[Rule] = &[
    I001_UNKNOWN_FIELD,
    I002_REQUIRED,
    I003_WRONG_TYPE,
    I004_CONTROL_CHARACTER,
    I005_TOO_LONG,
    I006_LENGTH,
    I007_RANGE,
    I008_PATTERN,
    I009_NOT_ALLOWED,
    I010_EMAIL,
    I011_SCHEMA,
];
