//! The table of bundle rules: every manifest (`M…`) and script (`S…`) rule id, once.
//!
//! `docs/installer-contract.md` documents each id with an example; a test checks that every id
//! here appears there. Input-submission rules (`I…`) live in `crate::inputs::rules`.

use super::diagnostic::Severity;

/// A rule: stable id, default severity and a short title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Stable id, never reused.
    pub id: &'static str,
    /// Severity of its findings.
    pub severity: Severity,
    /// One line saying what the rule requires.
    pub title: &'static str,
}

const fn error(id: &'static str, title: &'static str) -> Rule {
    Rule {
        id,
        severity: Severity::Error,
        title,
    }
}

const fn warning(id: &'static str, title: &'static str) -> Rule {
    Rule {
        id,
        severity: Severity::Warning,
        title,
    }
}

// Reading and parsing.
pub const M001_UNREADABLE: Rule = error("M001", "the bundle has a readable manifest.yml");
pub const M002_TOO_LARGE: Rule = error("M002", "manifest.yml is at most 64 KiB");
pub const M003_NOT_TEXT: Rule = error("M003", "manifest.yml is UTF-8 text without NUL bytes");
pub const M004_YAML_SYNTAX: Rule = error("M004", "manifest.yml is one well-formed YAML mapping");
pub const M005_YAML_BUDGET: Rule = error(
    "M005",
    "manifest.yml stays within the YAML budget (aliases, nesting, size)",
);
// Shape (JSON Schema).
pub const M006_UNKNOWN_FIELD: Rule = error("M006", "only known fields are used");
pub const M007_MISSING_FIELD: Rule = error("M007", "every required field is present");
pub const M008_WRONG_TYPE: Rule = error("M008", "every field has the right type");
pub const M009_SCHEMA_VALUE: Rule = error("M009", "every field has an allowed value");
// Identity and texts.
pub const M010_ID_FORMAT: Rule = error("M010", "id matches ^[a-z0-9][a-z0-9-]{0,62}$");
pub const M011_ID_NOT_DIR: Rule = error("M011", "id equals the bundle's directory name");
pub const M012_VERSION_FORMAT: Rule =
    error("M012", "version is a short version string such as 1.2.0");
pub const M013_TEXT: Rule = error(
    "M013",
    "texts are non-empty, not too long and free of control characters",
);
pub const M014_CATEGORY_FORMAT: Rule = error("M014", "category is a lowercase slug such as web");
// Script file.
pub const M015_SCRIPT_NAME: Rule = error(
    "M015",
    "install_script is a plain file name: no '/', no '..', no leading '.'",
);
pub const M016_SCRIPT_MISSING: Rule = error(
    "M016",
    "install_script exists in the bundle and is a regular file",
);
pub const M017_SCRIPT_ESCAPES: Rule = error(
    "M017",
    "install_script is not a symlink leading out of the bundle",
);
pub const M018_SCRIPT_TOO_LARGE: Rule = error("M018", "install_script is at most 1 MiB");
// Runtime.
pub const M020_TIMEOUT_RANGE: Rule = error("M020", "timeout_seconds is from 1 to 86400");
pub const M021_RETRY_RANGE: Rule = error(
    "M021",
    "retry.max_attempts is 1..=10 and retry.backoff_seconds 0..=3600",
);
pub const M022_OS_REQUIREMENTS: Rule = error(
    "M022",
    "os_requirements.family lists os-release ids; min_version is dotted numbers",
);
pub const M023_RESOURCES: Rule = error("M023", "resource requirements are positive numbers");
pub const M024_HOMEPAGE: Rule = error("M024", "homepage is an http(s) URL");
pub const M025_NOT_IDEMPOTENT: Rule = warning(
    "M025",
    "installers should be idempotent (safe to run twice)",
);
// Inputs.
pub const M030_INPUT_NAME: Rule = error("M030", "input names match ^[a-z][a-z0-9_]*$");
pub const M031_INPUT_DUPLICATE: Rule = error("M031", "input names are unique");
pub const M032_INPUT_RESERVED: Rule = error(
    "M032",
    "input names never become a dangerous or runner-owned environment variable",
);
pub const M033_TOO_MANY_INPUTS: Rule = error("M033", "a manifest declares at most 64 inputs");
pub const M034_SELECT_VALUES: Rule =
    error("M034", "a select input has a non-empty allowed_values list");
