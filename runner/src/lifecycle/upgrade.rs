//! The upgrade: a backup with the previous version's backup script (when it has one), the
//! new version's upgrade (or install) script, its health check, and on any failure a
//! rollback to the previous version from the runner's own copy of it, each phase entered in
//! the journal first so a crash anywhere ends upgraded or rolled back, never half.

use outfitter_contract::exit_policy::Ending;
use outfitter_contract::inputs::InputValues;
use outfitter_contract::lifecycle::{
    Action, LifecycleOrder, Outcome, Phase, PreviousBundle, StepFacts, backup_id,
};
use outfitter_contract::manifest::Bundle;
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::journal::Entry;
use super::steps::StepEnd;
use super::{Driven, Job, describe};
use crate::daemon::result::LifecycleEnd;
use crate::sandbox::Abort;

/// What the upgrade failed at, for the reason.
struct Failure {
    ending: Option<Ending>,
    what: String,
}

pub(super) async fn upgrade(mut job: Job<'_, '_>, order: &LifecycleOrder) -> Driven {
    let Some(previous) = order.previous.clone() else {
        let reason = "lifecycle.previous is required for an upgrade".to_owned();
        return job.cannot(reason).await;
    };
    let ready = job
        .stores
        .bundles
        .load(&previous.digest)
        .map_err(|e| format!("cannot load the version to roll back to: {e}"))
        .and_then(|old| kept_inputs(&old, job.values).map(|values| (old, values)));
    let (old, old_values) = match ready {
        Ok(r) => r,
        Err(e) => return cannot_roll_back(job, e).await,
    };
    let mut up = Upgrade {
        job,
        order,
        previous,
        old,
        old_values,
    };
    up.run().await
}

/// Without a way back the upgrade does not start; but when an earlier attempt had already
/// changed the installation, it is left half upgraded, and says so.
async fn cannot_roll_back(mut job: Job<'_, '_>, why: String) -> Driven {
    let journal = job.stores.journal.read(&job.env.job_id);
    job.stores.journal.remove(&job.env.job_id);
    match journal {
        Ok(Some(entry)) if entry.past_backup() => {
            let reason = format!(
                "an earlier attempt stopped during phase {} and there is no rollback: {why}; a person must look",
                entry.phase.as_str()
            );
            job.runner.note(&reason).await;
            Driven::Ended {
                ending: None,
                lifecycle: LifecycleEnd {
                    outcome: Some(Outcome::RollbackFailed),
                    backup_id: entry.backup_id,
                    no_retry: true,
                    reason: Some(reason),
                },
            }
        }
        _ => job.cannot(format!("nothing was upgraded: {why}")).await,
    }
}

/// The inputs the installation keeps, restricted to what the previous version declares and
/// validated against its manifest.
fn kept_inputs(old: &Bundle, values: &InputValues) -> Result<InputValues, String> {
    let kept: Map<String, Value> = values
        .0
        .iter()
        .filter(|(name, _)| old.manifest.input(name).is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    old.validate_inputs(&kept).map_err(|errors| {
        let list: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {} ({})", e.field, e.message, e.rule))
            .collect();
        format!(
            "the kept inputs do not validate against {} {}: {}",
            old.id(),
            old.manifest.version,
            list.join("; ")
        )
    })
}

struct Upgrade<'j, 'r, 'a> {
    job: Job<'r, 'a>,
    order: &'j LifecycleOrder,
    previous: PreviousBundle,
    old: Bundle,
    old_values: InputValues,
}

