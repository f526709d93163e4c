//! The lifecycle steps after the reinstall: change settings (`reconfigure_inputs`), backup and
//! restore, uninstall keeping data, the leftovers check, install again over the kept data,
//! and last an uninstall with `PURGE=true` that must leave nothing at all.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use outfitter_contract::lifecycle::{Action, StepFacts};
use serde_json::Value;

use super::leftovers::Snapshot;
use super::lifecycle::{make_backup_dir, run_script, step_env};
use super::outcome::describe;
use super::prepare::BundlePlace;
use super::record::Run;
use super::steps::{health, install_and_check, smoke};
use crate::bundle::BundleFacts;
use crate::container::Container;
use crate::spec::TestSpec;

/// The lifecycle steps after a passed reinstall; `before` is the snapshot of the system
/// taken before the install. The first failing step ends the run.
pub(super) async fn run(
    run: &mut Run<'_>,
    container: &Container,
    facts: &BundleFacts,
    spec: &TestSpec,
    before: &Snapshot,
    timeout: Duration,
) {
    let inputs = spec.settled_inputs();
    let checks = spec.settled_checks();
    let subject = Subject {
        container,
        facts,
        inputs: &inputs,
        timeout,
    };
    if spec.reconfigure_inputs.is_some() {
        if !install_and_check(
            run,
            container,
            facts,
            spec,
            &inputs,
            checks,
            ("reconfigure", "smoke-after-reconfigure"),
        )
        .await
            || !health(
                run,
                container,
                facts,
                spec,
                &inputs,
                Action::Reconfigure,
                "health-after-reconfigure",
            )
            .await
        {
            return;
        }
    } else {
        run.skip("reconfigure", "tests.yml has no reconfigure_inputs");
    }

    match (&facts.backup_script, &facts.restore_script) {
        (Some(backup), Some(restore)) if spec.expect_exit == 0 => {
            let dir = match make_backup_dir(container, &facts.id).await {
                Ok(dir) => dir,
                Err(e) => {
                    run.record("backup", Instant::now(), false, &e, None, "");
                    return;
                }
            };
            let with_dir = |action| StepFacts {
                action: Some(action),
                instance: facts.id.clone(),
                backup_dir: Some(dir.clone()),
                ..StepFacts::default()
            };
            let step = with_dir(Action::Backup);
            if !script(run, &subject, backup, &step, "backup").await {
                return;
            }
            let step = with_dir(Action::Restore);
            if !script(run, &subject, restore, &step, "restore").await
                || !smoke(run, container, checks, "smoke-after-restore").await
                || !health(
                    run,
                    container,
                    facts,
                    spec,
                    &inputs,
                    Action::Restore,
                    "health-after-restore",
                )
                .await
            {
                return;
            }
        }
        (Some(_), Some(_)) => run.skip("backup", "the install is expected to refuse"),
        _ => run.skip("backup", "the bundle holds no data (no backup_script)"),
    }

    let Some(uninstall) = &facts.uninstall_script else {
        run.skip("uninstall", "the manifest has no uninstall_script");
        return;
    };
    if !uninstall_and_compare(run, &subject, spec, uninstall, before, UNINSTALL).await {
        return;
    }
    if !install_and_check(
        run,
        container,
        facts,
        spec,
        &inputs,
        checks,
        ("install-again", "smoke-after-install-again"),
    )
    .await
        || !health(
            run,
            container,
            facts,
            spec,
            &inputs,
            Action::Install,
            "health-after-install-again",
        )
        .await
    {
        return;
    }
    if uninstall_and_compare(run, &subject, spec, uninstall, before, PURGE).await {
        super::upgrade_steps::run(run, &subject, spec, before).await;
    }
}

/// An uninstall and the comparison after it: the step names, and whether it purges.
pub(super) struct Removal {
    pub uninstall: &'static str,
    pub leftovers: &'static str,
    pub purge: bool,
}

const UNINSTALL: Removal = Removal {
    uninstall: "uninstall",
    leftovers: "leftovers",
    purge: false,
};
const PURGE: Removal = Removal {
    uninstall: "purge",
    leftovers: "leftovers-after-purge",
    purge: true,
};

/// What a lifecycle script runs on and with: the system, the bundle, the inputs in force
/// (after the change of settings) and how long a script may take.
pub(super) struct Subject<'a> {
    pub container: &'a Container,
    pub facts: &'a BundleFacts,
    pub inputs: &'a BTreeMap<String, Value>,
    pub timeout: Duration,
}

/// Uninstalls, then compares the system with `before`, as the steps `removal` names.
pub(super) async fn uninstall_and_compare(
    run: &mut Run<'_>,
    subject: &Subject<'_>,
    spec: &TestSpec,
    uninstall: &str,
    before: &Snapshot,
    removal: Removal,
) -> bool {
    let (container, facts) = (subject.container, subject.facts);
    let purge = removal.purge;
    let (step_name, leftovers_name) = (removal.uninstall, removal.leftovers);
    let step = StepFacts {
        action: Some(Action::Uninstall),
        instance: facts.id.clone(),
        purge: Some(purge),
        ..StepFacts::default()
    };
    if !script(run, subject, uninstall, &step, step_name).await {
        return false;
    }
    let t = Instant::now();
    let after = match Snapshot::take(container).await {
        Ok(s) => s,
        Err(e) => return run.record(leftovers_name, t, false, &e, None, ""),
    };
    let left = after.leftovers(before, spec, purge);
    let detail = if left.is_empty() {
        if purge {
            "nothing left: the system is as fresh".to_owned()
        } else {
            "nothing left but what tests.yml keeps".to_owned()
        }
    } else {
        let names: Vec<String> = left
            .iter()
            .take(8)
            .map(|l| format!("{} {}", l.kind, l.name))
            .collect();
        let more = left.len().saturating_sub(names.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!("{} left over: {}{more}", left.len(), names.join(", "))
    };
    let ok = run.record(leftovers_name, t, left.is_empty(), &detail, None, "");
    if let Some(step) = run.steps.last_mut() {
        step.leftovers = left;
    }
    ok
}

/// Runs lifecycle `script` with the step's environment as step `name`.
async fn script(
    run: &mut Run<'_>,
    subject: &Subject<'_>,
    script: &str,
    step: &StepFacts,
    name: &str,
) -> bool {
    let t = Instant::now();
    let id = &subject.facts.id;
    let place = BundlePlace::current(run.config, id);
    let env = match step_env(&place.host, subject.inputs, step) {
        Ok(env) => env,
        Err(e) => return run.record(name, t, false, &e, None, ""),
    };
    match run_script(subject.container, &place, script, &env, subject.timeout).await {
        Ok(out) => {
            let ok = out.code == Some(0);
            run.record(name, t, ok, &describe(&out, 0), out.code, &out.output)
        }
        Err(e) => run.record(name, t, false, &e, None, ""),
    }
}