pub const M035_ALLOWED_VALUE_TYPE: Rule = error(
    "M035",
    "allowed_values have the input's type and are distinct",
);
pub const M036_VALIDATION_KEY: Rule = error("M036", "validation keys apply to the input's type");
pub const M037_PATTERN: Rule = error(
    "M037",
    "pattern compiles with the regex crate (no lookaround, no backreferences)",
);
pub const M038_MIN_MAX: Rule = error("M038", "min <= max and min_length <= max_length");
pub const M039_PORT_RANGE: Rule = error("M039", "port bounds and defaults are within 1..=65535");
pub const M040_DEFAULT_INVALID: Rule = error("M040", "a default passes its own validation");
pub const M041_PASSWORD_SENSITIVE: Rule = error(
    "M041",
    "a password input is sensitive (never sensitive: false)",
);
pub const M042_VISIBLE_IF_UNKNOWN: Rule =
    error("M042", "visible_if refers only to other declared inputs");
pub const M043_VISIBLE_IF_CYCLE: Rule = error("M043", "visible_if has no cycles");
pub const M044_VISIBLE_IF_VALUE: Rule = error(
    "M044",
    "visible_if compares with values the referenced input can take",
);
pub const M045_LENGTH_CAP: Rule = error(
    "M045",
    "max_length and min_length are at most 4096, the input value cap",
);
pub const M046_SECRET_DEFAULT: Rule = warning(
    "M046",
    "a sensitive input has no default (it would sit in the manifest)",
);
pub const M047_REQUIRED_BOOLEAN: Rule = warning(
    "M047",
    "required has no effect on a boolean (an unchecked box is false)",
);

// Script checks (the linter runs them; the catalog does not read scripts beyond the digest).
pub const S001_SHEBANG: Rule = error("S001", "the script starts with a #! line");
pub const S002_STRICT_MODE: Rule = error(
    "S002",
    "the script sets errexit, nounset and pipefail (set -euo pipefail)",
);
pub const S003_READS_STDIN: Rule =
    warning("S003", "the script does not read stdin (it is /dev/null)");
pub const S004_UNKNOWN_VARIABLE: Rule = warning(
    "S004",
    "$UPPERCASE variables are declared inputs, contract variables or assigned in the script",
);
pub const S005_SHELLCHECK: Rule = warning("S005", "shellcheck finds nothing");
pub const S006_NOT_TEXT: Rule = error("S006", "the script is UTF-8 text");
pub const S007_INTERACTIVE_COMMAND: Rule = warning(
    "S007",
    "package commands run non-interactively (apt-get -y)",
);
pub const S008_OPTIONAL_WITHOUT_FALLBACK: Rule = warning(
    "S008",
    "an input that may be unset (optional without default, or visible_if) is read as ${NAME:-}",
);
pub const S009_LINE_ENDINGS: Rule = error("S009", "the script has Unix line endings (no CR)");

/// Every rule, in id order.
pub const ALL: &[Rule] = &[
    M001_UNREADABLE,
    M002_TOO_LARGE,
    M003_NOT_TEXT,
    M004_YAML_SYNTAX,
    M005_YAML_BUDGET,
    M006_UNKNOWN_FIELD,
    M007_MISSING_FIELD,
    M008_WRONG_TYPE,
    M009_SCHEMA_VALUE,
    M010_ID_FORMAT,
    M011_ID_NOT_DIR,
    M012_VERSION_FORMAT,
    M013_TEXT,
    M014_CATEGORY_FORMAT,
    M015_SCRIPT_NAME,
    M016_SCRIPT_MISSING,
    M017_SCRIPT_ESCAPES,
    M018_SCRIPT_TOO_LARGE,
    M020_TIMEOUT_RANGE,
    M021_RETRY_RANGE,
    M022_OS_REQUIREMENTS,
    M023_RESOURCES,
    M024_HOMEPAGE,
    M025_NOT_IDEMPOTENT,
    M030_INPUT_NAME,
    M031_INPUT_DUPLICATE,
    M032_INPUT_RESERVED,
    M033_TOO_MANY_INPUTS,
    M034_SELECT_VALUES,
    M035_ALLOWED_VALUE_TYPE,
    M036_VALIDATION_KEY,
    M037_PATTERN,
    M038_MIN_MAX,
    M039_PORT_RANGE,
    M040_DEFAULT_INVALID,
    M041_PASSWORD_SENSITIVE,
    M042_VISIBLE_IF_UNKNOWN,
    M043_VISIBLE_IF_CYCLE,
    M044_VISIBLE_IF_VALUE,
    M045_LENGTH_CAP,
    M046_SECRET_DEFAULT,
    M047_REQUIRED_BOOLEAN,
    S001_SHEBANG,
    S002_STRICT_MODE,
    S003_READS_STDIN,
    S004_UNKNOWN_VARIABLE,
    S005_SHELLCHECK,
    S006_NOT_TEXT,
    S007_INTERACTIVE_COMMAND,
    S008_OPTIONAL_WITHOUT_FALLBACK,
    S009_LINE_ENDINGS,
];

/// The rule with this id.
pub fn by_id(id: &str) -> Option<&'static Rule> {
    ALL.iter().find(|rule| rule.id == id)
}
