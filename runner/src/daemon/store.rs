//! Every Redis command the daemon sends, in one place. Events always go through the
//! contract's `APPEND_EVENT` script; multi-step changes run in MULTI/EXEC.

use deadpool_redis::redis::{self, AsyncCommands, RedisResult};
use outfitter_contract::job::field;
use outfitter_contract::redis_keys::AgentRedisKeys;
use outfitter_contract::scripts::APPEND_EVENT;
use serde::{Deserialize, Serialize};

/// Moves due retries from the scheduled set to the queue (see the file header).
pub const PROMOTE_DUE: &str = include_str!("../../lua/promote_due.lua");

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

fn sha1_of(script: &str) -> String {
    redis::Script::new(script).get_hash().to_owned()
}

/// Appends a batch of events of one job in one round trip. The script is loaded first in the
/// same pipeline, so a restarted Redis (empty script cache) never sees an unknown EVALSHA.
/// Returns the sequence numbers the events got.
pub async fn append_events<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    job_id: &str,
    batch: &[Outgoing],
) -> RedisResult<Vec<u64>> {
    let sha = sha1_of(APPEND_EVENT);
    let mut pipe = redis::pipe();
    pipe.cmd("SCRIPT").arg("LOAD").arg(APPEND_EVENT).ignore();
    for o in batch {
        // The reply (the sequence number) is kept.
        append_cmd(&mut pipe, "EVALSHA", &sha, names, job_id, o);
    }
    pipe.query_async(conn).await
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
        .filter_map(|(id, kv)| Some((id, kv.into_iter().find(|(k, _)| k == "e")?.1)))
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

/// Adds one APPEND_EVENT call to a pipeline (`EVAL` with the source inside MULTI, so the
/// transaction cannot half-fail on a missing script). Its reply is the sequence number;
/// callers that do not want it call `pipe.ignore()`.
fn append_cmd(
    pipe: &mut redis::Pipeline,
    verb: &str,
    script: &str,
    names: &AgentRedisKeys,
    job_id: &str,
    o: &Outgoing,
) {
    let cmd = pipe
        .cmd(verb)
        .arg(script)
        .arg(2)
        .arg(names.job(job_id))
        .arg(names.job_events(job_id))
        .arg(names.job_channel(job_id))
        .arg(&o.e);
    for (k, v) in &o.f {
        cmd.arg(k).arg(v);
    }
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

/// Applies a result in one transaction: event + fields, LREM from processing, and the retry.
/// Applying it twice (a crash between apply and deleting the outbox file) changes nothing.
pub async fn apply_result<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    result: &JobResult,
) -> RedisResult<()> {
    let applied: Option<String> = redis::cmd("HGET")
        .arg(names.job(&result.job_id))
        .arg(field::FINISHED_AT)
        .query_async(conn)
        .await?;
    let mut pipe = redis::pipe();
    pipe.atomic();
    if applied.as_deref() != Some(result.finished_at.to_string().as_str()) {
        append_cmd(
            &mut pipe,
            "EVAL",
            APPEND_EVENT,
            names,
            &result.job_id,
            &result.event,
        );
        pipe.ignore();
        if let Some(s) = &result.schedule {
            pipe.zadd(names.scheduled(), &s.wire, s.due_ms).ignore();
        }
    }
    pipe.lrem(names.processing(), 1, &result.processing_wire)
        .ignore();
    pipe.query_async::<()>(conn).await
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
    touch: impl Fn(Option<&str>, Option<&str>) -> bool,
) -> RedisResult<()> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    if let (Some(job), Some(event)) = (job_hint, record_event) {
        let (state, signed): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(names.job(job))
            .arg(field::STATE)
            .arg(field::SIGNED)
            .query_async(conn)
            .await?;
        if touch(state.as_deref(), signed.as_deref()) {
            append_cmd(&mut pipe, "EVAL", APPEND_EVENT, names, job, event);
            pipe.ignore();
        }
    }
    pipe.cmd("XADD")
        .arg(names.rejected())
        .arg("MAXLEN")
        .arg("~")
        .arg(REJECTED_MAXLEN)
        .arg("*")
        .arg("job_id")
        .arg(job_hint.unwrap_or(""))
        .arg("reason")
        .arg(reason)
        .ignore();
    pipe.lrem(names.processing(), 1, wire).ignore();
    pipe.query_async::<()>(conn).await
}

/// Claims `<job>:<attempt>` in the replay guard and reads the record's cancel flag, in one
/// round trip: (claimed now — false when it was claimed before, cancel asked).
pub async fn claim_seen_reading_cancel<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    job_id: &str,
    attempt: u32,
    expires_at_secs: i64,
) -> RedisResult<(bool, bool)> {
    let (added, cancel): (i64, Option<String>) = redis::pipe()
        .cmd("ZADD")
        .arg(names.seen())
        .arg("NX")
        .arg(expires_at_secs)
        .arg(seen_member(job_id, attempt))
        .hget(names.job(job_id), field::CANCEL_REQUESTED)
        .query_async(conn)
        .await?;
    Ok((added == 1, cancel.as_deref() == Some("1")))
}

/// The replay guard's member for one attempt.
pub fn seen_member(job_id: &str, attempt: u32) -> String {
    format!("{job_id}:{attempt}")
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
    redis::Script::new(PROMOTE_DUE)
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

/// Writes the heartbeat with its TTL.
pub async fn heartbeat<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    facts_json: &str,
    ttl_secs: u64,
) -> RedisResult<()> {
    conn.set_ex::<_, _, ()>(names.heartbeat(), facts_json, ttl_secs)
        .await
}

/// Puts a job back on the consuming end of the queue: off the processing list, `new_wire` onto
/// the queue, and an optional event, in one transaction.
pub async fn requeue<C: redis::aio::ConnectionLike + Send + Sync>(
    conn: &mut C,
    names: &AgentRedisKeys,
    job_id: &str,
    old_wire: &str,
    new_wire: &str,
    event: Option<&Outgoing>,
) -> RedisResult<()> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    pipe.lrem(names.processing(), 1, old_wire).ignore();
    pipe.rpush(names.queue(), new_wire).ignore();
    if let Some(o) = event {
        append_cmd(&mut pipe, "EVAL", APPEND_EVENT, names, job_id, o);
        pipe.ignore();
    }
    pipe.query_async::<()>(conn).await
}
