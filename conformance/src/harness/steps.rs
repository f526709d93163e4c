//! The order of a run's steps up to the reinstall, and the install, smoke and health steps
//! the lifecycle steps reuse; the first failing step ends the run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use outfitter_contract::lifecycle::{Action, StepFacts};
use serde_json::Value;

use super::install::{INSTALL_GRACE, install, install_timeout, run_commands};
use super::leftovers::Snapshot;
use super::lifecycle::{run_health, step_env};
use super::outcome::describe;
use super::prepare::{BundlePlace, boot};
use super::record::{Run, mask};
use crate::bundle::BundleFacts;
use crate::checks::{self, millis};
use crate::container::Container;
use crate::spec::{Check, TestSpec, value_text};

/// The steps in order; returns the bundle's facts when they could be read.
pub(super) async fn steps(run: &mut Run<'_>, bundle_dir: &Path) -> Option<BundleFacts> {
    let config = run.config;

    // 1. lint: the real linter, exactly as an author runs it.
    let t = Instant::now();
    let lint = tokio::process::Command::new(&config.panel_bin)
        .arg("lint")
        .arg(bundle_dir)
        .output()
        .await;
    let (passed, detail, code, log) = match lint {
        Ok(out) => {
            let log = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            let warnings = log.lines().filter(|l| l.contains(": warning: ")).count();
            let detail = if out.status.success() {
                format!("clean ({warnings} warnings)")
            } else {
                "lint errors".to_owned()
            };
            (out.status.success(), detail, out.status.code(), log)
        }
        Err(e) => (
            false,
            format!("cannot run {}: {e}", config.panel_bin.display()),
            None,
            String::new(),
        ),
    };
    if !run.record("lint", t, passed, &detail, code, &log) {
        return BundleFacts::load(bundle_dir).ok();
    }

    // 2. read the bundle and its tests.yml.
    let t = Instant::now();
    let loaded = BundleFacts::load(bundle_dir)
        .map_err(|e| e.to_string())
        .and_then(|facts| {
            TestSpec::load(bundle_dir)
                .map(|spec| (facts, spec))
                .map_err(|e| e.to_string())
        });
    let (facts, spec) = match loaded {
        Ok(pair) => pair,
        Err(e) => {
            run.record("tests.yml", t, false, &e, None, "");
            return BundleFacts::load(bundle_dir).ok();
        }
    };
    let prerequisites: Vec<String> = spec
        .prerequisites
        .iter()
        .map(|p| p.bundle.clone())
        .collect();
    let unmet = facts.unmet(&prerequisites);
    if !unmet.is_empty() {
        let e = format!(
            "prerequisites must install every app the manifest requires; missing: {}",
            unmet.join(", ")
        );
        run.record("tests.yml", t, false, &e, None, "");
        return Some(facts);
    }
    run.id.clone_from(&facts.id);
    let changed = spec.reconfigure_inputs.clone().unwrap_or_default();
    run.secrets = facts
        .sensitive_inputs
        .iter()
        .flat_map(|name| [spec.inputs.get(name), changed.get(name)])
        .flatten()
        .map(value_text)
        .collect();
    run.record(
        "tests.yml",
        t,
        true,
        &format!(
            "{} checks, expect exit {}",
            spec.checks.len(),
            spec.expect_exit
        ),
        None,
        "",
    );

    // 3. boot a fresh system.
    let t = Instant::now();
    let mut bundles = vec![facts.id.clone()];
    bundles.extend(spec.prerequisites.iter().map(|p| p.bundle.clone()));
    let container = boot(config, &bundles).await;
    let container = match container {
        Ok(c) => c,
        Err(e) => {
            run.record("boot", t, false, &e, None, "");
            return Some(facts);
        }
    };
    run.record(
        "boot",
        t,
        true,
        &format!("{} at {}", container.name, container.link.guest_addr),
        None,
        "",
    );

    after_boot(run, &container, &facts, &spec, bundle_dir).await;
    let t = Instant::now();
    drop(container);
    tracing::debug!(bundle = %facts.id, "torn down in {} ms", millis(t.elapsed()));
    Some(facts)
}