impl Upgrade<'_, '_, '_> {
    fn job_id(&self) -> String {
        self.job.env.job_id.clone()
    }

    /// Enters `phase` in the journal (on disk before the phase starts) and the record.
    async fn enter(&mut self, phase: Phase, backup: Option<&str>) -> Result<(), String> {
        let entry = Entry {
            phase,
            backup_id: backup.map(str::to_owned),
            previous: self.previous.clone(),
        };
        self.job
            .stores
            .journal
            .write(&self.job_id(), &entry)
            .map_err(|e| format!("cannot write the upgrade journal: {e}"))?;
        self.job.runner.phase(phase).await;
        Ok(())
    }

    async fn run(&mut self) -> Driven {
        let installation = self.order.installation_id.clone();
        match self.job.stores.journal.read(&self.job_id()) {
            Ok(Some(entry)) if entry.past_backup() => {
                self.job
                    .runner
                    .note(&format!(
                        "an earlier attempt of this upgrade stopped in phase {}; rolling back",
                        entry.phase.as_str()
                    ))
                    .await;
                let failure = Failure {
                    ending: None,
                    what: format!("the runner stopped during phase {}", entry.phase.as_str()),
                };
                return self.rollback(entry.backup_id, failure).await;
            }
            Ok(Some(entry)) => {
                if let Some(id) = &entry.backup_id {
                    self.job.stores.backups.discard(&installation, id);
                }
                self.job
                    .runner
                    .note("an earlier attempt stopped during the backup; starting over")
                    .await;
            }
            Ok(None) => {}
            Err(e) => {
                let failure = Failure {
                    ending: None,
                    what: format!("the upgrade journal of an earlier attempt is unreadable ({e})"),
                };
                return self.rollback(None, failure).await;
            }
        }
        let backup = match self.backup(&installation).await {
            Ok(b) => b,
            Err(d) => return d,
        };
        if let Err(e) = self.enter(Phase::Running, backup.as_deref()).await {
            return self.job.cannot(e).await;
        }
        let field = if self.job.bundle.manifest.upgrade_script.is_some() {
            "upgrade_script"
        } else {
            "install_script"
        };
        let facts = StepFacts {
            previous_version: Some(self.previous.version.clone()),
            ..self.job.facts(Action::Upgrade)
        };
        let (bundle, values) = (self.job.bundle, self.job.values);
        let end = self.job.script(bundle, values, field, facts.clone()).await;
        if end == StepEnd::Stopped {
            return Driven::Stopped;
        }
        if !end.passed() {
            let failure = Failure {
                ending: end.ending(),
                what: format!("{field} {}", describe(&end)),
            };
            return self.rollback(backup, failure).await;
        }
        if bundle.manifest.health_check.is_some() {
            if let Err(e) = self.enter(Phase::CheckingHealth, backup.as_deref()).await {
                tracing::warn!(error = %e, "checking health without a journal entry");
            }
            if let Some(h) = self.job.health(bundle, values, facts).await
                && !h.passed()
            {
                if h == StepEnd::Stopped {
                    return Driven::Stopped;
                }
                let failure = Failure {
                    ending: h.ending(),
                    what: format!("the health check {}", describe(&h)),
                };
                return self.rollback(backup, failure).await;
            }
        }
        self.job.stores.journal.remove(&self.job_id());
        Driven::of(
            end,
            LifecycleEnd {
                outcome: Some(Outcome::Done),
                backup_id: backup,
                no_retry: true,
                reason: None,
            },
        )
    }

    /// The safety backup with the previous version's backup script; `Ok(None)` when it has
    /// none, `Err` with the job's end when it failed (nothing was upgraded).
    async fn backup(&mut self, installation: &str) -> Result<Option<String>, Driven> {
        if self.old.manifest.backup_script.is_none() {
            return Ok(None);
        }
        let id = backup_id(&self.job.env.job_id, self.job.env.attempt);
        if let Err(e) = self.enter(Phase::BackingUp, Some(&id)).await {
            return Err(self.job.cannot(e).await);
        }
        let dir = match self.job.stores.backups.create(installation, &id) {
            Ok(d) => d,
            Err(e) => {
                self.job.stores.journal.remove(&self.job_id());
                let reason = format!("cannot create the backup directory: {e}");
                return Err(self.job.cannot(reason).await);
            }
        };
        let facts = StepFacts {
            backup_dir: Some(dir.display().to_string()),
            ..self.job.facts(Action::Backup)
        };
        let (old, values) = (&self.old, &self.old_values);
        let end = self.job.script(old, values, "backup_script", facts).await;
        if end == StepEnd::Stopped {
            return Err(Driven::Stopped);
        }
        if !end.passed() {
            self.job.stores.journal.remove(&self.job_id());
            self.job.stores.backups.discard(installation, &id);
            let reason = format!(
                "the backup before the upgrade {}; nothing was upgraded",
                describe(&end)
            );
            return Err(Driven::of(
                end,
                LifecycleEnd {
                    outcome: Some(Outcome::Unchanged),
                    reason: Some(reason),
                    no_retry: true,
                    ..LifecycleEnd::default()
                },
            ));
        }
        Ok(Some(id))
    }

    /// Back to the previous version: its restore script from the backup, or without one its
    /// install script with the kept inputs; then its health check. The backup stays.
    async fn rollback(&mut self, backup: Option<String>, failure: Failure) -> Driven {
        let leaving = self.job.bundle.manifest.version.clone();
        self.job
            .runner
            .note(&format!(
                "the upgrade to {leaving} failed ({}); rolling back to {}",
                failure.what, self.previous.version
            ))
            .await;
        if let Err(e) = self.enter(Phase::RollingBack, backup.as_deref()).await {
            tracing::warn!(error = %e, "rolling back without a journal entry");
        }
        // A cancel stops the upgrade, not its way back; a runner stopping still stops it.
        let no_cancel = shutdown_only(&self.job.runner.abort);
        let abort = std::mem::replace(&mut self.job.runner.abort, no_cancel);
        let installation = self.order.installation_id.clone();
        let restore_from = backup
            .as_deref()
            .filter(|_| self.old.manifest.restore_script.is_some())
            .and_then(|id| self.job.stores.backups.dir(&installation, id).ok());
        let (field, facts) = match &restore_from {
            Some(dir) => (
                "restore_script",
                StepFacts {
                    previous_version: Some(leaving.clone()),
                    backup_dir: Some(dir.display().to_string()),
                    ..self.job.facts(Action::Restore)
                },
            ),
            None => ("install_script", self.job.facts(Action::Reconfigure)),
        };
        let (old, values) = (&self.old, &self.old_values);
        let mut end = self.job.script(old, values, field, facts.clone()).await;
        if end.passed()
            && let Some(h) = self.job.health(old, values, facts).await
        {
            end = h;
        }
        self.job.runner.abort = abort;
        if end == StepEnd::Stopped {
            return Driven::Stopped;
        }
        self.job.stores.journal.remove(&self.job_id());
        let kept = backup
            .as_deref()
            .map(|id| format!("; the backup {id} is kept"))
            .unwrap_or_default();
        let (outcome, how) = if end.passed() {
            (
                Outcome::RolledBack,
                format!("rolled back to {}", self.previous.version),
            )
        } else {
            (
                Outcome::RollbackFailed,
                format!(
                    "the rollback to {} failed too ({}){kept}",
                    self.previous.version,
                    describe(&end)
                ),
            )
        };
        Driven::Ended {
            ending: failure.ending,
            lifecycle: LifecycleEnd {
                outcome: Some(outcome),
                backup_id: backup,
                no_retry: true,
                reason: Some(format!(
                    "the upgrade to {leaving} failed ({}); {how}",
                    failure.what
                )),
            },
        }
    }
}

/// A receiver that passes on [`Abort::Shutdown`] only.
fn shutdown_only(abort: &watch::Receiver<Option<Abort>>) -> watch::Receiver<Option<Abort>> {
    let (tx, rx) = watch::channel(None);
    let mut source = abort.clone();
    tokio::spawn(async move {
        if source
            .wait_for(|a| *a == Some(Abort::Shutdown))
            .await
            .is_ok()
        {
            let _ = tx.send(Some(Abort::Shutdown));
        }
        // A dropped sender reads as a cancel: keep it until nobody listens.
        tx.closed().await;
    });
    rx
}
