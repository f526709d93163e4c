//! Every Redis command the daemon sends, in one place. Events always go through the
//! contract's scripts (`contract/lua/`), whose shared fragment numbers, stores and publishes
//! them; each multi-step change is one script. Each script is loaded once and called by
//! `EVALSHA` (redis-rs reloads it on `NOSCRIPT`, e.g. after Redis restarted).

use std::sync::LazyLock;

use deadpool_redis::redis::{self, AsyncCommands, RedisResult, Script, ScriptInvocation};
use outfitter_contract::envelope::Envelope;
use outfitter_contract::event::Event;
use outfitter_contract::host::HostFacts;
use outfitter_contract::job::{JobState, field, write};
use outfitter_contract::redis_keys::AgentRedisKeys;
use outfitter_contract::scripts;
use serde::{Deserialize, Serialize};

/// Moves due retries from the scheduled set to the queue (see the file header).
static PROMOTE_DUE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../../lua/promote_due.lua")));
static APPEND_EVENTS: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::APPEND_EVENTS));
static CLAIM_ATTEMPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::CLAIM_ATTEMPT));
static FINISH_ATTEMPT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::FINISH_ATTEMPT));
static REQUEUE: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::REQUEUE));
static REJECT: LazyLock<Script> = LazyLock::new(|| Script::new(scripts::REJECT));
static HEARTBEAT: LazyLock<Script> =
    LazyLock::new(|| Script::new(outfitter_contract::metrics_history::HEARTBEAT));

/// Most retries moved per scheduler tick.
pub const PROMOTE_BATCH: usize = 100;
/// The rejected stream keeps about this many entries.
pub const REJECTED_MAXLEN: usize = 10_000;

/// One event to append, with the job hash fields to set in the same step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    /// Event JSON without `seq` ([`outfitter_contract::event::Event::to_unsequenced_json`]).
    pub e: String,
    /// Field/value pairs for the job hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub f: Vec<(String, String)>,
    /// The sequence number this event is expected to get, when the writer knows it: after a
    /// batch failed halfway (connection lost before the reply), the outbox recognises the
    /// events Redis did append and does not append them twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// The event JSON and then its field/value pairs, as the scripts take them.
fn event_args(inv: &mut ScriptInvocation<'_>, o: &Outgoing) {
    inv.arg(&o.e);
    for (k, v) in &o.f {
        inv.arg(k).arg(v);
    }
}

/// Appends a batch of events of one job in one step (all or none). Returns the sequence
/// numbers the events got.
pub async fn append_events<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    job_id: &str,
    batch: &[Outgoing],
) -> RedisResult<Vec<u64>> {
    let mut inv = APPEND_EVENTS.prepare_invoke();
    inv.key(names.job(job_id))
        .key(names.job_events(job_id))
        .arg(names.job_channel(job_id));
    for o in batch {
        inv.arg(&o.e).arg(o.f.len());
        for (k, v) in &o.f {
            inv.arg(k).arg(v);
        }
    }
    inv.invoke_async(conn).await
}

/// For each event of `batch`, whether the job's stream already holds it under the sequence
/// number it was expected to get (the same JSON APPEND_EVENT would have stored).
pub async fn already_appended<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    job_id: &str,
    batch: &[Outgoing],
) -> RedisResult<Vec<bool>> {
    let expected: Vec<u64> = batch.iter().filter_map(|o| o.seq).collect();
    let (Some(lo), Some(hi)) = (expected.iter().min(), expected.iter().max()) else {
        return Ok(vec![false; batch.len()]);
    };
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(names.job_events(job_id))
        .arg(format!("0-{lo}"))
        .arg(format!("0-{hi}"))
        .query_async(conn)
        .await?;
    let stored: std::collections::HashMap<String, String> = entries
        .into_iter()
        .filter_map(|(id, kv)| {
            let json = kv.into_iter().find(|(k, _)| k == scripts::EVENT_FIELD)?.1;
            Some((id, json))
        })
        .collect();
    Ok(batch
        .iter()
        .map(|o| {
            o.seq.is_some_and(|s| {
                let json = format!("{{\"seq\":{s},{}", o.e.get(1..).unwrap_or(""));
                stored.get(&format!("0-{s}")) == Some(&json)
            })
        })
        .collect())
}