async fn after_boot(
    run: &mut Run<'_>,
    container: &Container,
    facts: &BundleFacts,
    spec: &TestSpec,
    bundle_dir: &Path,
) {
    let config = run.config;
    for prerequisite in &spec.prerequisites {
        let t = Instant::now();
        let result = install(
            config,
            container,
            &prerequisite.bundle,
            &prerequisite.inputs,
            install_timeout(config, &prerequisite.bundle),
        )
        .await;
        let name = format!("prerequisite {}", prerequisite.bundle);
        let ok = match result {
            Ok(out) => {
                let ok = out.code == Some(0);
                run.record(&name, t, ok, &describe(&out, 0), out.code, &out.output)
            }
            Err(e) => run.record(&name, t, false, &e, None, ""),
        };
        if !ok {
            return;
        }
    }

    if !spec.fixtures.is_empty() || !spec.setup.is_empty() {
        let t = Instant::now();
        let mut log = String::new();
        for fixture in &spec.fixtures {
            if let Err(e) = container.copy_in(&bundle_dir.join(&fixture.from), &fixture.to) {
                run.record(
                    "setup",
                    t,
                    false,
                    &format!("fixture {}: {e}", fixture.from),
                    None,
                    &log,
                );
                return;
            }
        }
        if !run_commands(container, &spec.setup, &mut log).await {
            run.record("setup", t, false, "a setup command failed", None, &log);
            return;
        }
        run.record(
            "setup",
            t,
            true,
            &format!(
                "{} fixtures, {} commands",
                spec.fixtures.len(),
                spec.setup.len()
            ),
            None,
            &log,
        );
    }

    let t = Instant::now();
    let before = match Snapshot::take(container).await {
        Ok(snapshot) => {
            run.record("snapshot", t, true, &snapshot.describe(), None, "");
            snapshot
        }
        Err(e) => {
            run.record("snapshot", t, false, &e, None, "");
            return;
        }
    };
    let timeout = Duration::from_secs(facts.timeout_seconds) + INSTALL_GRACE;
    if !install_and_check(
        run,
        container,
        facts,
        spec,
        &spec.inputs,
        &spec.checks,
        ("install", "smoke"),
    )
    .await
    {
        return;
    }
    if !health(
        run,
        container,
        facts,
        spec,
        &spec.inputs,
        Action::Install,
        "health",
    )
    .await
    {
        return;
    }
    if !spec.before_reinstall.is_empty() {
        let t = Instant::now();
        let mut log = String::new();
        let ok = run_commands(container, &spec.before_reinstall, &mut log).await;
        if !run.record(
            "before-reinstall",
            t,
            ok,
            &format!("{} commands", spec.before_reinstall.len()),
            None,
            &log,
        ) {
            return;
        }
    }
    if !install_and_check(
        run,
        container,
        facts,
        spec,
        &spec.inputs,
        &spec.checks,
        ("reinstall", "smoke-after-reinstall"),
    )
    .await
    {
        return;
    }
    super::lifecycle_steps::run(run, container, facts, spec, &before, timeout).await;
}

/// Installs with `inputs` (step `install_step`), then runs `checks` (step `smoke_step`);
/// returns whether both passed.
pub(super) async fn install_and_check(
    run: &mut Run<'_>,
    container: &Container,
    facts: &BundleFacts,
    spec: &TestSpec,
    inputs: &BTreeMap<String, Value>,
    checks: &[Check],
    (install_step, smoke_step): (&str, &str),
) -> bool {
    let timeout = Duration::from_secs(facts.timeout_seconds) + INSTALL_GRACE;
    let t = Instant::now();
    match install(run.config, container, &facts.id, inputs, timeout).await {
        Ok(out) => {
            let ok = out.code == Some(spec.expect_exit);
            if !run.record(
                install_step,
                t,
                ok,
                &describe(&out, spec.expect_exit),
                out.code,
                &out.output,
            ) {
                return false;
            }
        }
        Err(e) => {
            run.record(install_step, t, false, &e, None, "");
            return false;
        }
    }
    smoke(run, container, checks, smoke_step).await
}

/// Runs `checks` as step `name`; true when there are none.
pub(super) async fn smoke(
    run: &mut Run<'_>,
    container: &Container,
    checks: &[Check],
    name: &str,
) -> bool {
    if checks.is_empty() {
        return true;
    }
    let t = Instant::now();
    let mut results = Vec::new();
    for check in checks {
        results.push(checks::run(container, check).await);
    }
    let passed = results.iter().filter(|r| r.passed).count();
    let ok = passed == results.len();
    run.record(
        name,
        t,
        ok,
        &format!("{passed} of {} checks passed", results.len()),
        None,
        "",
    );
    if let Some(step) = run.steps.last_mut() {
        step.checks = results;
        for check in &mut step.checks {
            check.detail = mask(&run.secrets, &check.detail);
        }
    }
    ok
}

/// The manifest's health check after `action`, as step `name`: skipped (and true) when the
/// bundle has none or its install is expected to refuse.
pub(super) async fn health(
    run: &mut Run<'_>,
    container: &Container,
    facts: &BundleFacts,
    spec: &TestSpec,
    inputs: &BTreeMap<String, Value>,
    action: Action,
    name: &str,
) -> bool {
    if spec.expect_exit != 0 {
        run.skip(
            name,
            "the install is expected to refuse, so nothing is there to check",
        );
        return true;
    }
    let place = BundlePlace::current(run.config, &facts.id);
    health_at(run, container, &place, facts, inputs, action, name).await
}

/// The health check of the bundle version `facts` at `place` after `action`, as step
/// `name`: skipped (and true) when that version has none.
pub(super) async fn health_at(
    run: &mut Run<'_>,
    container: &Container,
    place: &BundlePlace,
    facts: &BundleFacts,
    inputs: &BTreeMap<String, Value>,
    action: Action,
    name: &str,
) -> bool {
    let Some((command, timeout_seconds)) = &facts.health_check else {
        run.skip(name, "the manifest has no health_check");
        return true;
    };
    let t = Instant::now();
    let step = StepFacts {
        action: Some(action),
        instance: facts.id.clone(),
        ..StepFacts::default()
    };
    let env = match step_env(&place.host, inputs, &step) {
        Ok(env) => env,
        Err(e) => return run.record(name, t, false, &e, None, ""),
    };
    let timeout = Duration::from_secs(*timeout_seconds);
    match run_health(container, place, command, &env, timeout).await {
        Ok(out) => {
            let ok = out.code == Some(0) && !out.timed_out;
            run.record(name, t, ok, &describe(&out, 0), out.code, &out.output)
        }
        Err(e) => run.record(name, t, false, &e, None, ""),
    }
}
