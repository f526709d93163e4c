//! A bundle's `tests.yml`: the inputs to install with, what must be true afterwards, and
//! what has to exist first (other bundles, fixture files, setup commands).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// The name of the test declaration inside a bundle.
pub const TESTS_FILE: &str = "tests.yml";
/// Largest `tests.yml` read; a test declaration is a page of YAML, not a data set.
const MAX_TESTS_BYTES: u64 = 64 * 1024;
/// How long a check may keep failing before it counts as failed (services start async).
const DEFAULT_CHECK_WAIT_SECONDS: u64 = 30;

/// Why a `tests.yml` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: larger than {MAX_TESTS_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: not valid test YAML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

/// Everything `tests.yml` declares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    /// Inputs passed as `--set name=value`; scalars only.
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
    /// The exit code both installs must end with (0, or 3 for a bundle that must refuse).
    #[serde(default)]
    pub expect_exit: i32,
    /// Other bundles installed first, each through the same runner, in order.
    #[serde(default)]
    pub prerequisites: Vec<Prerequisite>,
    /// Files of this bundle copied into the system before the install.
    #[serde(default)]
    pub fixtures: Vec<Fixture>,
    /// Shell commands run inside the system before the first install.
    #[serde(default)]
    pub setup: Vec<String>,
    /// Shell commands run between the first install's checks and the reinstall.
    #[serde(default)]
    pub before_reinstall: Vec<String>,
    /// Smoke checks, run after each install.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// A second input set for the change-settings step, laid over `inputs`; without it the
    /// step is skipped with a note. Later steps (uninstall, install again) use the result.
    #[serde(default)]
    pub reconfigure_inputs: Option<BTreeMap<String, Value>>,
    /// Checks after the change of settings and every later install; `checks` when empty.
    #[serde(default)]
    pub reconfigure_checks: Vec<Check>,
    /// Paths under /etc the uninstall keeps by design (a database cluster's configuration
    /// kept with its data): not leftovers, unless the uninstall purged.
    #[serde(default)]
    pub kept_paths: Vec<String>,
    /// Users and groups the uninstall keeps by design because kept data belongs to them.
    #[serde(default)]
    pub kept_users: Vec<String>,
    /// Shell commands run on the fresh system before the earlier version (from git) is
    /// installed for the upgrade steps: what that version needed and did not install itself
    /// (it was proven on a system that had it). The upgrade's leftovers are compared with the
    /// system after them.
    #[serde(default)]
    pub upgrade_setup: Vec<String>,
    /// Why the upgrade from the earlier version cannot be proven here (that version does not
    /// install on the test system: a bug the version under test fixed); the step is recorded
    /// as skipped with this reason.
    #[serde(default)]
    pub upgrade_skip: Option<String>,
    /// What the test systems cannot prove about this bundle, and why (a container cannot
    /// swap or set the clock); the catalog shows it beside the result.
    #[serde(default)]
    pub not_proven: Option<String>,
}

/// Another bundle of the same installers root, installed before this one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prerequisite {
    pub bundle: String,
    #[serde(default)]
    pub inputs: BTreeMap<String, Value>,
}

/// A file or directory of the bundle, copied to an absolute path in the system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// Path relative to the bundle directory.
    pub from: String,
    /// Absolute destination inside the system.
    pub to: String,
}

/// One smoke check; exactly one of `http`, `port` and `command` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: String,
    #[serde(default)]
    pub http: Option<HttpCheck>,
    /// A TCP port something must listen on (any address, IPv4 or IPv6).
    #[serde(default)]
    pub port: Option<u16>,
    /// A shell command that must exit 0 inside the system.
    #[serde(default)]
    pub command: Option<String>,
    /// Seconds the check may keep failing before it counts as failed.
    #[serde(default = "default_wait")]
    pub wait_seconds: u64,
}

fn default_wait() -> u64 {
    DEFAULT_CHECK_WAIT_SECONDS
}

/// An HTTP request made from inside the system's network namespace.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// `http://<ip>[:port]/path`; names are not resolved, use `host` for virtual hosts.
    pub url: String,
    /// Value of the `Host` header; the URL's host when absent.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default)]
    pub body_contains: Option<String>,
}

fn default_status() -> u16 {
    200
}

