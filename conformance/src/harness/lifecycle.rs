//! Lifecycle scripts and the health check inside the system. `outfitter-runner exec` runs
//! install only, so these run with bash, in the bundle directory, with the environment the
//! runner gives them: the contract variables, the validated inputs (defaults filled in) and
//! the lifecycle variables of the step.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use outfitter_contract::inputs::{JobFacts, coerce_form, contract_env, script_env};
use outfitter_contract::lifecycle::{StepFacts, lifecycle_env};
use outfitter_contract::manifest::load_bundle;
use serde_json::Value;

use super::prepare::BundlePlace;
use crate::container::{Container, ExecOutput};
use crate::spec::value_text;

/// Where backups are written inside the system: outside /etc, so never a leftover.
pub(super) const GUEST_BACKUPS: &str = "/var/backups/outfitter-conformance";

/// The environment of one lifecycle step of the bundle in `bundle_dir` with `inputs`.
pub(super) fn step_env(
    bundle_dir: &Path,
    inputs: &BTreeMap<String, Value>,
    step: &StepFacts,
) -> Result<Vec<(String, String)>, String> {
    let bundle = load_bundle(bundle_dir).map_err(|d| {
        format!(
            "{}: the bundle does not load ({} diagnostics)",
            bundle_dir.display(),
            d.iter().filter(|d| d.is_error()).count()
        )
    })?;
    let id = bundle.id();
    let form: Vec<(String, String)> = inputs
        .iter()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect();
    let values = bundle
        .validate_inputs(&coerce_form(&bundle.manifest, &form))
        .map_err(|errors| {
            errors
                .iter()
                .map(|e| format!("input {}: {} ({})", e.field, e.message, e.rule))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
    let action = step.action.map_or("install", |a| a.as_str());
    let mut env = contract_env(&JobFacts {
        job_id: format!("conformance-{id}-{action}"),
        attempt: 1,
        app_id: id.to_owned(),
        app_version: bundle.manifest.version.clone(),
        agent_id: "local".to_owned(),
        home: "/root".to_owned(),
        user: "root".to_owned(),
        tmpdir: "/tmp".to_owned(),
    });
    env.extend(script_env(&bundle.manifest, &values));
    env.extend(lifecycle_env(step));
    Ok(env)
}

/// Runs `script` of the bundle at `place` with `env`, in the bundle directory.
pub(super) async fn run_script(
    container: &Container,
    place: &BundlePlace,
    script: &str,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<ExecOutput, String> {
    let argv = [
        "/bin/bash".to_owned(),
        "-c".to_owned(),
        format!(
            "cd {} && exec bash ./{}",
            quote(&place.guest),
            quote(script)
        ),
    ];
    container
        .exec(&argv, env, timeout)
        .await
        .map_err(|e| e.to_string())
}

/// Runs the health check `command` of the bundle at `place` with `env`, in its directory.
pub(super) async fn run_health(
    container: &Container,
    place: &BundlePlace,
    command: &str,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<ExecOutput, String> {
    let argv = [
        "/bin/bash".to_owned(),
        "-c".to_owned(),
        format!("cd {} && {command}", quote(&place.guest)),
    ];
    container
        .exec(&argv, env, timeout)
        .await
        .map_err(|e| e.to_string())
}

/// Makes a fresh backup directory (mode 0700, as the runner does) and returns its path.
pub(super) async fn make_backup_dir(container: &Container, name: &str) -> Result<String, String> {
    let dir = format!("{GUEST_BACKUPS}/{name}");
    let argv = [
        "/bin/bash".to_owned(),
        "-c".to_owned(),
        format!("rm -rf {0} && install -d -m 0700 {0}", quote(&dir)),
    ];
    match container.exec(&argv, &[], Duration::from_secs(30)).await {
        Ok(out) if out.code == Some(0) => Ok(dir),
        Ok(out) => Err(format!("cannot create {dir}: {}", out.output.trim())),
        Err(e) => Err(e.to_string()),
    }
}

/// `text` as one single-quoted shell word.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use outfitter_contract::lifecycle::Action;

    use super::*;

    fn installers() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../installers")
    }

    fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn uninstall_env_has_inputs_defaults_contract_and_lifecycle_variables() {
        let inputs = BTreeMap::from([("listen_address".to_owned(), Value::from("127.0.0.1"))]);
        let step = StepFacts {
            action: Some(Action::Uninstall),
            instance: "node-exporter".into(),
            purge: Some(true),
            ..StepFacts::default()
        };
        let env = step_env(&installers().join("node-exporter"), &inputs, &step).unwrap();
        assert_eq!(get(&env, "OUTFITTER_ACTION"), Some("uninstall"));
        assert_eq!(get(&env, "INSTANCE"), Some("node-exporter"));
        assert_eq!(get(&env, "PURGE"), Some("true"));
        assert_eq!(get(&env, "BACKUP_DIR"), None);
        assert_eq!(get(&env, "LISTEN_ADDRESS"), Some("127.0.0.1"));
        assert_eq!(get(&env, "PORT"), Some("9100"), "the default is filled in");
        assert_eq!(get(&env, "APP_ID"), Some("node-exporter"));
        assert_eq!(get(&env, "DEBIAN_FRONTEND"), Some("noninteractive"));
    }

    #[test]
    fn invalid_inputs_are_refused_naming_the_input() {
        let inputs = BTreeMap::from([("port".to_owned(), Value::from("not-a-port"))]);
        let e = step_env(
            &installers().join("node-exporter"),
            &inputs,
            &StepFacts::default(),
        )
        .unwrap_err();
        assert!(e.contains("input port"), "{e}");
    }

    #[test]
    fn quoted_words_survive_quotes_inside() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
