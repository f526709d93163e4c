//! Cancel and retry, as `docs/protocol.md` describes them (steps 6 and 7).

use outfitter_contract::control::ControlMessage;
use outfitter_contract::envelope::{Envelope, SignedJob};
use outfitter_contract::event::Event;
use outfitter_contract::job::{JobRecord, JobState, field, write};
use outfitter_contract::keys::PanelSecret;
use outfitter_contract::redis_keys::AgentRedisKeys;
use outfitter_contract::seal;
use outfitter_redis::RedisConn;
use redis::Value as RValue;

use super::error::{Error, Result};
use crate::agents::keys::{self as agent_keys, GenerationKeys};
use crate::audit;
use crate::auth::Caller;
use crate::clock::now_ms;
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

impl Canceled {
    /// `canceled` or `requested`, as the API and the audit log say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Canceled::Now => "canceled",
            Canceled::Requested => "requested",
        }
    }
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
/// Cancels a job on behalf of `caller` and records it in the audit log.
pub async fn cancel(
    state: &AppState,
    job_id: &str,
    caller: &Caller,
) -> Result<(Canceled, JobRecord)> {
    let mut conn = state.redis.clone();
    let message = format!("canceled by {} before it started", caller.name);
    let outcome = match cancel_in(&mut conn, job_id, &message, false).await? {
        Outcome::Now => Canceled::Now,
        Outcome::Requested => Canceled::Requested,
        Outcome::Started(s) => {
            return Err(Error::Internal(format!(
                "cancel of job {job_id} answered `started` ({s}) though it may ask the runner"
            )));
        }
    };
    let job = store::load(&mut conn, job_id).await?;
    audit::record(
        &mut conn,
        &caller.name,
        "job.cancel",
        job_id,
        &caller.from,
        outcome.as_str(),
    )
    .await;
    Ok((outcome, job))
}

/// Ends a job `canceled` with `reason` (also its record's `reason`) if it still waits in its
/// agent's queue or as a scheduled retry. Returns false, changing nothing, when the runner
/// has taken it meanwhile.
pub async fn cancel_waiting(conn: &mut RedisConn, job_id: &str, reason: &str) -> Result<bool> {
    match cancel_in(conn, job_id, reason, true).await? {
        Outcome::Now => Ok(true),
        Outcome::Started(_) => Ok(false),
        Outcome::Requested => Err(Error::Internal(format!(
            "cancel of waiting job {job_id} asked the runner to stop it"
        ))),
    }
}

/// What the cancel script did.
enum Outcome {
    Now,
    Requested,
    /// Only with `only_waiting`: the job had started; nothing changed. Holds its state.
    Started(String),
}

async fn cancel_in(
    conn: &mut RedisConn,
    job_id: &str,
    message: &str,
    only_waiting: bool,
) -> Result<Outcome> {
    let job = store::load(conn, job_id).await?;
    let keys = AgentRedisKeys::new(&job.agent_id);
    let now = now_ms();
    let event = Event::state(
        now,
        job.attempts + 1,
        JobState::Canceled,
        None,
        Some(message.to_owned()),
    );
    // A person's cancel says who in the event; a cancel on the panel's own behalf (agent
    // removal) also leaves its reason on the record.
    let ended = write::terminal(JobState::Canceled, now, only_waiting.then_some(message));
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
        .arg(serde_json::to_string(&finals).expect("strings serialize"))
        .arg(pairs_json(&[(field::CANCEL_REQUESTED, "1".into())]))
        .arg(pairs_json(&ended))
        .arg(if only_waiting { "1" } else { "0" })
        .invoke_async(conn)
        .await?;
    let words = reply_words(&reply);
    match words.first().map(String::as_str) {
        Some("canceled") => Ok(Outcome::Now),
        Some("requested") => Ok(Outcome::Requested),
        Some("started") => Ok(Outcome::Started(words.get(1).cloned().unwrap_or_default())),
        Some("final") => Err(Error::NotCancelable(format!(
            "job {job_id} is already {}",
            words.get(1).map(String::as_str).unwrap_or("finished")
        ))),
        Some("missing") => Err(Error::JobNotFound(job_id.to_owned())),
        _ => Err(Error::Internal(format!("cancel script replied {reply:?}"))),
    }
}

/// Verifies a stored envelope under the agent's current key, else under an earlier
/// generation (a job signed before a rotation). Returns the envelope and the keys that
/// signed it.
fn verify_stored(
    signed: &SignedJob,
    current: &GenerationKeys,
    secret: &PanelSecret,
) -> Option<(Envelope, GenerationKeys)> {
    if let Ok(env) = signed.verify(&current.working.signing) {
        return Some((env, current.clone()));
    }
    current
        .earlier(secret)
        .find_map(|k| signed.verify(&k.working.signing).ok().map(|env| (env, k)))
}

