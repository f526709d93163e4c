//! One bundle's conformance run, step by step: lint, boot, prerequisites, setup, a snapshot
//! of the fresh system, install, smoke checks, health check, reinstall, smoke checks again,
//! then the lifecycle: change settings, backup and restore, uninstall, leftovers, install
//! again over the kept data, purge and leftovers again; last, where the bundle's git history
//! holds an earlier version, the upgrade from it: once with a health check made to fail and
//! the rollback, once for real, and a purge after it. Every step is timed and logged; the
//! first failing step ends the run, and the system is torn down whatever happens.
//!
//! Here: the settings of a run and the result it adds up to. The order of the steps is in
//! `steps.rs`, the record of each step in `record.rs`, the system's preparation in
//! `prepare.rs`, installing and setup commands in `install.rs`, the lifecycle steps in
//! `lifecycle_steps.rs` (their scripts' environment in `lifecycle.rs`, the snapshot they
//! compare in `leftovers.rs`), the upgrade steps in `upgrade_steps.rs` (the earlier version
//! from git in `previous.rs`), and reading an install's output in `outcome.rs`.

mod install;
mod leftovers;
mod lifecycle;
mod lifecycle_steps;
mod outcome;
mod prepare;
mod previous;
mod record;
mod steps;
mod upgrade_steps;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use outfitter_contract::conformance::{ConformanceSummary, RESULT_SCHEMA};

use crate::checks::millis;
use crate::proxy::ProxyConfig;
use crate::report::{BundleResult, Status};
use crate::spec::TestSpec;
use record::Run;

/// How bundles are installed inside the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallVia {
    /// `outfitter-runner exec <bundle> --set k=v…`: the real runner's checks and sandbox.
    Runner(PathBuf),
    /// `bash install.sh` with the contract's environment; for when no runner is built.
    Bash,
}

impl InstallVia {
    fn label(&self) -> &'static str {
        match self {
            Self::Runner(_) => "outfitter-runner exec",
            Self::Bash => "bash install.sh",
        }
    }
}

/// Settings shared by every bundle of a run.
#[derive(Debug, Clone)]
pub struct HarnessConfig {
    pub installers_root: PathBuf,
    pub base: PathBuf,
    pub work_root: PathBuf,
    pub logs_dir: PathBuf,
    pub panel_bin: PathBuf,
    pub install_via: InstallVia,
    pub proxy: Arc<ProxyConfig>,
    /// Human name of the base, recorded in each result.
    pub system: String,
}

/// Runs the whole conformance sequence for the bundle in `bundle_dir`.
pub async fn run_bundle(config: &HarnessConfig, bundle_dir: &Path) -> BundleResult {
    let started = Instant::now();
    let tested_at = crate::timestamp::rfc3339(SystemTime::now());
    let dir_name = bundle_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut run = Run {
        config,
        id: dir_name.clone(),
        secrets: Vec::new(),
        steps: Vec::new(),
        log_dir: config.logs_dir.join(&dir_name),
    };
    let _ = std::fs::remove_dir_all(&run.log_dir);
    let facts = steps::steps(&mut run, bundle_dir).await;
    let step_ms = |name: &str| {
        run.steps
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.duration_ms)
    };
    let smoke = |name: &str| {
        run.steps
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.status == Status::Passed)
    };
    let all_passed = !run.steps.is_empty() && run.steps.iter().all(|s| s.status != Status::Failed);
    let expected_exit = TestSpec::load(bundle_dir)
        .map(|s| s.expect_exit)
        .unwrap_or(0);
    BundleResult {
        summary: ConformanceSummary {
            schema: RESULT_SCHEMA.to_owned(),
            digest: facts.as_ref().map(|f| f.digest.clone()).unwrap_or_default(),
            status: if all_passed {
                Status::Passed
            } else {
                Status::Failed
            },
            tested_at,
            install_ms: step_ms("install"),
            reinstall_ms: step_ms("reinstall"),
            smoke_passed: smoke("smoke"),
            reinstall_smoke_passed: smoke("smoke-after-reinstall"),
        },
        bundle: facts.as_ref().map_or(dir_name.clone(), |f| f.id.clone()),
        name: facts.as_ref().map_or(dir_name, |f| f.name.clone()),
        version: facts
            .as_ref()
            .map(|f| f.version.clone())
            .unwrap_or_default(),
        category: facts
            .as_ref()
            .map(|f| f.category.clone())
            .unwrap_or_default(),
        system: config.system.clone(),
        installed_via: config.install_via.label().to_owned(),
        expected_exit,
        total_ms: millis(started.elapsed()),
        steps: run.steps,
    }
}
