//! The manifest data model: what `manifest.yml` holds once it has parsed and checked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::limits;

/// One installer's `manifest.yml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Stable identifier, equal to the bundle's directory name.
    pub id: String,
    /// Human name shown in the catalog.
    pub name: String,
    /// Version of the installer (not necessarily of the software it installs).
    pub version: String,
    /// What the installer sets up, in a sentence or a paragraph.
    pub description: String,
    /// Catalog category slug, e.g. `web`, `database`.
    pub category: String,
    /// Who maintains this installer.
    pub author: String,
    /// Operating systems the script supports.
    pub os_requirements: OsRequirements,
    /// Minimum resources of the target server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_requirements: Option<ResourceRequirements>,
    /// File name of the script inside the bundle.
    #[serde(default = "default_install_script")]
    pub install_script: String,
    /// File name of the upgrade script; without it an upgrade runs the new install script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_script: Option<String>,
    /// File name of the uninstall script; without it uninstall is not offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uninstall_script: Option<String>,
    /// File name of the backup script (writes into `BACKUP_DIR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_script: Option<String>,
    /// File name of the restore script (reads from `BACKUP_DIR`); needs `backup_script`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_script: Option<String>,
    /// Run after install, reconfigure, upgrade and restore; exit 0 means healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Whether one server may hold several named instances of the app.
    #[serde(default)]
    pub multiple_instances: bool,
    /// Hard limit for one attempt; the runner kills the whole process tree after it.
    pub timeout_seconds: u64,
    /// Whether running the script twice leaves the same result (re-run after a crash is safe).
    pub idempotent: bool,
    /// Override of the retry policy for exit code 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// The inputs the user fills in; they reach the script as UPPERCASE environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<InputSpec>,
    /// Apps (bundle ids) that must be installed on the same server before this one, such as
    /// `mariadb` for a database on it. The panel refuses an install without them and asks
    /// before uninstalling one that another installation stands on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Free search keywords.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Project home page (http or https URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// Shown to the user after a successful installation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_install_message: Option<String>,
}

fn default_install_script() -> String {
    "install.sh".to_owned()
}

impl Manifest {
    /// The retry policy in force: the manifest's own, or the contract default.
    pub fn effective_retry(&self) -> RetryPolicy {
        self.retry.clone().unwrap_or_default()
    }

    /// The lifecycle scripts the manifest names, as (manifest field, file name), in the fixed
    /// order the digest hashes them.
    pub fn lifecycle_scripts(&self) -> Vec<(&'static str, &str)> {
        [
            ("upgrade_script", &self.upgrade_script),
            ("uninstall_script", &self.uninstall_script),
            ("backup_script", &self.backup_script),
            ("restore_script", &self.restore_script),
        ]
        .into_iter()
        .filter_map(|(field, name)| name.as_deref().map(|n| (field, n)))
        .collect()
    }

    /// The declared input with this name.
    pub fn input(&self, name: &str) -> Option<&InputSpec> {
        self.inputs.iter().find(|input| input.name == name)
    }
}

/// The command that tells whether the installed app works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// A bash command line, run in the bundle directory with the script's environment.
    pub command: String,
    /// How long it may take before it counts as failed.
    #[serde(default = "default_health_timeout")]
    pub timeout_seconds: u64,
}

fn default_health_timeout() -> u64 {
    limits::DEFAULT_HEALTH_TIMEOUT_SECONDS
}

/// Operating systems the script supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsRequirements {
    /// Accepted `ID` / `ID_LIKE` values of `/etc/os-release`, e.g. `debian`, `ubuntu`.
    pub family: Vec<String>,
    /// Lowest accepted `VERSION_ID` (dotted numbers, compared numerically).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
}

/// Minimum resources of the target server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRequirements {
    /// Total RAM in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ram_mb: Option<u64>,
    /// Free disk space in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_disk_mb: Option<u64>,
}

/// Retry policy for a script that exits 2 (installation error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Total attempts including the first.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Delay before the second attempt; it doubles for each further one.
    #[serde(default = "default_backoff_seconds")]
    pub backoff_seconds: u64,
}

fn default_max_attempts() -> u32 {
    limits::DEFAULT_RETRY_MAX_ATTEMPTS
}

fn default_backoff_seconds() -> u64 {
    limits::DEFAULT_RETRY_BACKOFF_SECONDS
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: default_max_attempts(),
            backoff_seconds: default_backoff_seconds(),
        }
    }
}

/// One user input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// snake_case name; the script sees it UPPERCASED.
    pub name: String,
    /// Value type.
    pub r#type: InputType,
    /// Form label.
    pub label: String,
    /// Help text under the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether a value must be given (when the input is visible).
    #[serde(default)]
    pub required: bool,
    /// Value used when none is submitted; must pass the input's own validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Constraints on the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
    /// Show (and accept) this input only when every named input has one of the given values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub visible_if: BTreeMap<String, VisibleValue>,
    /// Secret: masked in logs, encrypted at rest, never echoed back. `password` implies it.
    #[serde(default)]
    pub sensitive: bool,
}

impl InputSpec {
    /// Whether the value is a secret (`sensitive: true` or type `password`).
    pub fn is_sensitive(&self) -> bool {
        self.sensitive || self.r#type == InputType::Password
    }

    /// The environment variable name the script reads.
    pub fn env_name(&self) -> String {
        self.name.to_ascii_uppercase()
    }

    /// `validation.allowed_values`, if any.
    pub fn allowed_values(&self) -> Option<&[Value]> {
        self.validation
            .as_ref()
            .and_then(|v| v.allowed_values.as_deref())
    }
}

/// Value type of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    /// Free text, one line.
    String,
    /// Whole number.
    Integer,
    /// Checkbox: `true` / `false`.
    Boolean,
    /// Secret text; always sensitive.
    Password,
    /// One of `validation.allowed_values`.
    Select,
    /// An e-mail address.
    Email,
    /// A TCP/UDP port, 1..=65535.
    Port,
}

impl InputType {
    /// The spelling used in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Password => "password",
            Self::Select => "select",
            Self::Email => "email",
            Self::Port => "port",
        }
    }

    /// Whether values of this type are text (string-like).
    pub fn is_text(self) -> bool {
        matches!(self, Self::String | Self::Password | Self::Email)
    }

    /// Whether values of this type are whole numbers.
    pub fn is_integer(self) -> bool {
        matches!(self, Self::Integer | Self::Port)
    }
}

/// Constraints on an input's value. Which keys apply depends on the type (rule M036).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    /// Regular expression the whole value must match (Rust `regex` syntax, no lookaround).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Fewest characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// Most characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// Smallest number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Largest number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// The only values accepted (required for `select`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_values: Option<Vec<Value>>,
}

/// The right-hand side of a `visible_if` entry: one value or a list of accepted values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VisibleValue {
    /// Any of these values.
    AnyOf(Vec<Value>),
    /// Exactly this value.
    One(Value),
}

impl VisibleValue {
    /// The accepted values.
    pub fn values(&self) -> &[Value] {
        match self {
            Self::AnyOf(values) => values,
            Self::One(value) => std::slice::from_ref(value),
        }
    }

    /// Whether `actual` is one of the accepted values.
    pub fn matches(&self, actual: &Value) -> bool {
        self.values().iter().any(|v| v == actual)
    }
}