/// Starts a new attempt of a finished job.
/// Queues a new attempt of a finished job on behalf of `caller` and records it in the audit log.
pub async fn retry(state: &AppState, job_id: &str, caller: &Caller) -> Result<JobRecord> {
    let job = retry_as(state, job_id, &caller.name).await?;
    let mut conn = state.redis.clone();
    let detail = format!("app={} agent={}", job.app_id, job.agent_id);
    audit::record(
        &mut conn,
        &caller.name,
        "job.retry",
        job_id,
        &caller.from,
        &detail,
    )
    .await;
    Ok(job)
}

async fn retry_as(state: &AppState, job_id: &str, by: &str) -> Result<JobRecord> {
    let mut conn = state.redis.clone();
    let job = store::load(&mut conn, job_id).await?;
    if !job.state.is_retryable_by_user() {
        return Err(Error::NotRetryable(format!(
            "job {job_id} is {}; only failed, needs_attention, timed_out, canceled, interrupted, expired or rejected jobs can be retried",
            job.state
        )));
    }
    let fields: Option<String> = redis::cmd("HGET")
        .arg(AgentRedisKeys::new(&job.agent_id).job(job_id))
        .arg(field::SIGNED)
        .query_async(&mut conn)
        .await?;
    let wire =
        fields.ok_or_else(|| Error::Internal(format!("job {job_id} has no signed envelope")))?;
    let current = agent_keys::load(&mut conn, &state.secret, &job.agent_id).await?;
    // Verify what we stored before re-signing it: Redis is shared with the runners.
    let signed = SignedJob::from_wire(&wire)
        .map_err(|e| Error::Internal(format!("stored envelope of job {job_id}: {e}")))?;
    // No generation verifies it: the panel secret was replaced since, or the record was
    // tampered with. Either way it cannot be re-signed; the job has to be queued again.
    let (mut envelope, signer) = verify_stored(&signed, &current, &state.secret).ok_or_else(|| {
        Error::NotRetryable(format!(
                "job {job_id} was not signed by this panel's secret under any key generation (0 to {}) of agent {}; queue it again",
                current.generation, job.agent_id
            ),
        )
    })?;
    if signer.generation != current.generation
        && let Some(sealed) = &envelope.sealed_inputs
    {
        // Sealed under the old key: the runner with the new key could not open it.
        let values = seal::open(&signer.working.sealing, job_id, sealed)
            .and_then(|v| seal::seal(&current.working.sealing, job_id, &v))
            .map_err(|e| Error::Internal(format!("job {job_id}: {e}")))?;
        envelope.sealed_inputs = Some(values);
    }
    // The end being retried is announced first (idempotent): the retry resets the record
    // the webhook watcher would read it from. Then the new attempt is watched.
    crate::webhooks::watch::announce_job(&mut conn, &job).await;
    crate::webhooks::watch::watch_job(&mut conn, job_id).await?;
    let keys = current.working;
    let now = now_ms();
    // The record counts the attempts that ran; the stored envelope may lag behind it.
    envelope.attempt = job.attempts.max(envelope.attempt);
    let envelope = envelope.next_attempt(now / 1000, state.settings.queue_ttl_secs as i64);
    let new_wire = envelope.sign(&keys.signing).to_wire();
    let event = Event::state(
        now,
        envelope.attempt,
        JobState::Queued,
        None,
        Some(format!("retried by {by}")),
    );
    let ak = AgentRedisKeys::new(&job.agent_id);
    let reply: RValue = scripts::RETRY
        .key(ak.job(job_id))
        .key(ak.job_events(job_id))
        .key(ak.queue())
        .arg(ak.job_channel(job_id))
        .arg(event.to_unsequenced_json())
        .arg(&new_wire)
        .arg(field::STATE)
        .arg(field::ATTEMPTS)
        .arg(job.state.as_str())
        .arg(job.attempts.to_string())
        .arg(pairs_json(&write::queued(
            &new_wire,
            None,
            write::CancelRequest::Clear,
        )))
        .invoke_async(&mut conn)
        .await?;
    let words = reply_words(&reply);
    match words.first().map(String::as_str) {
        Some("queued") => store::load(&mut conn, job_id).await,
        Some("changed") => Err(Error::NotRetryable(format!(
            "job {job_id} changed meanwhile (now {}); reload and try again",
            words.get(1).map(String::as_str).unwrap_or("?")
        ))),
        Some("missing") => Err(Error::JobNotFound(job_id.to_owned())),
        _ => Err(Error::Internal(format!("retry script replied {reply:?}"))),
    }
}
