//! Starting an action on an installation. [`begin`] is the step of enqueueing that ties a new
//! job to its installation (creating it for a first install); [`request`] is what the pages and
//! the API call for change settings, upgrade, uninstall, backup and restore: it checks that the
//! action applies, rebuilds the inputs the installation runs with, and enqueues the job.

use std::collections::BTreeMap;

use outfitter_contract::installation::{self, InstallationState, Refusal};
use outfitter_contract::job::REDACTED;
use outfitter_contract::lifecycle::{self, Action, LifecycleOrder, PreviousBundle};
use outfitter_contract::manifest::{Bundle, Manifest};
use outfitter_contract::{ids, limits};
use outfitter_redis::RedisConn;
use serde_json::{Map, Value};

use super::error::{Error, Result};
use super::model::{HistoryEntry, Installation, Pending};
use super::settle::{settle, version_step};
use super::{secrets, store};
use crate::auth::Caller;
use crate::jobs::enqueue::{self, Enqueued, NewJob};
use crate::state::AppState;

/// An action on an existing installation, as a job request carries it.
#[derive(Debug, Clone)]
pub struct OnInstallation {
    pub installation_id: String,
    pub action: Action,
    /// The revision the caller saw (a form's hidden field); `None` skips the staleness check.
    pub rev: Option<u64>,
    pub purge: bool,
    pub backup_id: Option<String>,
}

/// What a person asks of an installation.
#[derive(Debug, Clone)]
pub enum Request {
    /// New values; a secret left out (or empty, or `REDACTED`) keeps its stored value.
    Reconfigure {
        inputs: Map<String, Value>,
    },
    /// To the catalog's version (`version`, when given, must be it); `inputs` answers what
    /// the new version asks for that the old one did not.
    Upgrade {
        version: Option<String>,
        inputs: Map<String, Value>,
    },
    /// `force` goes ahead although other installations on the server stand on this one.
    Uninstall {
        purge: bool,
        force: bool,
    },
    Backup,
    Restore {
        backup_id: String,
    },
}

impl Request {
    fn action(&self) -> Action {
        match self {
            Request::Reconfigure { .. } => Action::Reconfigure,
            Request::Upgrade { .. } => Action::Upgrade,
            Request::Uninstall { .. } => Action::Uninstall,
            Request::Backup => Action::Backup,
            Request::Restore { .. } => Action::Restore,
        }
    }
}

/// The manifest of the version the installation runs: the catalog's when it is that
/// version, else the one the installation kept.
pub fn installed_manifest<'a>(
    inst: &'a Installation,
    bundle: Option<&'a Bundle>,
) -> Option<&'a Manifest> {
    match bundle {
        Some(b) if b.digest == inst.digest => Some(&b.manifest),
        _ => inst.manifest.as_ref(),
    }
}

/// Checks that `action` can be asked of the installation as it stands, with this catalog
/// bundle: the pages offer exactly the actions this accepts.
pub fn applies(inst: &Installation, bundle: Option<&Bundle>, action: Action) -> Result<()> {
    if let Some(p) = &inst.pending {
        return Err(Refusal::Busy(p.job_id.clone()).into());
    }
    installation::may_start(inst.state, action)?;
    if action == Action::Upgrade {
        return match bundle {
            Some(b) if b.digest != inst.digest => Ok(()),
            Some(_) => Err(Error::NotApplicable(format!(
                "{} {} is the newest version the catalog holds",
                inst.app_id, inst.version
            ))),
            None => Err(Error::NotApplicable(format!(
                "the catalog no longer offers {}",
                inst.app_id
            ))),
        };
    }
    let Some(m) = installed_manifest(inst, bundle) else {
        return Err(Error::NotApplicable(format!(
            "the manifest of {} {} is not known to this panel; upgrade it first",
            inst.app_id, inst.version
        )));
    };
    match action {
        Action::Uninstall if m.uninstall_script.is_none() => Err(Error::NotApplicable(format!(
            "{} {} has no uninstall script",
            inst.app_id, inst.version
        ))),
        Action::Backup | Action::Restore if m.backup_script.is_none() => {
            Err(Error::NotApplicable(format!(
                "{} {} has no backup and restore scripts",
                inst.app_id, inst.version
            )))
        }
        _ => Ok(()),
    }
}