/// What a check verifies, once `tests.yml` is known to be well formed.
#[derive(Debug, Clone, Copy)]
pub enum CheckKind<'a> {
    Http(&'a HttpCheck),
    Port(u16),
    Command(&'a str),
}

impl Check {
    /// The one verification this check declares.
    pub fn kind(&self) -> CheckKind<'_> {
        match (&self.http, self.port, &self.command) {
            (Some(http), _, _) => CheckKind::Http(http),
            (None, Some(port), _) => CheckKind::Port(port),
            (None, None, Some(command)) => CheckKind::Command(command),
            // `TestSpec::load` rejects a check without a kind.
            (None, None, None) => CheckKind::Command("false"),
        }
    }
}

impl TestSpec {
    /// The input set in force after the change-settings step.
    pub fn settled_inputs(&self) -> BTreeMap<String, Value> {
        let mut inputs = self.inputs.clone();
        if let Some(changed) = &self.reconfigure_inputs {
            inputs.extend(changed.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        inputs
    }

    /// The checks that hold after the change-settings step.
    pub fn settled_checks(&self) -> &[Check] {
        if self.reconfigure_inputs.is_some() && !self.reconfigure_checks.is_empty() {
            &self.reconfigure_checks
        } else {
            &self.checks
        }
    }

    /// Whether `path` lies at or below one of `kept_paths`.
    pub fn is_kept_path(&self, path: &str) -> bool {
        self.kept_paths.iter().any(|kept| {
            let kept = kept.trim_end_matches('/');
            path == kept
                || path
                    .strip_prefix(kept)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// Reads and checks `<bundle>/tests.yml`.
    pub fn load(bundle_dir: &Path) -> Result<Self, SpecError> {
        let path = bundle_dir.join(TESTS_FILE);
        let meta = std::fs::metadata(&path).map_err(|source| SpecError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.len() > MAX_TESTS_BYTES {
            return Err(SpecError::TooLarge { path });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| SpecError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text, &path)
    }

    /// Parses and checks the text of a `tests.yml`; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, SpecError> {
        let spec: TestSpec = serde_saphyr::from_str(text).map_err(|e| SpecError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        spec.check(path)?;
        Ok(spec)
    }

    fn check(&self, path: &Path) -> Result<(), SpecError> {
        let invalid = |field: String, message: &str| SpecError::Invalid {
            path: path.to_owned(),
            field,
            message: message.to_owned(),
        };
        check_inputs(&self.inputs, "inputs").map_err(|(field, message)| invalid(field, message))?;
        if let Some(inputs) = &self.reconfigure_inputs {
            check_inputs(inputs, "reconfigure_inputs")
                .map_err(|(field, message)| invalid(field, message))?;
        }
        for (i, path) in self.kept_paths.iter().enumerate() {
            if !path.starts_with('/') || path.split('/').any(|c| c == "..") || path == "/" {
                return Err(invalid(
                    format!("kept_paths[{i}]"),
                    "must be an absolute path without .., not /",
                ));
            }
        }
        for (i, prerequisite) in self.prerequisites.iter().enumerate() {
            if !is_bundle_id(&prerequisite.bundle) {
                return Err(invalid(
                    format!("prerequisites[{i}].bundle"),
                    "must be a bundle id",
                ));
            }
            check_inputs(&prerequisite.inputs, &format!("prerequisites[{i}].inputs"))
                .map_err(|(field, message)| invalid(field, message))?;
        }
        for (i, fixture) in self.fixtures.iter().enumerate() {
            let from = Path::new(&fixture.from);
            if from.is_absolute()
                || from
                    .components()
                    .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(invalid(
                    format!("fixtures[{i}].from"),
                    "must be a relative path inside the bundle",
                ));
            }
            if !fixture.to.starts_with('/')
                || fixture.to.contains("/../")
                || fixture.to.ends_with("/..")
            {
                return Err(invalid(
                    format!("fixtures[{i}].to"),
                    "must be an absolute path without ..",
                ));
            }
        }
        if self.checks.is_empty() && self.expect_exit == 0 {
            return Err(invalid(
                "checks".into(),
                "a bundle expected to install needs at least one check",
            ));
        }
        for (i, check) in self
            .checks
            .iter()
            .chain(&self.reconfigure_checks)
            .enumerate()
        {
            let kinds = usize::from(check.http.is_some())
                + usize::from(check.port.is_some())
                + usize::from(check.command.is_some());
            if kinds != 1 {
                return Err(invalid(
                    format!("checks[{i}]"),
                    "needs exactly one of http, port and command",
                ));
            }
            if check.port == Some(0) {
                return Err(invalid(
                    format!("checks[{i}].port"),
                    "must be within 1..=65535",
                ));
            }
            if let Some(http) = &check.http
                && !http.url.starts_with("http://")
            {
                return Err(invalid(
                    format!("checks[{i}].http.url"),
                    "must start with http://",
                ));
            }
        }
        Ok(())
    }
}

/// Input values must be scalars: they become `--set name=value` arguments.
fn check_inputs(
    inputs: &BTreeMap<String, Value>,
    field: &str,
) -> Result<(), (String, &'static str)> {
    for (name, value) in inputs {
        if !matches!(value, Value::String(_) | Value::Bool(_) | Value::Number(_)) {
            return Err((
                format!("{field}.{name}"),
                "must be a string, number or boolean",
            ));
        }
        if !name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err((format!("{field}.{name}"), "input names are snake_case"));
        }
    }
    Ok(())
}

fn is_bundle_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The text form of an input value for `--set` and the environment (booleans as true/false).
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TestSpec, SpecError> {
        TestSpec::parse(text, Path::new("tests.yml"))
    }

    #[test]
    fn full_spec_parses_with_each_check_kind() {
        let spec = parse(
            "inputs: {server_name: a.test, enable_tls: false, port: 8080}\n\
             checks:\n\
             - {name: page, http: {url: 'http://127.0.0.1/', host: a.test, body_contains: hi}}\n\
             - {name: listens, port: 80}\n\
             - {name: ok, command: 'nginx -t'}\n",
        )
        .unwrap();
        assert_eq!(spec.checks.len(), 3);
        assert!(matches!(spec.checks[0].kind(), CheckKind::Http(h) if h.status == 200));
        assert!(matches!(spec.checks[1].kind(), CheckKind::Port(80)));
        assert!(matches!(
            spec.checks[2].kind(),
            CheckKind::Command("nginx -t")
        ));
        assert_eq!(value_text(&spec.inputs["enable_tls"]), "false");
        assert_eq!(value_text(&spec.inputs["port"]), "8080");
    }

    #[test]
    fn check_with_two_kinds_is_rejected() {
        let err = parse("checks: [{name: x, port: 80, command: 'true'}]").unwrap_err();
        assert!(
            err.to_string().contains("checks[0]: needs exactly one"),
            "{err}"
        );
    }

    #[test]
    fn unknown_field_is_rejected() {
        assert!(matches!(
            parse("inputs: {}\nchecks: []\nsmoke: []").unwrap_err(),
            SpecError::Parse { .. }
        ));
    }

    #[test]
    fn spec_without_checks_must_expect_a_failure() {
        assert!(parse("inputs: {a: b}").is_err());
        assert_eq!(
            parse("inputs: {a: b}\nexpect_exit: 3").unwrap().expect_exit,
            3
        );
    }

    #[test]
    fn list_input_is_rejected_with_its_field() {
        let err = parse("inputs: {tags: [a, b]}\nchecks: [{name: x, port: 1}]").unwrap_err();
        assert!(err.to_string().contains("inputs.tags"), "{err}");
    }

    #[test]
    fn fixture_escaping_the_bundle_is_rejected() {
        let err = parse("fixtures: [{from: ../secret, to: /tmp/x}]\nchecks: [{name: x, port: 1}]")
            .unwrap_err();
        assert!(err.to_string().contains("fixtures[0].from"), "{err}");
    }

    #[test]
    fn reconfigure_inputs_are_laid_over_the_inputs() {
        let spec = parse(
            "inputs: {a: x, b: y}\nreconfigure_inputs: {b: z}\n\
             checks: [{name: x, port: 1}]\nreconfigure_checks: [{name: y, port: 2}]",
        )
        .unwrap();
        assert_eq!(value_text(&spec.settled_inputs()["a"]), "x");
        assert_eq!(value_text(&spec.settled_inputs()["b"]), "z");
        assert_eq!(spec.settled_checks()[0].name, "y");
    }

    #[test]
    fn kept_paths_match_whole_components_only() {
        let spec = parse("kept_paths: [/etc/postgresql]\nchecks: [{name: x, port: 1}]").unwrap();
        assert!(spec.is_kept_path("/etc/postgresql"));
        assert!(spec.is_kept_path("/etc/postgresql/15/main/pg_hba.conf"));
        assert!(!spec.is_kept_path("/etc/postgresql-common/createcluster.conf"));
        let err = parse("kept_paths: [etc/x]\nchecks: [{name: x, port: 1}]").unwrap_err();
        assert!(err.to_string().contains("kept_paths[0]"), "{err}");
    }

    #[test]
    fn http_check_needs_plain_http_url() {
        let err = parse("checks: [{name: x, http: {url: 'https://127.0.0.1/'}}]").unwrap_err();
        assert!(err.to_string().contains("http.url"), "{err}");
    }
}
