//! Settling: when the job acting on an installation has ended, its end decides the
//! installation's state ([`outfitter_contract::installation::settle`]). The job record is the
//! durable truth, so settling is safe to repeat and to run from any panel: whoever writes
//! first (compare-and-swap on the revision) settles, the others see it done.

use std::collections::HashMap;
use std::time::Duration;

use outfitter_contract::installation::{self, InstallationState, JobEnd};
use outfitter_contract::job::{JobRecord, JobState};

use super::error::Result;
use super::model::{Backup, HistoryEntry, Installation};
use super::store;
use crate::clock::now_ms;
use outfitter_redis::RedisConn;

/// How long a pending job may be missing before the installation counts it as never queued
/// (the panel died between marking the installation and writing the job).
pub const MISSING_JOB_GRACE_MS: i64 = 60_000;
/// How often the background settler looks at the installations with a pending job.
pub const SETTLE_EVERY: Duration = Duration::from_secs(2);

/// The installation as it stands now: settled if its job has ended. While the job runs, the
/// state shown follows the job's phase (an upgrade that rolls back shows `rolling_back`).
pub async fn current(conn: &mut RedisConn, id: &str) -> Result<Installation> {
    let inst = store::load(conn, id).await?;
    settle(conn, inst).await
}

/// Settles `inst` if its job has ended; returns it as it stands.
pub async fn settle(conn: &mut RedisConn, inst: Installation) -> Result<Installation> {
    settle_read(conn, inst, None).await
}

/// [`settle`], with the pending job's record already read (`read`) for the first look.
async fn settle_read(
    conn: &mut RedisConn,
    mut inst: Installation,
    mut read: Option<HashMap<String, String>>,
) -> Result<Installation> {
    for _ in 0..5 {
        let Some(pending) = inst.pending.clone() else {
            return Ok(inst);
        };
        let fields = match read.take() {
            Some(fields) => fields,
            None => store::job_fields(conn, &inst.agent_id, &pending.job_id).await?,
        };
        let end = if fields.is_empty() {
            if now_ms() - pending.since < MISSING_JOB_GRACE_MS {
                return Ok(inst);
            }
            JobEnd {
                state: JobState::Canceled,
                outcome: None,
                ran: false,
            }
        } else {
            let job = JobRecord::from_fields(&fields)
                .map_err(|e| super::Error::Internal(e.to_string()))?;
            if !job.state.is_terminal() {
                let phase = job.lifecycle.as_ref().and_then(|l| l.phase);
                inst.state = InstallationState::shown_during(pending.action, phase);
                return Ok(inst);
            }
            let lc = job.lifecycle.as_ref();
            if let Some(backup) = lc.and_then(|l| l.backup_id.clone())
                && !inst.backups.iter().any(|b| b.id == backup)
            {
                inst.backups.push(Backup {
                    id: backup,
                    version: inst.version.clone(),
                    job_id: job.id.clone(),
                    at: job.finished_at.unwrap_or_else(now_ms),
                });
            }
            JobEnd {
                state: job.state,
                outcome: lc.and_then(|l| l.outcome),
                ran: job.started_at.is_some() || job.attempts > 0,
            }
        };
        let s = installation::settle(pending.action, pending.before, end);
        let from = inst.version.clone();
        if s.adopt {
            inst.version = pending.version.clone();
            inst.digest = pending.digest.clone();
            inst.manifest = Some(pending.manifest.clone());
            inst.inputs = pending.inputs.clone();
            inst.sealed = pending.sealed.clone();
        }
        inst.state = s.state;
        inst.pending = None;
        inst.updated_at = now_ms();
        let result = match end.outcome {
            Some(o) if o != outfitter_contract::lifecycle::Outcome::Done => {
                format!("{} ({})", end.state, o.as_str())
            }
            _ if !end.ran && fields.is_empty() => "never queued".to_owned(),
            _ => end.state.to_string(),
        };
        let entry = HistoryEntry {
            at: inst.updated_at,
            action: pending.action,
            job_id: pending.job_id.clone(),
            by: pending.by.clone(),
            result,
            version: version_step(&from, &pending.version),
        };
        match store::write(conn, &inst, Some(&entry)).await? {
            Some(rev) => {
                inst.rev = rev;
                store::unmark_pending(conn, &inst.id).await?;
                crate::webhooks::watch::installation_settled(
                    conn,
                    &inst,
                    pending.action,
                    &end,
                    &pending.job_id,
                )
                .await;
                tracing::info!(installation = %inst.id, state = %inst.state, job = %pending.job_id, "installation settled");
                return Ok(inst);
            }
            // Another panel (or request) wrote first: read what it made of it.
            None => inst = store::load(conn, &inst.id).await?,
        }
    }
    Ok(inst)
}

/// `1.0.0`, or `1.0.0 → 2.0.0` when a job went from one version to another.
pub fn version_step(from: &str, to: &str) -> String {
    if from == to || from.is_empty() {
        to.to_owned()
    } else {
        format!("{from} → {to}")
    }
}

/// Settles every installation whose job may have ended, now and then, so states change
/// without anyone looking (and before webhooks and rollouts read them).
pub async fn run_settler(mut conn: RedisConn) {
    let conn = &mut conn;
    loop {
        tokio::time::sleep(SETTLE_EVERY).await;
        let ids = match store::pending_ids(conn).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the installations to settle");
                continue;
            }
        };
        for id in ids {
            match store::load(conn, &id).await {
                Ok(inst) if inst.pending.is_none() => {
                    let _ = store::unmark_pending(conn, &id).await;
                }
                Ok(inst) => {
                    if let Err(e) = settle(conn, inst).await {
                        tracing::warn!(installation = %id, error = %e, "cannot settle");
                    }
                }
                Err(super::Error::NotFound(_)) => {
                    let _ = store::unmark_pending(conn, &id).await;
                }
                Err(e) => tracing::warn!(installation = %id, error = %e, "cannot load"),
            }
        }
    }
}

/// The installations `filter` picks, newest first, each settled (its state as of its job's
/// end).
pub async fn list(conn: &mut RedisConn, filter: &store::Filter) -> Result<Vec<Installation>> {
    let listed = store::list(conn, filter).await?;
    // The pending jobs' records in one round trip, not one each (a fleet with a queued job
    // per server made the servers page wait for a thousand).
    let jobs: Vec<(&str, &str)> = listed
        .iter()
        .filter_map(|i| Some((i.agent_id.as_str(), i.pending.as_ref()?.job_id.as_str())))
        .collect();
    let mut read = store::jobs_fields(conn, &jobs).await?.into_iter();
    let mut out = Vec::new();
    for i in listed {
        let first = if i.pending.is_some() {
            read.next()
        } else {
            None
        };
        let i = settle_read(conn, i, first).await?;
        if filter.matches(&i) {
            out.push(i);
        }
    }
    Ok(out)
}
