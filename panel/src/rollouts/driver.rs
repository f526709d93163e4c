//! The driver: every panel runs one. Each round it takes the lease of every active rollout
//! it can, reads its servers' jobs, lets [`machine`] decide, queues the batch that is due
//! and writes the record back by compare-and-swap.
//!
//! Exactly once across a `kill -9`: a server's job is queued with the idempotency key
//! `rollout:<id>:<agent>:<attempt>`, so a driver that died between queueing and writing
//! the record (or two drivers at once) gets the same job back, never a second one.

use std::sync::Arc;
use std::time::Duration;

use outfitter_contract::installation::Refusal;
use outfitter_contract::job::{JobState, field};
use outfitter_contract::redis_keys::AgentRedisKeys;
use outfitter_redis::RedisConn;
use serde_json::Value;

use super::error::{Error, Result};
use super::machine::{self, Decision};
use super::model::{HistoryEntry, Rollout, RolloutState, TargetState, Work};
use super::{events, store};
use crate::auth::{Caller, Role, Via};
use crate::clock::now_ms;
use crate::installations::{self, Request};
use crate::jobs::enqueue::{self, NewJob};
use crate::state::AppState;

/// How often a driver looks at the active rollouts.
pub const ROUND: Duration = Duration::from_millis(500);
/// How long a driver's claim on a rollout lasts without being renewed.
const LEASE_MS: u64 = 5_000;

/// Drives every active rollout this panel can lease, forever.
pub async fn run(state: Arc<AppState>) {
    let holder = outfitter_contract::ids::new_job_id();
    let mut tick = tokio::time::interval(ROUND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut migrated = false;
    loop {
        tick.tick().await;
        let mut conn = state.redis.clone();
        if !migrated {
            match store::migrate_untagged(&mut conn).await {
                Ok(0) => migrated = true,
                Ok(n) => {
                    tracing::info!(keys = n, "renamed rollout keys to their hash-tagged names");
                    migrated = true;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "renaming old rollout keys failed; again next round");
                    continue;
                }
            }
        }
        let ids = match store::active_ids(&mut conn).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::debug!(error = %e, "reading the active rollouts failed");
                continue;
            }
        };
        for id in ids {
            match store::lease(&mut conn, &id, &holder, LEASE_MS).await {
                Ok(true) => {
                    if let Err(e) = drive(&state, &id).await {
                        tracing::warn!(rollout = %id, error = %e, "rollout round failed");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::debug!(rollout = %id, error = %e, "rollout lease failed"),
            }
        }
    }
}

