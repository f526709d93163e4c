//! The upgrade steps, on the fresh system the purge left, for a bundle whose git history holds
//! an earlier version (`previous.rs`): that version installed and checked as its own tests.yml
//! says (after `upgrade_setup`, when there is one); an upgrade to the version under test, with
//! the current inputs, whose health check is made to fail, and the rollback the runner makes
//! then (the earlier version's restore script from the backup taken first, or without one its
//! install script with the kept inputs) with the earlier version's health and smoke checks;
//! the same upgrade again, for real, with the new health and smoke checks; last a purge that
//! must leave nothing. The phases and their environment are the runner's
//! (`runner/src/lifecycle/upgrade.rs`, docs/installer-contract.md "Rollback").

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use outfitter_contract::lifecycle::{Action, StepFacts};
use outfitter_contract::manifest::load_bundle;
use serde_json::Value;

use super::install::{INSTALL_GRACE, install_at, run_commands};
use super::leftovers::Snapshot;
use super::lifecycle::{make_backup_dir, run_script, step_env};
use super::lifecycle_steps::{Removal, Subject, uninstall_and_compare};
use super::outcome::describe;
use super::prepare::{BundlePlace, GUEST_PREVIOUS};
use super::previous::{Previous, check_out};
use super::record::Run;
use super::steps::{health_at, smoke};
use crate::bundle::BundleFacts;
use crate::container::Container;
use crate::spec::{Check, TestSpec, value_text};

const PURGE_AFTER_UPGRADE: Removal = Removal {
    uninstall: "purge-after-upgrade",
    leftovers: "leftovers-after-upgrade",
    purge: true,
};

/// One version of the bundle as the upgrade steps use it.
struct Version {
    facts: BundleFacts,
    place: BundlePlace,
    inputs: BTreeMap<String, Value>,
    checks: Vec<Check>,
}

impl Version {
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.facts.timeout_seconds) + INSTALL_GRACE
    }
}

/// The upgrade steps after a passed purge; `subject` is the bundle under test.
pub(super) async fn run(
    run: &mut Run<'_>,
    subject: &Subject<'_>,
    spec: &TestSpec,
    before: &Snapshot,
) {
    if spec.expect_exit != 0 {
        run.skip("upgrade", "the install is expected to refuse");
        return;
    }
    if let Some(why) = &spec.upgrade_skip {
        run.skip("upgrade", why);
        return;
    }
    let container = subject.container;
    let Some(old) = earlier_version(run, container, subject.facts, spec).await else {
        return;
    };
    let baseline = if spec.upgrade_setup.is_empty() {
        None
    } else {
        let t = Instant::now();
        let mut log = String::new();
        let ok = run_commands(container, &spec.upgrade_setup, &mut log).await;
        let detail = format!("{} commands", spec.upgrade_setup.len());
        if !run.record("upgrade-setup", t, ok, &detail, None, &log) {
            return;
        }
        match Snapshot::take(container).await {
            Ok(s) => Some(s),
            Err(e) => {
                run.record("upgrade-setup", t, false, &e, None, "");
                return;
            }
        }
    };
    let before = baseline.as_ref().unwrap_or(before);
    let new = Version {
        facts: subject.facts.clone(),
        place: BundlePlace::current(run.config, &subject.facts.id),
        inputs: spec.inputs.clone(),
        checks: spec.checks.clone(),
    };

    // The earlier version, installed as a customer had it.
    let t = Instant::now();
    let installed = install_at(
        run.config,
        container,
        &old.place,
        &old.inputs,
        old.timeout(),
    )
    .await;
    let ok = match installed {
        Ok(out) => run.record(
            "install-previous",
            t,
            out.code == Some(0),
            &format!("{} {}", old.facts.version, describe(&out, 0)),
            out.code,
            &out.output,
        ),
        Err(e) => run.record("install-previous", t, false, &e, None, ""),
    };
    if !ok
        || !smoke(run, container, &old.checks, "smoke-previous").await
        || !health_at(
            run,
            container,
            &old.place,
            &old.facts,
            &old.inputs,
            Action::Install,
            "health-previous",
        )
        .await
    {
        return;
    }

    // An upgrade that breaks the app: its health check is made to fail, so the rollback runs.
    let Some(backup) = upgrade(run, container, &old, &new, "upgrade-failing", 1).await else {
        return;
    };
    if !rollback(run, container, &old, &new, backup).await {
        return;
    }

    // The same upgrade for real, from the rolled-back installation.
    if upgrade(run, container, &old, &new, "upgrade", 2)
        .await
        .is_none()
        || !health_at(
            run,
            container,
            &new.place,
            &new.facts,
            &new.inputs,
            Action::Upgrade,
            "health-after-upgrade",
        )
        .await
        || !smoke(run, container, &new.checks, "smoke-after-upgrade").await
    {
        return;
    }
    let Some(uninstall) = &new.facts.uninstall_script else {
        return;
    };
    let upgraded = Subject {
        container,
        facts: &new.facts,
        inputs: &new.inputs,
        timeout: new.timeout(),
    };
    uninstall_and_compare(run, &upgraded, spec, uninstall, before, PURGE_AFTER_UPGRADE).await;
}

