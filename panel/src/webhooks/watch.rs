//! Where webhook events come from. Jobs: every new job (and every retried one) is put in a
//! watched set; a background task reads the watched jobs' records and, for each that has
//! ended, emits its event, then unwatches it — emit first, so a panel killed in between
//! emits again and the deterministic delivery id keeps it one delivery. Pubsub is not used:
//! it loses messages, the record does not. Installations: the settle that wins its
//! compare-and-swap emits the installation's new state.

use std::collections::HashMap;
use std::time::Duration;

use outfitter_contract::installation::{InstallationState, JobEnd};
use outfitter_contract::job::{JobRecord, JobState};
use outfitter_contract::lifecycle::{Action, Outcome};
use outfitter_contract::redis_keys::{self, AgentRedisKeys};
use outfitter_redis::RedisConn;
use redis::AsyncCommands;
use serde_json::json;

use super::emit::{Event, emit};
use super::model::EventKind;
use crate::clock::now_ms;
use crate::installations::model::Installation;

/// How often the watched jobs are read.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);
/// A watched job whose record is still missing after this long was never written (the panel
/// died between the index and the enqueue): it is dropped.
const MISSING_GRACE_MS: i64 = 60_000;
/// Jobs read per round trip.
const BATCH: isize = 500;

/// Watches `job_id` until its end is announced (a person's retry starts a new end).
pub async fn watch_job(conn: &mut RedisConn, job_id: &str) -> redis::RedisResult<()> {
    conn.zadd(redis_keys::WEBHOOK_WATCHED_JOBS, job_id, now_ms())
        .await
}

/// The event of a job's end, if it has ended. The key holds the attempt and the end's time,
/// so a retried job that ends again is a new occurrence and the same end is always one.
pub fn job_event(job: &JobRecord) -> Option<Event> {
    let kind = match job.state {
        JobState::Succeeded => EventKind::JobSucceeded,
        JobState::NeedsAttention => EventKind::JobNeedsAttention,
        JobState::Canceled => EventKind::JobCanceled,
        JobState::Failed
        | JobState::TimedOut
        | JobState::Interrupted
        | JobState::Rejected
        | JobState::Expired => EventKind::JobFailed,
        JobState::Queued | JobState::Running | JobState::Retrying => return None,
    };
    let key = format!(
        "{kind}:{}:{}:{}",
        job.id,
        job.attempts,
        job.finished_at.unwrap_or(0)
    );
    Some(Event::new(
        kind,
        key,
        json!({
            "job_id": job.id,
            "app_id": job.app_id,
            "app_version": job.app_version,
            "agent_id": job.agent_id,
            "state": job.state.as_str(),
            "attempts": job.attempts,
            "exit_code": job.exit_code,
            "reason": job.reason,
            "created_at": job.created_at,
            "finished_at": job.finished_at,
            "created_by": job.created_by,
            "installation_id": job.lifecycle.as_ref().map(|l| l.installation_id.clone()),
        }),
    ))
}

/// Emits the end of `job` if it has ended (idempotent); logs a failure, since the watched
/// set brings it back.
pub async fn announce_job(conn: &mut RedisConn, job: &JobRecord) -> bool {
    let Some(event) = job_event(job) else {
        return false;
    };
    match emit(conn, &event).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "webhook event of a job could not be queued");
            false
        }
    }
}

/// Reads the watched jobs forever (each panel runs one; they agree by idempotency).
pub async fn run_job_watcher(mut conn: RedisConn) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        if let Err(e) = sweep(&mut conn).await {
            tracing::warn!(error = %e, "watched jobs could not be read");
        }
    }
}

/// One pass over the watched jobs.
pub async fn sweep(conn: &mut RedisConn) -> redis::RedisResult<()> {
    let mut start = 0isize;
    loop {
        let watched: Vec<(String, i64)> = conn
            .zrange_withscores(redis_keys::WEBHOOK_WATCHED_JOBS, start, start + BATCH - 1)
            .await?;
        if watched.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = watched.iter().map(|(id, _)| id.as_str()).collect();
        let agents: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(redis_keys::JOB_AGENT)
            .arg(&ids)
            .query_async(conn)
            .await?;
        let mut pipe = redis::pipe();
        for (id, agent) in ids.iter().zip(&agents) {
            if let Some(a) = agent {
                pipe.hgetall(AgentRedisKeys::new(a).job(id));
            }
        }
        let mut found: std::vec::IntoIter<HashMap<String, String>> =
            if agents.iter().any(Option::is_some) {
                pipe.query_async::<Vec<HashMap<String, String>>>(conn)
                    .await?
                    .into_iter()
            } else {
                Vec::new().into_iter()
            };
        // A job nobody indexed reads as missing.
        let records: Vec<HashMap<String, String>> = agents
            .iter()
            .map(|a| {
                if a.is_some() {
                    found.next().unwrap_or_default()
                } else {
                    HashMap::new()
                }
            })
            .collect();
        let now = now_ms();
        let mut done = Vec::new();
        for ((id, since), fields) in watched.iter().zip(records) {
            if fields.is_empty() {
                if now - since > MISSING_GRACE_MS {
                    done.push(id.clone());
                }
                continue;
            }
            match JobRecord::from_fields(&fields) {
                Ok(job) if job.state.is_terminal() => {
                    if announce_job(conn, &job).await {
                        done.push(id.clone());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(job = %id, error = %e, "unreadable job record; not watched");
                    done.push(id.clone());
                }
            }
        }
        if !done.is_empty() {
            let _: () = conn.zrem(redis_keys::WEBHOOK_WATCHED_JOBS, &done).await?;
        }
        let n = watched.len() as isize;
        if n < BATCH {
            return Ok(());
        }
        start += n - done.len() as isize;
    }
}

/// The event of a settled installation: what the job's end made of it.
pub fn installation_kind(action: Action, end: &JobEnd, state: InstallationState) -> EventKind {
    match state {
        InstallationState::Uninstalled => EventKind::InstallationUninstalled,
        InstallationState::Failed => EventKind::InstallationFailed,
        _ if end.outcome == Some(Outcome::RolledBack) => EventKind::InstallationRolledBack,
        _ if end.state != JobState::Succeeded => EventKind::InstallationCanceled,
        _ => match action {
            Action::Install => EventKind::InstallationInstalled,
            Action::Upgrade => EventKind::InstallationUpgraded,
            Action::Reconfigure => EventKind::InstallationReconfigured,
            Action::Backup => EventKind::InstallationBackedUp,
            Action::Restore => EventKind::InstallationRestored,
            Action::Uninstall => EventKind::InstallationUninstalled,
        },
    }
}

/// Emits the settling of `inst` by the job `job_id` (called by the settle that won).
/// Failures are logged: the installation has settled either way.
pub async fn installation_settled(
    conn: &mut RedisConn,
    inst: &Installation,
    action: Action,
    end: &JobEnd,
    job_id: &str,
) {
    let kind = installation_kind(action, end, inst.state);
    let event = Event::new(
        kind,
        format!("{kind}:{}:{job_id}", inst.id),
        json!({
            "installation_id": inst.id,
            "app_id": inst.app_id,
            "agent_id": inst.agent_id,
            "instance": inst.instance,
            "version": inst.version,
            "state": inst.state.as_str(),
            "action": action.as_str(),
            "job_id": job_id,
            "job_state": end.state.as_str(),
        }),
    );
    if let Err(e) = emit(conn, &event).await {
        tracing::warn!(installation = %inst.id, error = %e, "webhook event of an installation could not be queued");
    }
}
