//! Turns a bundle, its validated inputs and the job's facts into one sandboxed attempt:
//! the script's whole environment (contract variables + inputs), the masker for its sensitive
//! values, its timeout. Every step of a lifecycle job (script or health check) is one.
//! Shared by `run` and `exec`, so both run scripts the same way.

use std::sync::OnceLock;
use std::time::Duration;

use outfitter_contract::exit_policy::RetrySettings;
use outfitter_contract::inputs::{InputValues, JobFacts, contract_env, script_env};
use outfitter_contract::lifecycle::{StepFacts, lifecycle_env};
use outfitter_contract::manifest::{Bundle, Manifest};

use crate::mask::Masker;
use crate::sandbox::{Attempt, Program};

/// Temporary directory the script is told about.
pub const SCRIPT_TMPDIR: &str = "/tmp";

/// Who a job is, as the script sees it.
#[derive(Debug, Clone)]
pub struct JobIdentity {
    pub job_id: String,
    pub attempt: u32,
    pub agent_id: String,
}

/// The user the script runs as (the runner's own), and its home directory. Looked up once:
/// the runner's user does not change while it runs, and each look-up reads the NSS
/// configuration and the password database.
fn user_and_home() -> &'static (String, String) {
    static ONCE: OnceLock<(String, String)> = OnceLock::new();
    ONCE.get_or_init(|| {
        let uid = nix::unistd::geteuid();
        match nix::unistd::User::from_uid(uid) {
            Ok(Some(u)) => (u.name, u.dir.display().to_string()),
            _ if uid.is_root() => ("root".into(), "/root".into()),
            _ => (uid.to_string(), "/".into()),
        }
    })
}

/// The values of the sensitive inputs, as the script receives them.
pub fn sensitive_values(manifest: &Manifest, values: &InputValues) -> Vec<String> {
    let env = script_env(manifest, values);
    manifest
        .inputs
        .iter()
        .filter(|i| i.is_sensitive())
        .filter_map(|i| {
            env.iter()
                .find(|(name, _)| *name == i.env_name())
                .map(|(_, v)| v.clone())
        })
        .collect()
}

/// The masker for one job's sensitive values.
pub fn masker_for(manifest: &Manifest, values: &InputValues) -> Masker {
    let secrets = sensitive_values(manifest, values);
    Masker::new(secrets.iter().map(String::as_str))
}

/// The retry policy of an app, in the exit policy's terms.
pub fn retry_settings(manifest: &Manifest) -> RetrySettings {
    let r = manifest.effective_retry();
    RetrySettings {
        max_attempts: r.max_attempts,
        first_backoff: Duration::from_secs(r.backoff_seconds),
    }
}

/// Builds the attempt of one step: `program` in the bundle directory, with the contract
/// variables, the inputs and the step's lifecycle variables.
pub fn prepare(
    bundle: &Bundle,
    values: &InputValues,
    who: &JobIdentity,
    program: Program,
    step: &StepFacts,
) -> Attempt {
    let manifest = &bundle.manifest;
    let (user, home) = user_and_home();
    let facts = JobFacts {
        job_id: who.job_id.clone(),
        attempt: who.attempt,
        app_id: manifest.id.clone(),
        app_version: manifest.version.clone(),
        agent_id: who.agent_id.clone(),
        home: home.clone(),
        user: user.clone(),
        tmpdir: SCRIPT_TMPDIR.to_owned(),
    };
    let mut env = contract_env(&facts);
    env.extend(script_env(manifest, values));
    env.extend(lifecycle_env(step));
    // The script runs with the bundle as its working directory: both paths must be absolute.
    let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    Attempt {
        program: match program {
            Program::Script(p) => Program::Script(absolute(&p)),
            command => command,
        },
        cwd: absolute(&bundle.dir),
        env,
        job_id: who.job_id.clone(),
        cgroup_name: format!("{}.{}", who.job_id, who.attempt),
        timeout: Duration::from_secs(manifest.timeout_seconds),
        masker: masker_for(manifest, values),
    }
}
