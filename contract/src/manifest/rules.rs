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
/// The bundle path is not a directory, or its `manifest.yml` is missing or cannot be read;
/// the catalog also reports an unreadable bundle directory under this id.
pub const M001_UNREADABLE: Rule = error("M001", "the bundle has a readable manifest.yml");
/// Checked on the file's metadata and again while reading, before any parsing, so a huge
/// file costs nothing; the cap is [`crate::limits::MAX_MANIFEST_BYTES`].
pub const M002_TOO_LARGE: Rule = error("M002", "manifest.yml is at most 64 KiB");
/// Catches a binary copied by mistake before the YAML parser sees it.
pub const M003_NOT_TEXT: Rule = error("M003", "manifest.yml is UTF-8 text without NUL bytes");
/// Syntax errors, several documents, a top level that is not a mapping and duplicate keys
/// (a duplicate would silently override the first value).
pub const M004_YAML_SYNTAX: Rule = error("M004", "manifest.yml is one well-formed YAML mapping");
/// Stops alias bombs ("billion laughs") and deep nesting in well under a second; the
/// budget is the `YAML_MAX_*` caps of [`crate::limits`].
pub const M005_YAML_BUDGET: Rule = error(
    "M005",
    "manifest.yml stays within the YAML budget (aliases, nesting, size)",
);
// Shape (JSON Schema).
/// A field the manifest schema does not know, usually a typo (`timout_seconds`) that would
/// otherwise be ignored.
pub const M006_UNKNOWN_FIELD: Rule = error("M006", "only known fields are used");
/// A field the manifest schema requires is absent.
pub const M007_MISSING_FIELD: Rule = error("M007", "every required field is present");
/// A field has the wrong JSON type, e.g. an unquoted `version: 1.0` read as a number.
pub const M008_WRONG_TYPE: Rule = error("M008", "every field has the right type");
/// A value outside what the schema allows (an unknown input `type`); also the finding when
/// the document passes the schema but does not fit the [`super::Manifest`] model.
pub const M009_SCHEMA_VALUE: Rule = error("M009", "every field has an allowed value");
// Identity and texts.
/// The same [`crate::ids::ID_PATTERN`] as agent ids: the id names the bundle's directory and
/// appears in URLs (`/apps/<id>`) and in every job envelope.
pub const M010_ID_FORMAT: Rule = error("M010", "id matches ^[a-z0-9][a-z0-9-]{0,62}$");
/// Jobs name a bundle by id, and the runner finds its local copy by that id, so the two
/// must agree.
pub const M011_ID_NOT_DIR: Rule = error("M011", "id equals the bundle's directory name");
/// A letter or digit, then letters, digits and `. + ~ _ -`: no spaces.
pub const M012_VERSION_FORMAT: Rule =
    error("M012", "version is a short version string such as 1.2.0");
/// Applies to `name`, `author`, `version`, `description`, `post_install_message` and each
/// input's `label` and `description`; newlines and tabs only in the multi-line ones. Control
/// characters would reach terminals and pages.
pub const M013_TEXT: Rule = error(
    "M013",
    "texts are non-empty, not too long and free of control characters",
);
/// The category is a filter value in the catalog's URL (`/?category=web`), so it is a slug,
/// not a label.
pub const M014_CATEGORY_FORMAT: Rule = error("M014", "category is a lowercase slug such as web");
// Script file.
/// No `\` either: the name is joined to the bundle directory and must not leave it.
pub const M015_SCRIPT_NAME: Rule = error(
    "M015",
    "install_script and each lifecycle script is a plain file name: no '/', no '..', no leading '.'",
);
/// The script `install_script` (or `upgrade_script`, `uninstall_script`, `backup_script`,
/// `restore_script`) names is absent, a dangling symlink, or not a regular file.
pub const M016_SCRIPT_MISSING: Rule = error(
    "M016",
    "every script the manifest names exists in the bundle and is a regular file",
);
/// A symlink to another file inside the bundle is fine; one leading out would let the
/// digest and the runner read a file the bundle does not own.
pub const M017_SCRIPT_ESCAPES: Rule = error(
    "M017",
    "no script the manifest names is a symlink leading out of the bundle",
);
/// The linter and the digest read the script whole; the cap is
/// [`crate::limits::MAX_SCRIPT_BYTES`].
pub const M018_SCRIPT_TOO_LARGE: Rule = error("M018", "every script is at most 1 MiB");
// Runtime.
/// Bounds are [`crate::limits::MIN_TIMEOUT_SECONDS`] and
/// [`crate::limits::MAX_TIMEOUT_SECONDS`] (24 h).
pub const M020_TIMEOUT_RANGE: Rule = error("M020", "timeout_seconds is from 1 to 86400");
/// Bounds are [`crate::limits::MAX_RETRY_ATTEMPTS`] and
/// [`crate::limits::MAX_RETRY_BACKOFF_SECONDS`]; the runner applies them in
/// [`crate::exit_policy`].
pub const M021_RETRY_RANGE: Rule = error(
    "M021",
    "retry.max_attempts is 1..=10 and retry.backoff_seconds 0..=3600",
);
/// `family` needs at least one lowercase id (`debian`); `min_version` such as `12`, not
/// `bookworm`, since [`crate::host::version_at_least`] compares numbers.
pub const M022_OS_REQUIREMENTS: Rule = error(
    "M022",
    "os_requirements.family lists os-release ids; min_version is dotted numbers",
);
/// `min_ram_mb` and `min_disk_mb` are whole MiB above zero, compared with the heartbeat's
/// [`crate::host::HostFacts`].
pub const M023_RESOURCES: Rule = error("M023", "resource requirements are positive numbers");
/// The homepage becomes a link in the panel; any other scheme (`javascript:`) is refused.
pub const M024_HOMEPAGE: Rule = error("M024", "homepage is an http(s) URL");
/// A warning: a non-idempotent job that the runner lost in a crash is marked `interrupted`
/// for a person instead of being run again.
pub const M025_NOT_IDEMPOTENT: Rule = warning(
    "M025",
    "installers should be idempotent (safe to run twice)",
);
// Lifecycle.
/// A restore reads what the backup wrote; a restore without a backup has nothing to read,
/// and a safe upgrade needs both to roll back from a backup.
pub const M026_RESTORE_WITHOUT_BACKUP: Rule =
    error("M026", "restore_script and backup_script come together");