/// The earlier version, checked out from git and copied into the system, with the inputs the
/// installation keeps (those it declares) and its own tests.yml's checks (the current ones
/// when it had none). `None` when there is none (a skipped step) or it is unusable (failed).
async fn earlier_version(
    run: &mut Run<'_>,
    container: &Container,
    facts: &BundleFacts,
    spec: &TestSpec,
) -> Option<Version> {
    let t = Instant::now();
    let host_dir = run.config.installers_root.join(&facts.id);
    let into = run.config.work_root.join("previous").join(&facts.id);
    let current = facts.version.clone();
    let found = tokio::task::spawn_blocking(move || check_out(&host_dir, &current, &into)).await;
    let previous: Previous = match found {
        Ok(Ok(p)) => p,
        Ok(Err(Ok(none))) => {
            run.skip("upgrade", &none.reason());
            return None;
        }
        Ok(Err(Err(e))) => {
            run.record("previous-version", t, false, &e, None, "");
            return None;
        }
        Err(e) => {
            let e = format!("the git task failed: {e}");
            run.record("previous-version", t, false, &e, None, "");
            return None;
        }
    };
    let loaded = BundleFacts::load(&previous.dir)
        .map_err(|e| e.to_string())
        .and_then(|f| {
            load_bundle(&previous.dir)
                .map(|b| (f, b))
                .map_err(|_| "the earlier version does not load".to_owned())
        });
    let (old_facts, old_bundle) = match loaded {
        Ok(pair) => pair,
        Err(e) => {
            run.record("previous-version", t, false, &e, None, "");
            return None;
        }
    };
    let guest = format!("{GUEST_PREVIOUS}/{}", facts.id);
    if let Err(e) = container.copy_in(&previous.dir, &guest) {
        let e = format!("cannot copy {} into the system: {e}", previous.version);
        run.record("previous-version", t, false, &e, None, "");
        return None;
    }
    // As that version was proven: its own tests.yml's inputs and checks; without one, the
    // current inputs it declares and the current checks.
    let (inputs, checks) = match TestSpec::load(&previous.dir) {
        Ok(old_spec) => (old_spec.inputs, old_spec.checks),
        Err(_) => (
            spec.inputs
                .iter()
                .filter(|(name, _)| old_bundle.manifest.input(name).is_some())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            spec.checks.clone(),
        ),
    };
    // Its own test values may hold other secrets than the current ones: mask those too.
    let secrets: Vec<String> = old_facts
        .sensitive_inputs
        .iter()
        .filter_map(|name| inputs.get(name))
        .map(value_text)
        .collect();
    run.secrets.extend(secrets);
    run.record(
        "previous-version",
        t,
        true,
        &format!(
            "{} from commit {}, upgrading to {}",
            previous.version, previous.commit, facts.version
        ),
        None,
        "",
    );
    Some(Version {
        facts: old_facts,
        place: BundlePlace {
            host: previous.dir,
            guest,
        },
        inputs,
        checks,
    })
}

