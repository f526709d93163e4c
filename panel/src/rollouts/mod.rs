//! Rollouts: one app, or one action on its installations, onto many servers in batches.
//!
//! A rollout is planned whole before anything starts ([`plan`]: the selection, the servers
//! that cannot take it and why, the batches), stored as one record with a revision
//! ([`store`]), and driven by every panel's [`driver`], which follows the rules of
//! [`machine`]. Nothing here knows HTTP.

pub mod driver;
pub mod error;
pub mod events;
pub mod machine;
pub mod model;
pub mod plan;
pub mod request;
pub mod store;

pub use error::{Error, Result};
pub use model::{Rollout, RolloutState, TargetState, Work};
pub use plan::{NewRollout, Plan};

use std::collections::BTreeMap;

use outfitter_contract::seal;
use serde_json::{Map, Value};

use self::model::HistoryEntry;
use crate::audit;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::state::AppState;

/// Attempts at a person's compare-and-swap against the driver's writes.
const CAS_TRIES: usize = 20;

/// The plan of a request, without starting anything (`dry_run`).
pub async fn preview(state: &AppState, req: &NewRollout) -> Result<Plan> {
    plan::plan(state, req).await
}

/// Plans and stores a rollout; the drivers start its first batch within a round.
pub async fn create(state: &AppState, req: NewRollout, caller: &Caller) -> Result<Rollout> {
    create_with_id(state, req, caller, outfitter_contract::ids::new_job_id()).await
}

/// Like [`create`], once per `key` (a schedule's due time): every caller with the same key
/// gets the same rollout, also one whose first caller died half-way.
pub async fn create_once(
    state: &AppState,
    req: NewRollout,
    caller: &Caller,
    key: &str,
) -> Result<Rollout> {
    let mut conn = state.redis.clone();
    let id = store::reserve_id(&mut conn, key, &outfitter_contract::ids::new_job_id()).await?;
    match store::load(&mut conn, &id).await {
        Ok(r) => return Ok(r),
        Err(Error::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    create_with_id(state, req, caller, id).await
}

async fn create_with_id(
    state: &AppState,
    req: NewRollout,
    caller: &Caller,
    id: String,
) -> Result<Rollout> {
    let plan = plan::plan(state, &req).await?;
    let (inputs, sealed) = seal_inputs(state, &id, &req.app_id, req.inputs)?;
    let now = now_ms();
    let r = Rollout {
        id,
        app_id: req.app_id,
        instance: req.instance,
        work: req.work,
        inputs,
        sealed,
        purge: req.purge,
        selection: req.selection,
        strategy: req.strategy,
        state: RolloutState::Running,
        targets: plan.targets,
        unfit: plan.unfit,
        next_batch_at: None,
        created_at: now,
        created_by: caller.name.clone(),
        updated_at: now,
        finished_at: None,
        announced: None,
        rev: 0,
    };
    let what = format!(
        "created by {}: {} {} on {} server(s){}",
        caller.name,
        r.work.as_str(),
        r.app_id,
        r.targets.len(),
        if r.unfit.is_empty() {
            String::new()
        } else {
            format!(", {} left out", r.unfit.len())
        }
    );
    let history = HistoryEntry {
        at: now,
        by: caller.name.clone(),
        what,
    };
    let mut conn = state.redis.clone();
    if !store::create(&mut conn, &r, &history).await? {
        // Another panel made it a moment ago under the same key.
        return store::load(&mut conn, &r.id).await;
    }
    let detail = format!(
        "{} {} servers={} batch_size={} max_failures={}",
        r.work.as_str(),
        r.app_id,
        r.targets.len(),
        r.strategy.batch_size,
        r.strategy.max_failures
    );
    audit::record(
        &mut conn,
        &caller.name,
        "rollout.create",
        &r.id,
        &caller.from,
        &detail,
    )
    .await;
    Ok(r)
}

/// What a person asks of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Abort,
    Retry,
}

impl Control {
    pub fn as_str(self) -> &'static str {
        match self {
            Control::Pause => "pause",
            Control::Resume => "resume",
            Control::Abort => "abort",
            Control::Retry => "retry",
        }
    }
}