/// The command runs under bash in the script's sandbox; bounds are
/// [`crate::limits::MAX_HEALTH_COMMAND_BYTES`] and
/// [`crate::limits::MAX_HEALTH_TIMEOUT_SECONDS`].
pub const M027_HEALTH_CHECK: Rule = error(
    "M027",
    "health_check.command is one line of at most 1024 bytes; timeout_seconds is 1..=600",
);
/// One file for two purposes would run the install script as an uninstall (or the reverse).
pub const M028_SCRIPT_REUSED: Rule = error(
    "M028",
    "each lifecycle script is its own file, not install_script or another lifecycle script",
);
// Inputs.
/// The name becomes the UPPERCASED environment variable the script reads.
pub const M030_INPUT_NAME: Rule = error("M030", "input names match ^[a-z][a-z0-9_]*$");
/// Two inputs with one name would fight over one environment variable.
pub const M031_INPUT_DUPLICATE: Rule = error("M031", "input names are unique");
/// Compared on the UPPERCASED name against the contract variables and the shell, loader
/// and interpreter variables of [`crate::inputs::reserved_reason`]: an input must not change
/// how the script runs.
pub const M032_INPUT_RESERVED: Rule = error(
    "M032",
    "input names never become a dangerous or runner-owned environment variable",
);
/// The cap is [`crate::limits::MAX_INPUTS`].
pub const M033_TOO_MANY_INPUTS: Rule = error("M033", "a manifest declares at most 64 inputs");
/// A select without `validation.allowed_values` offers nothing to choose.
pub const M034_SELECT_VALUES: Rule =
    error("M034", "a select input has a non-empty allowed_values list");
/// An allowed value of another type could never be submitted; a duplicate would show
/// twice in the form.
pub const M035_ALLOWED_VALUE_TYPE: Rule = error(
    "M035",
    "allowed_values have the input's type and are distinct",
);
/// `pattern`, `min_length`, `max_length` apply to text types; `min`, `max` to `integer`
/// and `port`; `allowed_values` to anything but `boolean`. A key on the wrong type would be
/// silently ignored.
pub const M036_VALIDATION_KEY: Rule = error("M036", "validation keys apply to the input's type");
/// Also at most [`crate::limits::MAX_PATTERN_BYTES`] long and within
/// [`crate::limits::MAX_PATTERN_COMPILED_BYTES`] compiled: the panel and the runner must
/// both compile it, in bounded time.
pub const M037_PATTERN: Rule = error(
    "M037",
    "pattern compiles with the regex crate (no lookaround, no backreferences)",
);
/// Reversed bounds would refuse every value.
pub const M038_MIN_MAX: Rule = error("M038", "min <= max and min_length <= max_length");
/// Bounds or a default outside 1..=65535 could never be met by a `port` input.
pub const M039_PORT_RANGE: Rule = error("M039", "port bounds and defaults are within 1..=65535");
/// The default is checked like a submitted value (type, pattern, lengths, bounds,
/// `allowed_values`, e-mail form, control characters), so it can never fail at enqueue.
pub const M040_DEFAULT_INVALID: Rule = error("M040", "a default passes its own validation");
/// A password is always masked, sealed and never shown again; `sensitive: false` cannot
/// turn that off.
pub const M041_PASSWORD_SENSITIVE: Rule = error(
    "M041",
    "a password input is sensitive (never sensitive: false)",
);
/// A `visible_if` naming an undeclared input (or the input itself) could never hold.
pub const M042_VISIBLE_IF_UNKNOWN: Rule =
    error("M042", "visible_if refers only to other declared inputs");