/// Which actions a page offers for the installation now.
pub fn offered(inst: &Installation, bundle: Option<&Bundle>) -> Vec<Action> {
    [
        Action::Reconfigure,
        Action::Upgrade,
        Action::Backup,
        Action::Restore,
        Action::Uninstall,
    ]
    .into_iter()
    .filter(|a| applies(inst, bundle, *a).is_ok())
    .filter(|a| *a != Action::Restore || !inst.backups.is_empty())
    .collect()
}

/// Enqueues the job of a request on installation `id`. With an `idempotency_key` (a rollout's
/// or a schedule's, naming the one run it belongs to), a request seen before returns the
/// first job instead of queueing another.
pub async fn request(
    state: &AppState,
    id: &str,
    req: Request,
    rev: Option<u64>,
    caller: &Caller,
    idempotency_key: Option<&str>,
) -> Result<Enqueued> {
    let mut conn = state.redis.clone();
    let inst = super::settle::current(&mut conn, id).await?;
    check_rev(&inst, rev)?;
    let catalog = state.catalog.current();
    let bundle = catalog.get(&inst.app_id);
    let action = req.action();
    applies(&inst, bundle, action)?;
    // An upgrade runs the catalog's version; every other action the installed one, from the
    // catalog while it holds that version, else pinned to the manifest the installation kept.
    let (manifest, pinned) = match (action, bundle) {
        (Action::Upgrade, Some(b)) => (&b.manifest, None),
        (_, Some(b)) if b.digest == inst.digest => (&b.manifest, None),
        _ => {
            let m = installed_manifest(&inst, bundle).expect("applies() checked the manifest");
            (
                m,
                Some(enqueue::Pinned {
                    manifest: m.clone(),
                    digest: inst.digest.clone(),
                }),
            )
        }
    };
    if let Request::Upgrade {
        version: Some(v), ..
    } = &req
        && *v != manifest.version
    {
        return Err(Error::VersionNotFound(format!(
            "the catalog holds {} {}, not {v}",
            inst.app_id, manifest.version
        )));
    }
    if let Request::Uninstall { force, .. } = &req {
        super::dependencies::check_uninstall(&mut conn, &catalog.catalog, &inst, *force).await?;
    }
    if action == Action::Upgrade {
        super::dependencies::check_requirements(&mut conn, manifest, &inst.agent_id).await?;
    }
    let kept = kept_inputs(state, &inst)?;
    let (inputs, purge, backup_id) = match req {
        Request::Reconfigure { inputs } => (overlay(kept, inputs, manifest), false, None),
        Request::Upgrade { inputs, .. } => (overlay(kept, inputs, manifest), false, None),
        Request::Uninstall { purge, .. } => (kept, purge, None),
        Request::Backup => (kept, false, None),
        Request::Restore { backup_id } => {
            check_backup_id(&backup_id)?;
            if !inst.backups.iter().any(|b| b.id == backup_id) {
                return Err(Error::BackupNotFound(backup_id));
            }
            (kept, false, Some(backup_id))
        }
    };
    let job = NewJob {
        app_id: inst.app_id.clone(),
        agent_id: inst.agent_id.clone(),
        inputs,
        instance: Some(inst.instance.clone()),
        on: Some(OnInstallation {
            installation_id: inst.id.clone(),
            action,
            rev: Some(inst.rev),
            purge,
            backup_id,
        }),
        pinned,
    };
    Ok(enqueue::enqueue(state, &job, caller, idempotency_key).await?)
}

fn check_rev(inst: &Installation, rev: Option<u64>) -> Result<()> {
    match rev {
        Some(seen) if seen != inst.rev => Err(Error::Stale {
            seen,
            current: inst.rev,
        }),
        _ => Ok(()),
    }
}

/// The values the installation runs with: plain ones as stored, secrets unsealed.
fn kept_inputs(state: &AppState, inst: &Installation) -> Result<Map<String, Value>> {
    let mut values: Map<String, Value> = inst
        .inputs
        .iter()
        .filter(|(_, v)| v.as_str() != Some(REDACTED))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in secrets::open(state, &inst.id, inst.sealed.as_deref())? {
        values.insert(k, v);
    }
    Ok(values)
}