/// A retry to put in the scheduled set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub wire: String,
    pub due_ms: i64,
}

/// The final word on one attempt, as kept in the outbox until Redis has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub job_id: String,
    /// The wire this runner took into its processing list (removed when applied).
    pub processing_wire: String,
    /// The state event and the record fields.
    pub event: Outgoing,
    pub schedule: Option<Schedule>,
    /// Written to `finished_at`; tells whether this result was applied already.
    pub finished_at: i64,
}

impl JobResult {
    /// The state the record gets (the result's own `state` field).
    pub fn state(&self) -> Option<JobState> {
        self.event
            .f
            .iter()
            .find(|(k, _)| k == field::STATE)
            .and_then(|(_, v)| v.parse().ok())
    }
}

/// Applies a result in one step: event + fields, the retry, LREM from processing.
/// Applying it twice (a crash between apply and deleting the outbox file) changes nothing.
pub async fn apply_result<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    result: &JobResult,
) -> RedisResult<()> {
    let call = scripts::finish_attempt(
        names,
        &result.job_id,
        &scripts::AttemptEnd {
            event_json: &result.event.e,
            processing_wire: &result.processing_wire,
            finished_at: result.finished_at,
            retry: result
                .schedule
                .as_ref()
                .map(|s| (s.wire.as_str(), s.due_ms)),
        },
        &result.event.f,
    );
    let mut inv = FINISH_ATTEMPT.prepare_invoke();
    for k in &call.keys {
        inv.key(k);
    }
    for a in &call.args {
        inv.arg(a);
    }
    inv.invoke_async::<i64>(conn).await.map(drop)
}

/// A refusal: always on the rejected stream and off the processing list; on the record only
/// when `touch` holds for the record's current state and signed wire (see `reject_touches`).
pub async fn reject<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    job_hint: Option<&str>,
    wire: &str,
    reason: &str,
    record_event: Option<&Outgoing>,
    touch: impl Fn(Option<JobState>, Option<&str>) -> bool,
) -> RedisResult<()> {
    let mut on_record = None;
    if let (Some(job), Some(event)) = (job_hint, record_event) {
        let (state, signed): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(names.job(job))
            .arg(field::STATE)
            .arg(field::SIGNED)
            .query_async(conn)
            .await?;
        // A state that names none is nothing a refusal may overwrite.
        let state = state.and_then(|s| s.parse::<JobState>().ok());
        if touch(state, signed.as_deref()) {
            on_record = Some((job, event));
        }
    }
    let mut inv = REJECT.prepare_invoke();
    inv.key(names.processing())
        .key(names.rejected())
        .arg(wire)
        .arg(job_hint.unwrap_or(""))
        .arg(reason)
        .arg(REJECTED_MAXLEN);
    if let Some((job, event)) = on_record {
        inv.key(names.job(job))
            .key(names.job_events(job))
            .arg(names.job_channel(job));
        event_args(&mut inv, event);
    }
    inv.invoke_async::<i64>(conn).await.map(drop)
}

/// What [`claim_attempt`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// The attempt was claimed before (a replay).
    Before,
    /// Claimed now, but a cancel was asked: the record is not `running`.
    CancelAsked,
    /// Claimed and `running`, with the sequence number of its `running` event (`None` when a
    /// repeated call found its own earlier claim).
    Running(Option<u64>),
}