/// Inputs that show each other in a loop have no defined visibility.
pub const M043_VISIBLE_IF_CYCLE: Rule = error("M043", "visible_if has no cycles");
/// The right type, one of a select's `allowed_values`; and never a sensitive input, as
/// the form would reveal the secret by what it shows.
pub const M044_VISIBLE_IF_VALUE: Rule = error(
    "M044",
    "visible_if compares with values the referenced input can take",
);
/// No length bound above [`crate::limits::MAX_INPUT_VALUE_BYTES`], the cap every value
/// meets anyway (rule I005).
pub const M045_LENGTH_CAP: Rule = error(
    "M045",
    "max_length and min_length are at most 4096, the input value cap",
);
/// A warning: the secret would sit in the manifest for anyone to read, and the served
/// schema never shows it.
pub const M046_SECRET_DEFAULT: Rule = warning(
    "M046",
    "a sensitive input has no default (it would sit in the manifest)",
);
/// A warning: `required` cannot be enforced on a checkbox.
pub const M047_REQUIRED_BOOLEAN: Rule = warning(
    "M047",
    "required has no effect on a boolean (an unchecked box is false)",
);
/// `requires` lists bundle ids ([`crate::ids::ID_PATTERN`]), each once, at most 16, never the
/// bundle's own id.
pub const M048_REQUIRES: Rule = error(
    "M048",
    "requires lists other bundles' ids, each once (at most 16)",
);
/// Checked by the catalog scan, which sees every bundle: a bundle that requires an app the
/// catalog does not offer (absent, invalid, or itself unavailable for this reason), or that
/// stands in a cycle of requirements, can never be installed and is not offered.
pub const M049_REQUIRES_UNAVAILABLE: Rule = error(
    "M049",
    "every required app is in the catalog, with no cycle of requirements",
);

// Script checks (the linter runs them; the catalog does not read scripts beyond the digest).
/// Run by the panel's linter (`panel/src/lint/`), like every `S…` rule.
pub const S001_SHEBANG: Rule = error("S001", "the script starts with a #! line");
/// Also accepted: `set -o errexit` / `nounset` / `pipefail`, or the flags on the `#!` line.
/// Without them a failed step can go unnoticed and the job still exit 0.
pub const S002_STRICT_MODE: Rule = error(
    "S002",
    "the script sets errexit, nounset and pipefail (set -euo pipefail)",
);
/// A textual heuristic, hence a warning: `read` or a bare `cat` gets nothing from
/// `/dev/null`. Redirects, heredocs, pipes and `read -u FD` are not flagged.
pub const S003_READS_STDIN: Rule =
    warning("S003", "the script does not read stdin (it is /dev/null)");
/// A warning, since the check is textual: a variable set by a sourced file is invisible to
/// it (`/etc/os-release` and `/etc/lsb-release` are understood). The message suggests a
/// close input name.
pub const S004_UNKNOWN_VARIABLE: Rule = warning(
    "S004",
    "$UPPERCASE variables are declared inputs, contract variables or assigned in the script",
);
/// Only when `shellcheck` is installed (SC1091 excluded); `--no-shellcheck` skips it.
pub const S005_SHELLCHECK: Rule = warning("S005", "shellcheck finds nothing");
/// No invalid UTF-8 and no NUL bytes: the other script checks read it as text.
pub const S006_NOT_TEXT: Rule = error("S006", "the script is UTF-8 text");
/// `apt-get`, `apt`, `aptitude`, `dnf`, `yum` changing the system need `-y` (or `--yes`,
/// `-qq`): with stdin at `/dev/null` a prompt aborts the command.
pub const S007_INTERACTIVE_COMMAND: Rule = warning(
    "S007",
    "package commands run non-interactively (apt-get -y)",
);
/// Under `set -u` a plain `$NAME` of an unset input stops the script.
pub const S008_OPTIONAL_WITHOUT_FALLBACK: Rule = warning(
    "S008",
    "an input that may be unset (optional without default, or visible_if) is read as ${NAME:-}",
);
/// bash reads a CR as part of each command.
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
    M026_RESTORE_WITHOUT_BACKUP,
    M027_HEALTH_CHECK,
    M028_SCRIPT_REUSED,
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
    M048_REQUIRES,
    M049_REQUIRES_UNAVAILABLE,
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
