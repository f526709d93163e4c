//! `validation.pattern`: compiled with the `regex` crate (linear time, no backtracking), and
//! always matched against the whole value, like the HTML `pattern` attribute.

use regex::{Regex, RegexBuilder};

use crate::limits;

/// The pattern as an anchored regex source: `^(?:<pattern>)$`. Served in the JSON Schema so
/// that `pattern` (unanchored in JSON Schema) means the same there as here.
pub fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// Compiles a manifest pattern, or says in a sentence why it cannot be used.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > limits::MAX_PATTERN_BYTES {
        return Err(format!(
            "the pattern is {} bytes long; at most {} are allowed",
            pattern.len(),
            limits::MAX_PATTERN_BYTES
        ));
    }
    RegexBuilder::new(&anchored(pattern))
        .size_limit(limits::MAX_PATTERN_COMPILED_BYTES)
        .nest_limit(64)
        .build()
        .map_err(|error| describe(&error))
}

fn describe(error: &regex::Error) -> String {
    match error {
        regex::Error::CompiledTooBig(_) => {
            "the pattern compiles to a regex that is too large".into()
        }
        other => {
            let text = other.to_string();
            if text.contains("look-around") {
                "the pattern uses lookaround ((?=…), (?!…), (?<=…), (?<!…)), which the regex \
                 engine does not support; rewrite it without"
                    .into()
            } else if text.contains("backreference") {
                "the pattern uses a backreference (\\1), which the regex engine does not support"
                    .into()
            } else {
                // The regex error is multi-line with a caret diagram; the last line says why.
                let reason = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                format!("the pattern does not compile: {}", reason.trim())
            }
        }
    }
}