/// Starts one attempt of `env`'s job at unix ms `started_at` in one step (`CLAIM_ATTEMPT`):
/// the replay guard, the cancel flag, and the `running` record with its event.
pub async fn claim_attempt<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    env: &Envelope,
    started_at: i64,
    repeated: bool,
) -> RedisResult<Claimed> {
    let event = Event::state(started_at, env.attempt, JobState::Running, None, None);
    let call = scripts::claim_attempt(
        names,
        &env.job_id,
        &scripts::AttemptStart {
            attempt: env.attempt,
            expires_at: env.expires_at,
            started_at,
            event_json: &event.to_unsequenced_json(),
            repeated,
        },
        &write::running(env.attempt, started_at),
    );
    let mut inv = CLAIM_ATTEMPT.prepare_invoke();
    for k in &call.keys {
        inv.key(k);
    }
    for a in &call.args {
        inv.arg(a);
    }
    let reply: Vec<i64> = inv.invoke_async(conn).await?;
    Ok(match reply.as_slice() {
        [0] => Claimed::Before,
        [1] => Claimed::CancelAsked,
        [2, 0] => Claimed::Running(None),
        [2, seq] => Claimed::Running(u64::try_from(*seq).ok()),
        other => {
            return Err(redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "CLAIM_ATTEMPT",
                format!("{other:?}"),
            )));
        }
    })
}

/// The replay guard's member for one attempt.
pub fn seen_member(job_id: &str, attempt: u32) -> String {
    scripts::seen_member(job_id, attempt)
}

/// Whether a person asked to cancel the job.
pub async fn cancel_requested<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    job_id: &str,
) -> RedisResult<bool> {
    let v: Option<String> = conn
        .hget(names.job(job_id), field::CANCEL_REQUESTED)
        .await?;
    Ok(v.as_deref() == Some("1"))
}

/// Moves retries due by `now_ms` to the queue; returns how many.
pub async fn promote_due<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    now_ms: i64,
) -> RedisResult<usize> {
    PROMOTE_DUE
        .key(names.scheduled())
        .key(names.queue())
        .arg(now_ms)
        .arg(PROMOTE_BATCH)
        .invoke_async(conn)
        .await
}

/// Forgets replay-guard entries whose envelopes have expired (they would be refused anyway).
pub async fn prune_seen<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    now_secs: i64,
) -> RedisResult<()> {
    conn.zrembyscore::<_, _, _, ()>(names.seen(), "-inf", now_secs)
        .await
}

/// Writes the heartbeat with its TTL and, when `facts` carry metrics, adds their sample to the
/// server's history, in one step.
pub async fn heartbeat<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    facts: &HostFacts,
    ttl_secs: u64,
) -> RedisResult<()> {
    let json = serde_json::to_string(facts).expect("host facts serialize");
    let sample = facts.metrics.as_ref().map(|m| m.sample());
    let call = outfitter_contract::metrics_history::heartbeat(
        names,
        &json,
        ttl_secs,
        sample.as_ref().map(|s| (facts.ts, s)),
    );
    let mut inv = HEARTBEAT.prepare_invoke();
    for k in &call.keys {
        inv.key(k);
    }
    for a in &call.args {
        inv.arg(a);
    }
    inv.invoke_async::<i64>(conn).await.map(drop)
}

/// Puts a job back on the consuming end of the queue: off the processing list, `new_wire` onto
/// the queue, and an optional event, in one step.
pub async fn requeue<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    job_id: &str,
    old_wire: &str,
    new_wire: &str,
    event: Option<&Outgoing>,
) -> RedisResult<()> {
    let mut inv = REQUEUE.prepare_invoke();
    inv.key(names.processing())
        .key(names.queue())
        .key(names.job(job_id))
        .key(names.job_events(job_id))
        .arg(old_wire)
        .arg(new_wire)
        .arg(names.job_channel(job_id));
    match event {
        Some(o) => event_args(&mut inv, o),
        None => {
            inv.arg("");
        }
    }
    inv.invoke_async::<i64>(conn).await.map(drop)
}