/// Pauses, resumes, aborts or retries a rollout (see [`machine`] for what each does).
pub async fn control(
    state: &AppState,
    id: &str,
    what: Control,
    caller: &Caller,
) -> Result<Rollout> {
    let mut conn = state.redis.clone();
    for _ in 0..CAS_TRIES {
        let mut r = store::load(&mut conn, id).await?;
        let now = now_ms();
        let mut to_cancel = Vec::new();
        let detail = match what {
            Control::Pause => machine::pause(&mut r).map(|()| "paused".to_owned())?,
            Control::Resume => machine::resume(&mut r).map(|()| "resumed".to_owned())?,
            Control::Abort => {
                to_cancel = machine::abort(&mut r, &caller.name, now)?;
                "aborted".to_owned()
            }
            Control::Retry => {
                machine::retry(&mut r).map(|n| format!("retried: {n} server(s) run again"))?
            }
        };
        r.updated_at = now;
        let history = HistoryEntry {
            at: now,
            by: caller.name.clone(),
            what: format!("{detail} by {}", caller.name),
        };
        let Some(rev) = store::write(&mut conn, &r, Some(&history)).await? else {
            continue;
        };
        r.rev = rev;
        if what == Control::Retry {
            store::set_active(&mut conn, id, true).await?;
        }
        cancel_queued(state, &r, &to_cancel, caller).await;
        let action = format!("rollout.{}", what.as_str());
        audit::record(&mut conn, &caller.name, &action, id, &caller.from, &detail).await;
        return Ok(r);
    }
    Err(Error::Contended)
}

/// Cancels the jobs of an aborted rollout that still wait in a queue; one that started
/// meanwhile finishes, and the driver records how it ends.
async fn cancel_queued(state: &AppState, r: &Rollout, targets: &[usize], caller: &Caller) {
    for &i in targets {
        let Some(job) = &r.targets[i].job_id else {
            continue;
        };
        if let Err(e) = crate::jobs::control::cancel(state, job, caller).await {
            tracing::info!(rollout = %r.id, job = %job, error = %e, "a queued job of an aborted rollout was not canceled");
        }
    }
}

/// The input values the rollout's jobs get: plain ones as stored, secrets unsealed.
pub fn inputs(state: &AppState, r: &Rollout) -> Result<Map<String, Value>> {
    let mut values = r.inputs.clone();
    if let Some(s) = &r.sealed {
        let secrets = seal::open(&state.secret.installation_key(), &seal_context(&r.id), s)
            .map_err(|e| Error::Internal(format!("cannot open the rollout's secrets: {e}")))?;
        values.extend(secrets);
    }
    Ok(values)
}

fn seal_context(id: &str) -> String {
    format!("rollout:{id}")
}

/// Splits the inputs into the plain ones and the sealed secrets (by the catalog manifest).
fn seal_inputs(
    state: &AppState,
    id: &str,
    app_id: &str,
    inputs: Map<String, Value>,
) -> Result<(Map<String, Value>, Option<String>)> {
    let catalog = state.catalog.current();
    let sensitive = |k: &str| {
        catalog
            .get(app_id)
            .and_then(|b| b.manifest.input(k))
            .is_none_or(|i| i.is_sensitive())
    };
    let (secrets, plain): (BTreeMap<String, Value>, Map<String, Value>) = {
        let mut secrets = BTreeMap::new();
        let mut plain = Map::new();
        for (k, v) in inputs {
            if sensitive(&k) {
                secrets.insert(k, v);
            } else {
                plain.insert(k, v);
            }
        }
        (secrets, plain)
    };
    if secrets.is_empty() {
        return Ok((plain, None));
    }
    let sealed = seal::seal(
        &state.secret.installation_key(),
        &seal_context(id),
        &secrets,
    )
    .map_err(|e| Error::Internal(format!("cannot seal the rollout's secrets: {e}")))?;
    Ok((plain, Some(sealed)))
}
