//! Cancel and retry, as `docs/protocol.md` describes them (steps 6 and 7).

use outfitter_contract::control::ControlMessage;
use outfitter_contract::envelope::SignedJob;
use outfitter_contract::event::Event;
use outfitter_contract::job::{JobRecord, JobState, field};
use outfitter_contract::keys::AgentKeys as AgentSecretKeys;
use outfitter_contract::redis_keys::AgentKeys;
use redis::Value as RValue;

use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult, Code};
use crate::scripts;
use crate::state::AppState;

use super::store;

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canceled {
    /// The job had not started: it is `canceled` now.
    Now,
    /// The job is running: the runner was asked to kill it; it ends `canceled` shortly.
    Requested,
}

fn reply_words(v: &RValue) -> Vec<String> {
    match v {
        RValue::Array(items) => items
            .iter()
            .filter_map(|i| redis::from_redis_value_ref::<String>(i).ok())
            .collect(),
        _ => Vec::new(),
    }
}

fn pairs_json(pairs: &[(&str, String)]) -> String {
    let flat: Vec<&str> = pairs.iter().flat_map(|(k, v)| [*k, v.as_str()]).collect();
    serde_json::to_string(&flat).expect("strings serialize")
}

/// Cancels a job.
pub async fn cancel(state: &AppState, job_id: &str, by: &str) -> ApiResult<(Canceled, JobRecord)> {
    let mut conn = state.redis.clone();
    let job = store::load(&mut conn, job_id).await?;
    let keys = AgentKeys::new(&job.agent_id);
    let now = now_ms();
    let event = Event::state(
        now,
        job.attempts + 1,
        JobState::Canceled,
        None,
        Some(format!("canceled by {by} before it started")),
    );
    let finals: Vec<&str> = JobState::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| s.as_str())
        .collect();
    let control = serde_json::to_string(&ControlMessage::Cancel {
        job_id: job_id.to_owned(),
    })
    .expect("control messages serialize");
    let reply: RValue = scripts::CANCEL
        .key(keys.job(job_id))
        .key(keys.job_events(job_id))
        .key(keys.queue())
        .key(keys.scheduled())
        .arg(keys.job_channel(job_id))
        .arg(event.to_unsequenced_json())
        .arg(keys.control_channel())
        .arg(control)
        .arg(field::STATE)
        .arg(field::SIGNED)
        .arg(field::SEQ)
        .arg(serde_json::to_string(&finals).expect("strings serialize"))
        .arg(pairs_json(&[(field::CANCEL_REQUESTED, "1".into())]))
        .arg(pairs_json(&[
            (field::STATE, JobState::Canceled.as_str().into()),
            (field::FINISHED_AT, now.to_string()),
            (field::NEXT_ATTEMPT_AT, String::new()),
        ]))
        .invoke_async(&mut conn)
        .await?;
    let words = reply_words(&reply);
    let outcome = match words.first().map(String::as_str) {
        Some("canceled") => Canceled::Now,
        Some("requested") => Canceled::Requested,
        Some("final") => {
            return Err(ApiError::new(
                Code::NotCancelable,
                format!(
                    "job {job_id} is already {}",
                    words.get(1).map(String::as_str).unwrap_or("finished")
                ),
            ));
        }
        Some("missing") => {
            return Err(ApiError::new(Code::JobNotFound, format!("no job {job_id}")));
        }
        _ => {
            return Err(ApiError::new(
                Code::Internal,
                format!("cancel script replied {reply:?}"),
            ));
        }
    };
    let job = store::load(&mut conn, job_id).await?;
    Ok((outcome, job))
}

/// Starts a new attempt of a finished job.
pub async fn retry(state: &AppState, job_id: &str, by: &str) -> ApiResult<JobRecord> {
    let mut conn = state.redis.clone();
    let job = store::load(&mut conn, job_id).await?;
    if !job.state.is_retryable_by_user() {
        return Err(ApiError::new(
            Code::NotRetryable,
            format!(
                "job {job_id} is {}; only failed, needs_attention, timed_out, canceled, interrupted or expired jobs can be retried",
                job.state
            ),
        ));
    }
    let fields: Option<String> = redis::cmd("HGET")
        .arg(AgentKeys::new(&job.agent_id).job(job_id))
        .arg(field::SIGNED)
        .query_async(&mut conn)
        .await?;
    let wire = fields.ok_or_else(|| {
        ApiError::new(
            Code::Internal,
            format!("job {job_id} has no signed envelope"),
        )
    })?;
    let keys = AgentSecretKeys::from_agent_key(&state.secret.agent_key(&job.agent_id));
    // Verify what we stored before re-signing it: Redis is shared with the runners.
    let mut envelope = SignedJob::from_wire(&wire)
        .and_then(|s| s.verify(&keys.signing))
        .map_err(|e| {
            ApiError::new(
                Code::Internal,
                format!("stored envelope of job {job_id}: {e}"),
            )
        })?;
    let now = now_ms();
    envelope.attempt = job.attempts.max(envelope.attempt) + 1;
    envelope.issued_at = now / 1000;
    envelope.expires_at = envelope.issued_at + state.settings.queue_ttl_secs as i64;
    let new_wire = envelope.sign(&keys.signing).to_wire();
    let event = Event::state(
        now,
        envelope.attempt,
        JobState::Queued,
        None,
        Some(format!("retried by {by}")),
    );
    let ak = AgentKeys::new(&job.agent_id);
    let reply: RValue = scripts::RETRY
        .key(ak.job(job_id))
        .key(ak.job_events(job_id))
        .key(ak.queue())
        .arg(ak.job_channel(job_id))
        .arg(event.to_unsequenced_json())
        .arg(&new_wire)
        .arg(field::STATE)
        .arg(field::ATTEMPTS)
        .arg(field::SEQ)
        .arg(job.state.as_str())
        .arg(job.attempts.to_string())
        .arg(pairs_json(&[
            (field::STATE, JobState::Queued.as_str().into()),
            (field::SIGNED, new_wire.clone()),
            (field::CANCEL_REQUESTED, "0".into()),
            (field::EXIT_CODE, String::new()),
            (field::REASON, String::new()),
            (field::PROGRESS, "0".into()),
            (field::PROGRESS_MESSAGE, String::new()),
            (field::STARTED_AT, String::new()),
            (field::FINISHED_AT, String::new()),
            (field::NEXT_ATTEMPT_AT, String::new()),
            (field::LAST_LINES, String::new()),
            (field::SURVIVORS, String::new()),
        ]))
        .invoke_async(&mut conn)
        .await?;
    let words = reply_words(&reply);
    match words.first().map(String::as_str) {
        Some("queued") => store::load(&mut conn, job_id).await,
        Some("changed") => Err(ApiError::new(
            Code::NotRetryable,
            format!(
                "job {job_id} changed meanwhile (now {}); reload and try again",
                words.get(1).map(String::as_str).unwrap_or("?")
            ),
        )),
        Some("missing") => Err(ApiError::new(Code::JobNotFound, format!("no job {job_id}"))),
        _ => Err(ApiError::new(
            Code::Internal,
            format!("retry script replied {reply:?}"),
        )),
    }
}