/// New values over the kept ones: a secret sent empty or as `REDACTED` keeps its value; an
/// input the manifest does not declare (any more) is dropped, so validation judges only what
/// the version being run asks for.
fn overlay(
    mut kept: Map<String, Value>,
    new: Map<String, Value>,
    manifest: &Manifest,
) -> Map<String, Value> {
    for (k, v) in new {
        let secret = manifest.input(&k).is_some_and(|i| i.is_sensitive());
        let blank = v.is_null() || v.as_str().is_some_and(|s| s.is_empty() || s == REDACTED);
        if secret && blank {
            continue;
        }
        kept.insert(k, v);
    }
    kept.retain(|k, _| manifest.input(k).is_some());
    kept
}

/// Validates an instance name: the app id unless the manifest allows several instances,
/// then a short slug.
fn instance_name(manifest: &Manifest, asked: Option<&str>) -> Result<String> {
    let name = asked.unwrap_or(&manifest.id);
    if !manifest.multiple_instances && name != manifest.id {
        return Err(Error::NotApplicable(format!(
            "{} allows one instance per server; leave instance empty",
            manifest.id
        )));
    }
    let ok = !name.is_empty()
        && name.chars().count() <= limits::MAX_INSTANCE_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if !ok {
        return Err(Error::InvalidParameter(format!(
            "instance {name:?} must be 1 to {} characters of a-z, 0-9 and '-'",
            limits::MAX_INSTANCE_CHARS
        )));
    }
    Ok(name.to_owned())
}

/// The step of enqueueing that ties job `job_id` to its installation, before the job is
/// written: marks the installation (created for a first install) as acted on by this job and
/// returns the order the envelope carries. A plain install of an instance that is installed
/// already is a change of its settings.
#[allow(clippy::too_many_arguments)]
pub async fn begin(
    state: &AppState,
    conn: &mut RedisConn,
    manifest: &Manifest,
    digest: &str,
    req: &NewJob,
    values: &BTreeMap<String, Value>,
    job_id: &str,
    caller: &Caller,
    now: i64,
) -> Result<LifecycleOrder> {
    // A write that lost a race (jobs queued at once for one instance, two first installs, an
    // idempotent request taken over) reads again: it then queues behind the winner, or finds
    // its own job. A short random pause spreads writers that collided.
    let mut last = None;
    for _ in 0..BEGIN_ATTEMPTS {
        match begin_once(
            state, conn, manifest, digest, req, values, job_id, caller, now,
        )
        .await
        {
            Err(Error::Stale { seen, current }) if req.on.is_none() => {
                last = Some(Error::Stale { seen, current });
                let pause = u64::from(random_byte()) * 20;
                tokio::time::sleep(std::time::Duration::from_micros(pause)).await;
            }
            done => return done,
        }
    }
    Err(last.expect("the loop ran"))
}

/// How often a plain job request tries to join an installation that others write at the
/// same moment (each try is a read and a compare-and-swap).
const BEGIN_ATTEMPTS: usize = 50;

fn random_byte() -> u8 {
    let mut b = [0u8; 1];
    // Without randomness the pause is only not spread; the retry still happens.
    let _ = getrandom::fill(&mut b);
    b[0]
}

