//! Writing a new job to Redis: the id index, then record, first event and queue push in one
//! script (`contract/lua/enqueue.lua`).

use outfitter_contract::job::{JobRecord, JobState, LifecycleFields, write as record};
use outfitter_contract::manifest::Manifest;
use outfitter_contract::redis_keys;
use serde_json::Value;

use super::sign::Signed;
use crate::jobs::error::Result;
use crate::scripts;
use crate::state::AppState;

/// What the write did.
pub enum Written {
    /// The job is queued; this is its record.
    Created(Box<JobRecord>),
    /// A job with this id exists already (another request with the same `Idempotency-Key`
    /// wrote it first); nothing was written.
    Exists,
}

/// Writes job `job_id` of `manifest` for `agent_id`, created at `now_ms` by `created_by`.
pub async fn write(
    state: &AppState,
    manifest: &Manifest,
    agent_id: &str,
    job_id: &str,
    signed: Signed,
    created_by: &str,
    now_ms: i64,
) -> Result<Written> {
    let max_attempts = manifest.effective_retry().max_attempts;
    let fields = record::created(&record::Created {
        envelope: &signed.envelope,
        wire: &signed.wire,
        inputs: &signed.shown,
        max_attempts,
        created_at: now_ms,
        created_by,
    });

    // Index first: a crash between the two steps leaves an index entry without a record
    // (skipped by listings), never a queued job that cannot be found by its id. Writing the
    // index twice (a taken-over idempotency reservation) changes nothing.
    let mut conn = state.redis.clone();
    let _: () = redis::pipe()
        .zadd(redis_keys::JOBS_INDEX, job_id, now_ms)
        .hset(redis_keys::JOB_AGENT, job_id, agent_id)
        // Watched until its end is announced to webhooks (`webhooks::watch`).
        .zadd(redis_keys::WEBHOOK_WATCHED_JOBS, job_id, now_ms)
        .query_async(&mut conn)
        .await?;

    let call =
        outfitter_contract::scripts::enqueue(&signed.envelope, &signed.wire, &fields, now_ms);
    let inv = scripts::invocation(&scripts::ENQUEUE, &call);
    let seq: u64 = match inv.invoke_async(&mut conn).await {
        Ok(seq) => seq,
        Err(e) => {
            let _: Result<(), _> = redis::pipe()
                .zrem(redis_keys::JOBS_INDEX, job_id)
                .hdel(redis_keys::JOB_AGENT, job_id)
                .zrem(redis_keys::WEBHOOK_WATCHED_JOBS, job_id)
                .query_async(&mut conn)
                .await;
            return Err(e.into());
        }
    };
    if seq == 0 {
        return Ok(Written::Exists);
    }
    Ok(Written::Created(Box::new(JobRecord {
        id: job_id.to_owned(),
        app_id: manifest.id.clone(),
        app_version: manifest.version.clone(),
        agent_id: agent_id.to_owned(),
        state: JobState::Queued,
        attempts: 0,
        max_attempts,
        exit_code: None,
        progress: 0,
        progress_message: None,
        created_at: now_ms,
        started_at: None,
        finished_at: None,
        next_attempt_at: None,
        reason: None,
        inputs: Value::Object(signed.shown),
        created_by: Some(created_by.to_owned()),
        cancel_requested: false,
        last_lines: Vec::new(),
        survivors: Vec::new(),
        lifecycle: signed.envelope.lifecycle.as_ref().map(|l| LifecycleFields {
            installation_id: l.installation_id.clone(),
            action: l.action,
            outcome: None,
            phase: None,
            backup_id: None,
        }),
    })))
}
