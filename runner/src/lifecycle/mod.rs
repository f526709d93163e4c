//! The installation lifecycle on the runner: the steps each action runs (script, health
//! check), what an order must satisfy before anything runs, and where the runner keeps what
//! outlives a job (bundle copies, backups, upgrade journals). The upgrade is in [`upgrade`].

pub mod backups;
pub mod bundle_store;
pub mod journal;
pub mod steps;
mod upgrade;

use std::path::Path;

use outfitter_contract::envelope::Envelope;
use outfitter_contract::exit_policy::Ending;
use outfitter_contract::ids::validate_job_id;
use outfitter_contract::inputs::InputValues;
use outfitter_contract::lifecycle::{Action, Outcome, Phase, StepFacts, backup_id};
use outfitter_contract::manifest::Bundle;

use self::backups::Backups;
use self::bundle_store::BundleStore;
use self::journal::Journal;
use self::steps::{Step, StepEnd, StepRunner};
use crate::daemon::result::LifecycleEnd;
use crate::sandbox::Program;

/// What the runner keeps under its state directory for the lifecycle.
#[derive(Debug, Clone)]
pub struct Stores {
    pub bundles: BundleStore,
    pub backups: Backups,
    pub journal: Journal,
}

impl Stores {
    pub fn new(state_dir: &Path) -> Self {
        Stores {
            bundles: BundleStore::new(state_dir),
            backups: Backups::new(state_dir),
            journal: Journal::new(state_dir),
        }
    }
}

/// How the steps of an attempt ended.
#[derive(Debug, Clone)]
pub enum Driven {
    /// The runner is stopping: nothing is decided; the job is recovered at the next start.
    Stopped,
    /// The ending that decides the job (`None`: a step could not start), and what the
    /// lifecycle adds to it.
    Ended {
        ending: Option<Ending>,
        lifecycle: LifecycleEnd,
    },
}

impl Driven {
    fn of(end: StepEnd, lifecycle: LifecycleEnd) -> Self {
        match end {
            StepEnd::Stopped => Driven::Stopped,
            end => Driven::Ended {
                ending: end.ending(),
                lifecycle,
            },
        }
    }
}

/// Why a lifecycle order cannot run on this bundle here; checked with the others, before
/// anything runs. The panel only offers what applies, but the runner does not rely on it.
pub fn refusal(stores: &Stores, env: &Envelope, bundle: &Bundle) -> Option<String> {
    let order = env.lifecycle.as_ref()?;
    if validate_job_id(&order.installation_id).is_err() {
        return Some(format!(
            "lifecycle.installation_id {:?} is not a canonical UUID",
            order.installation_id
        ));
    }
    let needs = |field: &str| {
        bundle.script_for(field).is_none().then(|| {
            format!(
                "{} {} has no {field}: it cannot {}",
                bundle.id(),
                bundle.manifest.version,
                order.action
            )
        })
    };
    match order.action {
        Action::Install | Action::Reconfigure => None,
        Action::Uninstall => needs("uninstall_script"),
        Action::Backup => needs("backup_script"),
        Action::Restore => needs("restore_script").or_else(|| {
            let Some(id) = order.backup_id.as_deref() else {
                return Some("lifecycle.backup_id is required for a restore".to_owned());
            };
            match stores.backups.dir(&order.installation_id, id) {
                Err(reason) => Some(reason),
                Ok(dir) if !dir.is_dir() => Some(format!(
                    "lifecycle.backup_id {id:?}: no such backup of installation {} on this server",
                    order.installation_id
                )),
                Ok(_) => None,
            }
        }),
        Action::Upgrade => match &order.previous {
            None => Some("lifecycle.previous is required for an upgrade".to_owned()),
            Some(p) if !stores.bundles.has(&p.digest) => Some(format!(
                "lifecycle.previous: bundle {} ({} {}) is not in this runner's bundle store, so a failed upgrade could not be rolled back",
                p.digest,
                bundle.id(),
                p.version
            )),
            Some(_) => None,
        },
    }
}

/// One attempt of a job: its bundle, inputs and order, and the steps it runs.
pub struct Job<'r, 'a> {
    pub runner: &'r mut StepRunner<'a>,
    pub stores: &'r Stores,
    pub env: &'r Envelope,
    pub bundle: &'r Bundle,
    pub values: &'r InputValues,
}

impl Job<'_, '_> {
    fn instance(&self) -> String {
        self.env
            .lifecycle
            .as_ref()
            .map_or_else(|| self.bundle.manifest.id.clone(), |o| o.instance.clone())
    }

    fn facts(&self, action: Action) -> StepFacts {
        StepFacts {
            action: Some(action),
            instance: self.instance(),
            ..StepFacts::default()
        }
    }

    /// `Done` for a lifecycle job; a plain install's record has no outcome.
    fn done(&self) -> Option<Outcome> {
        self.env.lifecycle.is_some().then_some(Outcome::Done)
    }

    /// Runs the script a manifest field names.
    async fn script(
        &mut self,
        bundle: &Bundle,
        values: &InputValues,
        field: &str,
        facts: StepFacts,
    ) -> StepEnd {
        let Some(path) = bundle.script_for(field) else {
            self.runner
                .note(&format!("{} has no {field}", bundle.id()))
                .await;
            return StepEnd::NotStarted;
        };
        let step = Step {
            name: format!("{field} of {} {}", bundle.id(), bundle.manifest.version),
            bundle,
            values,
            program: Program::Script(path.to_path_buf()),
            facts,
            timeout: None,
        };
        self.runner.run(step).await
    }