/// One upgrade from `old` to `new` as step `name`: the safety backup with the old version's
/// backup script (when it has one), then the new upgrade script (or install script). Returns
/// the backup directory (`Some(None)` without one), `None` when a part failed.
async fn upgrade(
    run: &mut Run<'_>,
    container: &Container,
    old: &Version,
    new: &Version,
    name: &str,
    attempt: u32,
) -> Option<Option<String>> {
    let t = Instant::now();
    let mut log = String::new();
    let mut parts = Vec::new();
    let mut backup = None;
    if let Some(script) = &old.facts.backup_script {
        let dir = match make_backup_dir(container, &format!("{}-upgrade-{attempt}", new.facts.id))
            .await
        {
            Ok(dir) => dir,
            Err(e) => {
                run.record(name, t, false, &e, None, "");
                return None;
            }
        };
        let step = StepFacts {
            action: Some(Action::Backup),
            instance: new.facts.id.clone(),
            backup_dir: Some(dir.clone()),
            ..StepFacts::default()
        };
        match script_step(container, old, script, &step, &mut log).await {
            Ok(()) => parts.push(format!("backup by {} {script} passed", old.facts.version)),
            Err(e) => {
                run.record(name, t, false, &format!("backup: {e}"), None, &log);
                return None;
            }
        }
        backup = Some(dir);
    }
    let script = new
        .facts
        .upgrade_script
        .clone()
        .unwrap_or_else(|| new.facts.install_script.clone());
    let step = StepFacts {
        action: Some(Action::Upgrade),
        instance: new.facts.id.clone(),
        previous_version: Some(old.facts.version.clone()),
        ..StepFacts::default()
    };
    if let Err(e) = script_step(container, new, &script, &step, &mut log).await {
        run.record(name, t, false, &format!("{script}: {e}"), None, &log);
        return None;
    }
    parts.push(format!("{} {script} passed", new.facts.version));
    if attempt == 1 {
        parts.push("its health check is made to fail".to_owned());
    }
    run.record(name, t, true, &parts.join("; "), Some(0), &log)
        .then_some(backup)
}

/// The runner's rollback after the failed upgrade, as step `rollback`, then the earlier
/// version's health check and smoke checks.
async fn rollback(
    run: &mut Run<'_>,
    container: &Container,
    old: &Version,
    new: &Version,
    backup: Option<String>,
) -> bool {
    let t = Instant::now();
    let mut log = String::new();
    let restore = old.facts.restore_script.as_ref().zip(backup);
    let (script, step, action) = match restore {
        Some((script, dir)) => (
            script.clone(),
            StepFacts {
                action: Some(Action::Restore),
                instance: new.facts.id.clone(),
                previous_version: Some(new.facts.version.clone()),
                backup_dir: Some(dir),
                ..StepFacts::default()
            },
            Action::Restore,
        ),
        None => (
            old.facts.install_script.clone(),
            StepFacts {
                action: Some(Action::Reconfigure),
                instance: new.facts.id.clone(),
                ..StepFacts::default()
            },
            Action::Reconfigure,
        ),
    };
    let ok = match script_step(container, old, &script, &step, &mut log).await {
        Ok(()) => {
            let detail = format!("back to {} by its {script}", old.facts.version);
            run.record("rollback", t, true, &detail, Some(0), &log)
        }
        Err(e) => run.record("rollback", t, false, &format!("{script}: {e}"), None, &log),
    };
    ok && health_at(
        run,
        container,
        &old.place,
        &old.facts,
        &old.inputs,
        action,
        "health-after-rollback",
    )
    .await
        && smoke(run, container, &old.checks, "smoke-after-rollback").await
}

/// Runs `script` of `version` with the environment of `step`, appending its output to `log`;
/// `Err` says how it ended when that was not exit 0.
async fn script_step(
    container: &Container,
    version: &Version,
    script: &str,
    step: &StepFacts,
    log: &mut String,
) -> Result<(), String> {
    let env = step_env(&version.place.host, &version.inputs, step)?;
    let out = run_script(container, &version.place, script, &env, version.timeout()).await?;
    log.push_str(&format!("$ {script} ({})\n", version.facts.version));
    log.push_str(&out.output);
    if out.code == Some(0) {
        Ok(())
    } else {
        Err(describe(&out, 0))
    }
}
