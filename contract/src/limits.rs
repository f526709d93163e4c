//! Every size and count cap of the installer contract, in one place.
//!
//! The manifest JSON Schema repeats a few of these as `maximum`/`maxLength` so that editors can
//! show them; a test (`schema_limits_match_limits_rs`) keeps the two in step.

/// Largest `manifest.yml` accepted, checked on the file's metadata and again while reading,
/// before any parsing. Real manifests are a few KiB.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// Largest install script accepted (the linter and the digest read it whole).
pub const MAX_SCRIPT_BYTES: u64 = 1024 * 1024;

/// Largest `conformance.json` read or written. Real results are about 10 KiB (each step keeps
/// the last 40 lines of its log); the cap keeps a hostile file from costing the panel memory.
pub const MAX_CONFORMANCE_RESULT_BYTES: u64 = 4 * 1024 * 1024;

/// YAML budget: deepest nesting of mappings and sequences (a manifest needs about 6).
pub const YAML_MAX_DEPTH: usize = 16;
/// YAML budget: most nested flow collections (`[[[...]]]`).
pub const YAML_MAX_FLOW_NESTING: usize = 16;
/// YAML budget: total parser events.
pub const YAML_MAX_EVENTS: usize = 20_000;
/// YAML budget: total nodes (scalars, sequences, mappings).
pub const YAML_MAX_NODES: usize = 10_000;
/// YAML budget: anchors and aliases (a manifest needs none; a few are tolerated).
pub const YAML_MAX_ANCHORS: usize = 64;
/// YAML budget: alias uses.
pub const YAML_MAX_ALIASES: usize = 64;
/// YAML budget: total bytes of scalar text after alias expansion.
pub const YAML_MAX_SCALAR_BYTES: usize = 256 * 1024;
/// YAML budget: merge keys (`<<`).
pub const YAML_MAX_MERGE_KEYS: usize = 16;

/// Longest submitted input value, in bytes (after coercion to a string).
pub const MAX_INPUT_VALUE_BYTES: usize = 4096;
/// Most inputs one manifest may declare.
pub const MAX_INPUTS: usize = 64;
/// Most entries in one `allowed_values` list.
pub const MAX_ALLOWED_VALUES: usize = 256;
/// Longest `validation.pattern`, in bytes.
pub const MAX_PATTERN_BYTES: usize = 512;
/// Compiled size cap for one `validation.pattern` (regex crate `size_limit`).
pub const MAX_PATTERN_COMPILED_BYTES: usize = 256 * 1024;
/// Most fields one submission may carry (declared or not) before the rest is ignored.
pub const MAX_SUBMITTED_FIELDS: usize = 256;

/// `timeout_seconds` range: one second to one day.
pub const MIN_TIMEOUT_SECONDS: u64 = 1;
/// `timeout_seconds` upper bound (24 h).
pub const MAX_TIMEOUT_SECONDS: u64 = 86_400;

/// Default total attempts of a job whose script exits 2 (installation error), when the
/// manifest has no `retry` section.
pub const DEFAULT_RETRY_MAX_ATTEMPTS: u32 = 3;
/// Default first retry delay; it doubles on each further attempt.
pub const DEFAULT_RETRY_BACKOFF_SECONDS: u64 = 10;
/// Most total attempts a manifest may ask for.
pub const MAX_RETRY_ATTEMPTS: u32 = 10;
/// Longest first retry delay a manifest may ask for.
pub const MAX_RETRY_BACKOFF_SECONDS: u64 = 3600;

/// Longest `name`, `category`, `author`, `version`, input `label`.
pub const MAX_SHORT_TEXT_CHARS: usize = 100;
/// Longest `description`, input `description`, `post_install_message`.
pub const MAX_LONG_TEXT_CHARS: usize = 4000;
/// Most `tags`.
pub const MAX_TAGS: usize = 16;

/// A health check's time limit when the manifest gives none, in seconds.
pub const DEFAULT_HEALTH_TIMEOUT_SECONDS: u64 = 30;
/// The longest a health check may be given, in seconds.
pub const MAX_HEALTH_TIMEOUT_SECONDS: u64 = 600;
/// The longest health check command line, in bytes.
pub const MAX_HEALTH_COMMAND_BYTES: usize = 1024;
/// The longest instance name (`INSTANCE`), in characters.
pub const MAX_INSTANCE_CHARS: usize = 40;