/// One round of one rollout.
pub async fn drive(state: &AppState, id: &str) -> Result<()> {
    let mut conn = state.redis.clone();
    let mut r = match store::load(&mut conn, id).await {
        Ok(r) => r,
        Err(Error::NotFound(_)) => return store::set_active(&mut conn, id, false).await,
        Err(e) => return Err(e),
    };
    let now = now_ms();
    let mut changed = observe(&mut conn, &mut r).await?;
    let Decision {
        changed: decided,
        start,
        became,
    } = machine::advance(&mut r, now);
    changed |= decided;
    let mut history = became.map(|s| entry(now, describe_end(&r, s)));
    if !start.is_empty() {
        start_batch(state, &mut r, &start).await?;
        changed = true;
        let batch = r.targets[start[0]].batch;
        history = Some(entry(
            now,
            format!(
                "batch {} started: {}",
                batch + 1,
                start
                    .iter()
                    .map(|i| r.targets[*i].agent_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if changed {
        r.updated_at = now;
        let Some(rev) = store::write(&mut conn, &r, history.as_ref()).await? else {
            // A person's action came first: the next round decides again (queued jobs are
            // found again by their idempotency keys).
            return Ok(());
        };
        r.rev = rev;
    }
    if r.state.is_final() && r.announced != Some(r.state) {
        // Announced from the record, not from the change: a panel killed in between
        // announces again next round, into the same delivery (the event key is the end's).
        events::announce(state, &r).await?;
        r.announced = Some(r.state);
        match store::write(&mut conn, &r, None).await? {
            Some(rev) => r.rev = rev,
            None => return Ok(()),
        }
    }
    if r.state.is_final() && !r.targets.iter().any(|t| t.state.is_active()) {
        store::set_active(&mut conn, id, false).await?;
    }
    Ok(())
}

fn entry(at: i64, what: String) -> HistoryEntry {
    HistoryEntry {
        at,
        by: "panel".to_owned(),
        what,
    }
}

fn describe_end(r: &Rollout, s: RolloutState) -> String {
    let failed = r
        .targets
        .iter()
        .filter(|t| t.state == TargetState::Failed)
        .count();
    match s {
        RolloutState::Halted => format!(
            "halted: {failed} server(s) failed, max_failures is {}",
            r.strategy.max_failures
        ),
        RolloutState::Succeeded => format!(
            "succeeded on {} server(s), {failed} failed",
            r.targets.len() - failed
        ),
        other => other.as_str().to_owned(),
    }
}

/// Reads the state of every job out there, in one round trip; returns whether a server's
/// state changed.
async fn observe(conn: &mut RedisConn, r: &mut Rollout) -> Result<bool> {
    let active: Vec<(usize, String, String)> = r
        .targets
        .iter()
        .enumerate()
        .filter(|(_, t)| t.state.is_active())
        .filter_map(|(i, t)| Some((i, t.agent_id.clone(), t.job_id.clone()?)))
        .collect();
    if active.is_empty() {
        return Ok(false);
    }
    let mut pipe = redis::pipe();
    for (_, agent, job) in &active {
        pipe.hget(AgentRedisKeys::new(agent).job(job), field::STATE);
    }
    let states: Vec<Option<String>> = pipe.query_async(conn).await?;
    let mut changed = false;
    for ((i, _, _), state) in active.into_iter().zip(states) {
        let job_state = match state.as_deref().map(str::parse::<JobState>) {
            Some(Ok(s)) => s,
            // A job record that is gone (deleted by hand, or by the retention sweep long
            // after) cannot end any more: its server failed.
            None => JobState::Canceled,
            Some(Err(_)) => continue,
        };
        changed |= machine::observe(r, i, job_state);
    }
    Ok(changed)
}

/// The caller a rollout's jobs are queued as.
pub fn caller(r: &Rollout) -> Caller {
    Caller {
        name: r.caller_name(),
        role: Role::Operator,
        via: Via::Bearer,
        from: "rollout".to_owned(),
    }
}

/// Queues the job of each target in `start`. A server whose job cannot be queued (its
/// installation went busy, the agent was removed) fails with the reason; Redis being away
/// ends the round with nothing written.
async fn start_batch(state: &AppState, r: &mut Rollout, start: &[usize]) -> Result<()> {
    let inputs = super::inputs(state, r)?;
    let who = caller(r);
    for &i in start {
        let key = format!(
            "rollout:{}:{}:{}",
            r.id, r.targets[i].agent_id, r.targets[i].attempt
        );
        let queued = queue_one(state, r, i, inputs.clone(), &who, &key).await;
        let t = &mut r.targets[i];
        match queued {
            Ok(job) => {
                t.state = TargetState::Queued;
                if let Some(l) = &job.lifecycle {
                    t.installation_id = Some(l.installation_id.clone());
                }
                t.job_id = Some(job.id);
                t.reason = None;
            }
            Err(QueueError::Retry(e)) => return Err(e),
            Err(QueueError::Refused(reason)) => {
                t.state = TargetState::Failed;
                t.reason = Some(format!("its job could not be queued: {reason}"));
            }
        }
    }
    Ok(())
}

enum QueueError {
    /// Try again next round (the store is away).
    Retry(Error),
    /// The server cannot take it: it fails.
    Refused(String),
}

async fn queue_one(
    state: &AppState,
    r: &Rollout,
    i: usize,
    inputs: serde_json::Map<String, Value>,
    who: &Caller,
    key: &str,
) -> Result<outfitter_contract::job::JobRecord, QueueError> {
    let t = &r.targets[i];
    let done = match (r.work, &t.installation_id) {
        (Work::Install, _) => {
            let job = NewJob {
                app_id: r.app_id.clone(),
                agent_id: t.agent_id.clone(),
                inputs,
                instance: r.instance.clone(),
                on: None,
                pinned: None,
            };
            enqueue::enqueue(state, &job, who, Some(key))
                .await
                .map_err(installations::Error::from)
        }
        (work, Some(inst)) => {
            let req = match work {
                Work::Upgrade => Request::Upgrade {
                    version: None,
                    inputs,
                },
                Work::Reconfigure => Request::Reconfigure { inputs },
                _ => Request::Uninstall {
                    purge: r.purge,
                    force: false,
                },
            };
            installations::actions::request(state, inst, req, None, who, Some(key)).await
        }
        (_, None) => {
            return Err(QueueError::Refused(
                "no installation was found when the rollout was planned".to_owned(),
            ));
        }
    };
    match done {
        Ok(e) => Ok(e.job),
        // Our own job, queued by a driver that died before it wrote the record: the
        // installation is busy with it.
        Err(installations::Error::Refused(Refusal::Busy(job_id))) => {
            let mut conn = state.redis.clone();
            match crate::jobs::store::load(&mut conn, &job_id).await {
                Ok(job) if job.created_by.as_deref() == Some(who.name.as_str()) => Ok(job),
                Ok(_) => Err(QueueError::Refused(format!(
                    "the installation is busy with job {job_id}"
                ))),
                Err(e) => Err(QueueError::Retry(e.into())),
            }
        }
        Err(e) if is_transient(&e) => Err(QueueError::Retry(e.into())),
        Err(e) => Err(QueueError::Refused(e.to_string())),
    }
}

fn is_transient(e: &installations::Error) -> bool {
    match e {
        installations::Error::Store(_) | installations::Error::Internal(_) => true,
        installations::Error::Job(j) => matches!(
            **j,
            crate::jobs::Error::Store(_) | crate::jobs::Error::Internal(_)
        ),
        _ => false,
    }
}