#[allow(clippy::too_many_arguments)]
async fn begin_once(
    state: &AppState,
    conn: &mut RedisConn,
    manifest: &Manifest,
    digest: &str,
    req: &NewJob,
    values: &BTreeMap<String, Value>,
    job_id: &str,
    caller: &Caller,
    now: i64,
) -> Result<LifecycleOrder> {
    let (existing, on) = match &req.on {
        Some(on) => {
            let inst = super::settle::current(conn, &on.installation_id).await?;
            if inst.agent_id != req.agent_id || inst.app_id != req.app_id {
                return Err(Error::InvalidParameter(format!(
                    "job for {} on {} does not belong to installation {}",
                    req.app_id, req.agent_id, inst.id
                )));
            }
            check_rev(&inst, on.rev)?;
            (Some(inst), Some(on.clone()))
        }
        None => {
            let instance = instance_name(manifest, req.instance.as_deref())?;
            let found = store::find_instance(conn, &req.agent_id, &req.app_id, &instance).await?;
            match found {
                Some(inst) => (Some(settle(conn, inst).await?), None),
                None => (None, None),
            }
        }
    };
    // This very job began already (an idempotent request taken over by another): its order.
    if let Some(inst) = &existing
        && let Some(p) = inst.pending.as_ref().filter(|p| p.job_id == job_id)
    {
        let previous = (p.action == Action::Upgrade).then(|| PreviousBundle {
            version: inst.version.clone(),
            digest: inst.digest.clone(),
        });
        return Ok(LifecycleOrder {
            installation_id: inst.id.clone(),
            action: p.action,
            instance: inst.instance.clone(),
            previous,
            backup_id: on.as_ref().and_then(|o| o.backup_id.clone()),
            purge: on.as_ref().is_some_and(|o| o.purge),
        });
    }
    let action = match (&existing, &on) {
        (_, Some(on)) => on.action,
        // Behind a pending first install, this is still the install (with other values).
        (Some(inst), None)
            if inst
                .pending
                .as_ref()
                .is_some_and(|p| p.action == Action::Install)
                || inst.state == InstallationState::Uninstalled =>
        {
            Action::Install
        }
        (Some(_), None) => Action::Reconfigure,
        (None, None) => Action::Install,
    };
    if action == Action::Install {
        super::dependencies::check_requirements(conn, manifest, &req.agent_id).await?;
    }
    let (plain, secret): (BTreeMap<_, _>, BTreeMap<_, _>) = values
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(k, _)| !manifest.input(k).is_some_and(|i| i.is_sensitive()));
    let shown =
        outfitter_contract::job::write::shown_inputs(&plain, secret.keys().map(String::as_str));
    let mut superseded = None;
    let mut inst = match existing {
        Some(mut inst) => {
            match (&inst.pending, &on) {
                // An explicit action waits for none: the caller retries after the job ends.
                (Some(p), Some(_)) => return Err(Refusal::Busy(p.job_id.clone()).into()),
                // A plain `POST /jobs` queues behind the pending job, as jobs always did: the
                // installation follows the newer job, from where the older one started.
                (Some(p), None) => {
                    inst.state = p.before;
                    superseded = inst.pending.take();
                }
                (None, _) => {}
            }
            if superseded.is_none() {
                installation::may_start(inst.state, action)?;
            }
            inst
        }
        None => Installation {
            id: ids::new_job_id(),
            agent_id: req.agent_id.clone(),
            app_id: req.app_id.clone(),
            instance: instance_name(manifest, req.instance.as_deref())?,
            version: manifest.version.clone(),
            digest: digest.to_owned(),
            manifest: Some(manifest.clone()),
            state: InstallationState::Installing,
            inputs: shown.clone(),
            sealed: None,
            created_at: now,
            created_by: caller.name.clone(),
            updated_at: now,
            backups: Vec::new(),
            pending: None,
            rev: 0,
        },
    };
    let previous = (action == Action::Upgrade).then(|| PreviousBundle {
        version: inst.version.clone(),
        digest: inst.digest.clone(),
    });
    let sealed = secrets::seal_for(state, &inst.id, &secret)?;
    let before = match &superseded {
        Some(p) => p.before,
        None if inst.rev == 0 => InstallationState::Installing,
        None => inst.state,
    };
    inst.pending = Some(Pending {
        job_id: job_id.to_owned(),
        action,
        before,
        version: manifest.version.clone(),
        digest: digest.to_owned(),
        manifest: manifest.clone(),
        inputs: shown,
        sealed,
        since: now,
        by: caller.name.clone(),
    });
    inst.state = InstallationState::during(action);
    inst.updated_at = now;
    let entry = HistoryEntry {
        at: now,
        action,
        job_id: job_id.to_owned(),
        by: caller.name.clone(),
        result: "queued".into(),
        version: version_step(
            previous.as_ref().map_or("", |p| p.version.as_str()),
            &manifest.version,
        ),
    };
    let written = if inst.rev == 0 {
        store::create(conn, &inst, &entry).await?
    } else {
        store::write(conn, &inst, Some(&entry)).await?
    };
    let Some(_) = written else {
        // Someone else acted on it between our read and our write.
        let current = store::load(conn, &inst.id)
            .await
            .map(|i| i.rev)
            .unwrap_or(0);
        return Err(Error::Stale {
            seen: inst.rev,
            current,
        });
    };
    store::mark_pending(conn, &inst.id).await?;
    Ok(LifecycleOrder {
        installation_id: inst.id,
        action,
        instance: inst.instance,
        previous,
        backup_id: on.as_ref().and_then(|o| o.backup_id.clone()),
        purge: on.as_ref().is_some_and(|o| o.purge),
    })
}

/// The name a restore's backup must have, checked before it reaches the runner.
pub fn check_backup_id(id: &str) -> Result<()> {
    if lifecycle::is_backup_id(id) {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "backup id {id:?} is not one a backup job reported"
        )))
    }
}
