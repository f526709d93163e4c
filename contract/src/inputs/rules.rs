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

/// A submitted name the manifest does not declare (the API only: the form drops its own `_…`
/// fields first). The undeclared name is echoed back, truncated, so the caller sees its typo.
pub const I001_UNKNOWN_FIELD: Rule = rule("I001", "only declared inputs are submitted");
/// A required input that is visible has neither a value nor a default; `null` and an empty form
/// field count as no value. Hidden inputs are never required.
pub const I002_REQUIRED: Rule = rule("I002", "a required visible input has a value");
/// The JSON type does not match the input's type, or a form string does not convert to it.
pub const I003_WRONG_TYPE: Rule = rule("I003", "a value has the input's type");
/// Values end up in environment variables and configuration files, so each must be one line:
/// TAB is refused too. Applies to every text value, a `select`'s text choices included.
pub const I004_CONTROL_CHARACTER: Rule = rule(
    "I004",
    "a value has no control characters (NUL, TAB, CR, LF, DEL, C1, U+2028/9)",
);
/// The cap is [`crate::limits::MAX_INPUT_VALUE_BYTES`], counted in bytes, on every text value.
pub const I005_TOO_LONG: Rule = rule("I005", "a value is at most 4096 bytes");
/// `min_length`/`max_length` count Unicode scalar values, not bytes.
pub const I006_LENGTH: Rule = rule("I006", "a text value respects min_length and max_length");
/// An integer outside the manifest's `min`/`max`, or a port outside 1..=65535.
pub const I007_RANGE: Rule = rule("I007", "a number respects min and max (ports 1..=65535)");
/// The manifest's `validation.pattern` must match the whole value; the message quotes the
/// input's description, never the value (it may be a secret).
pub const I008_PATTERN: Rule = rule("I008", "a text value matches the whole pattern");
/// The value is not in the manifest's `allowed_values`, the choices of a `select`.
pub const I009_NOT_ALLOWED: Rule = rule("I009", "a value is one of allowed_values");
/// An `email` input's value is not an address by the `validator` crate's rules.
pub const I010_EMAIL: Rule = rule("I010", "an email input holds an e-mail address");
/// A safety net: the compiled input schema rejects a value for a reason none of the hand
/// checks above names. The hand checks run first and normally catch everything.
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