    /// Runs the bundle's health check; `None` when it has none. The caller sets the phase (a
    /// rollback's check stays in `rolling_back`).
    async fn health(
        &mut self,
        bundle: &Bundle,
        values: &InputValues,
        facts: StepFacts,
    ) -> Option<StepEnd> {
        let check = bundle.manifest.health_check.as_ref()?;
        let step = Step {
            name: format!(
                "health check of {} {}",
                bundle.id(),
                bundle.manifest.version
            ),
            bundle,
            values,
            program: Program::Command(check.command.clone()),
            facts,
            timeout: Some(std::time::Duration::from_secs(check.timeout_seconds)),
        };
        Some(self.runner.run(step).await)
    }

    /// A script, then (for the actions that check health) the health check.
    async fn script_then_health(&mut self, field: &str, facts: StepFacts) -> Driven {
        let action = facts.action.unwrap_or(Action::Install);
        self.runner.phase(Phase::Running).await;
        let (bundle, values) = (self.bundle, self.values);
        let end = self.script(bundle, values, field, facts.clone()).await;
        if !end.passed() {
            return Driven::of(end, LifecycleEnd::default());
        }
        if action.checks_health() && bundle.manifest.health_check.is_some() {
            self.runner.phase(Phase::CheckingHealth).await;
        }
        if action.checks_health()
            && let Some(h) = self.health(bundle, values, facts).await
            && !h.passed()
        {
            if matches!(h, StepEnd::Stopped | StepEnd::Ended(Ending::Canceled)) {
                return Driven::of(h, LifecycleEnd::default());
            }
            return Driven::of(
                h.clone(),
                LifecycleEnd {
                    outcome: Some(Outcome::Unhealthy),
                    reason: Some(format!(
                        "the {action} passed but the health check did not ({})",
                        describe(&h)
                    )),
                    ..LifecycleEnd::default()
                },
            );
        }
        Driven::of(
            end,
            LifecycleEnd {
                outcome: self.done(),
                ..LifecycleEnd::default()
            },
        )
    }

    /// The steps of the job's action.
    pub async fn drive(mut self) -> Driven {
        let Some(order) = self.env.lifecycle.clone() else {
            return self
                .script_then_health("install_script", self.facts(Action::Install))
                .await;
        };
        match order.action {
            Action::Install | Action::Reconfigure => {
                self.script_then_health("install_script", self.facts(order.action))
                    .await
            }
            Action::Uninstall => {
                let facts = StepFacts {
                    purge: Some(order.purge),
                    ..self.facts(Action::Uninstall)
                };
                self.script_then_health("uninstall_script", facts).await
            }
            Action::Restore => {
                let id = order.backup_id.clone().unwrap_or_default();
                let dir = match self.stores.backups.dir(&order.installation_id, &id) {
                    Ok(dir) => dir,
                    Err(reason) => return self.cannot(reason).await,
                };
                let facts = StepFacts {
                    backup_dir: Some(dir.display().to_string()),
                    ..self.facts(Action::Restore)
                };
                self.script_then_health("restore_script", facts).await
            }
            Action::Backup => self.backup(&order.installation_id).await,
            Action::Upgrade => upgrade::upgrade(self, &order).await,
        }
    }

    async fn backup(&mut self, installation_id: &str) -> Driven {
        let id = backup_id(&self.env.job_id, self.env.attempt);
        let dir = match self.stores.backups.create(installation_id, &id) {
            Ok(dir) => dir,
            Err(e) => {
                return self
                    .cannot(format!("cannot create the backup directory: {e}"))
                    .await;
            }
        };
        self.runner.phase(Phase::BackingUp).await;
        let facts = StepFacts {
            backup_dir: Some(dir.display().to_string()),
            ..self.facts(Action::Backup)
        };
        let (bundle, values) = (self.bundle, self.values);
        let end = self.script(bundle, values, "backup_script", facts).await;
        if !end.passed() {
            // Nobody can restore from a backup that did not finish.
            if end != StepEnd::Stopped {
                self.stores.backups.discard(installation_id, &id);
            }
            return Driven::of(end, LifecycleEnd::default());
        }
        Driven::of(
            end,
            LifecycleEnd {
                outcome: Some(Outcome::Done),
                backup_id: Some(id),
                ..LifecycleEnd::default()
            },
        )
    }

    /// Ends the job before any script ran, with the runner's reason.
    async fn cannot(&mut self, reason: String) -> Driven {
        self.runner.note(&reason).await;
        Driven::Ended {
            ending: None,
            lifecycle: LifecycleEnd {
                outcome: Some(Outcome::Unchanged),
                reason: Some(reason),
                no_retry: true,
                ..LifecycleEnd::default()
            },
        }
    }
}

/// How a step that did not pass ended, for a reason.
fn describe(end: &StepEnd) -> String {
    match end {
        StepEnd::Ended(Ending::Exited(c)) => format!("exit {c}"),
        StepEnd::Ended(Ending::TimedOut) => "timed out".to_owned(),
        StepEnd::Ended(Ending::Canceled) => "canceled".to_owned(),
        StepEnd::NotStarted => "could not start".to_owned(),
        StepEnd::Stopped => "stopped with the runner".to_owned(),
    }
}
