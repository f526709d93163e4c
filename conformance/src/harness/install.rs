//! Installing a bundle inside the system (through the runner, or bash for lack of one) and
//! running a spec's setup commands.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::prepare::{BundlePlace, GUEST_RUNNER};
use super::{HarnessConfig, InstallVia};
use crate::bundle::BundleFacts;
use crate::container::{Container, ExecOutput};
use crate::spec::value_text;

/// Extra time an install gets beyond its manifest's `timeout_seconds` (runner start, drain).
pub(super) const INSTALL_GRACE: Duration = Duration::from_secs(60);
/// Limit for one setup command.
const SETUP_TIMEOUT: Duration = Duration::from_secs(300);

pub(super) fn install_timeout(config: &HarnessConfig, id: &str) -> Duration {
    let secs =
        BundleFacts::load(&config.installers_root.join(id)).map_or(1800, |f| f.timeout_seconds);
    Duration::from_secs(secs) + INSTALL_GRACE
}

/// Runs shell commands in order, appending their output to `log`; stops at the first failure.
pub(super) async fn run_commands(
    container: &Container,
    commands: &[String],
    log: &mut String,
) -> bool {
    for command in commands {
        log.push_str(&format!("$ {command}\n"));
        let argv = [
            "/bin/bash".to_owned(),
            "-euo".to_owned(),
            "pipefail".to_owned(),
            "-c".to_owned(),
            command.clone(),
        ];
        match container.exec(&argv, &[], SETUP_TIMEOUT).await {
            Ok(out) => {
                log.push_str(&out.output);
                if out.code != Some(0) {
                    log.push_str(&format!("(exit {:?})\n", out.code));
                    return false;
                }
            }
            Err(e) => {
                log.push_str(&format!("{e}\n"));
                return false;
            }
        }
    }
    true
}

/// Installs bundle `id` (already copied in) with `inputs`.
pub(super) async fn install(
    config: &HarnessConfig,
    container: &Container,
    id: &str,
    inputs: &BTreeMap<String, Value>,
    timeout: Duration,
) -> Result<ExecOutput, String> {
    let place = BundlePlace::current(config, id);
    install_at(config, container, &place, inputs, timeout).await
}

/// Installs the bundle at `place` (already copied in) with `inputs`.
pub(super) async fn install_at(
    config: &HarnessConfig,
    container: &Container,
    place: &BundlePlace,
    inputs: &BTreeMap<String, Value>,
    timeout: Duration,
) -> Result<ExecOutput, String> {
    let bundle = place.guest.clone();
    let (argv, env): (Vec<String>, Vec<(String, String)>) = match &config.install_via {
        InstallVia::Runner(_) => {
            let mut argv = vec![GUEST_RUNNER.to_owned(), "exec".to_owned(), bundle];
            for (name, value) in inputs {
                argv.push("--set".to_owned());
                argv.push(format!("{name}={}", value_text(value)));
            }
            (argv, Vec::new())
        }
        InstallVia::Bash => {
            let facts = BundleFacts::load(&place.host).map_err(|e| e.to_string())?;
            let (id, script) = (facts.id, facts.install_script);
            let mut env = vec![
                ("DEBIAN_FRONTEND".to_owned(), "noninteractive".to_owned()),
                ("PROVISIONING_JOB".to_owned(), "true".to_owned()),
                ("JOB_ID".to_owned(), format!("conformance-{id}")),
            ];
            env.extend(
                inputs
                    .iter()
                    .map(|(k, v)| (k.to_ascii_uppercase(), value_text(v))),
            );
            (
                vec![
                    "/bin/bash".to_owned(),
                    "-c".to_owned(),
                    format!("cd {bundle} && exec bash ./{script}"),
                ],
                env,
            )
        }
    };
    container
        .exec(&argv, &env, timeout)
        .await
        .map_err(|e| e.to_string())
}
