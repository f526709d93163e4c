//! Reading and writing schedules in Redis (every key under `{schedules}`, see
//! `redis_keys`). The hash's `next_due` is the truth the tick compares and swaps; the due
//! index follows it in the same scripts.

use std::collections::HashMap;

use outfitter_contract::redis_keys;
use outfitter_redis::RedisConn;
use redis::AsyncCommands;

use super::error::{Error, Result};
use super::model::{Definition, Run, Schedule};
use crate::scripts;

/// Runs kept per schedule (the newest).
pub const MAX_RUNS: usize = 100;
/// Most schedules a listing reads.
pub const MAX_LISTED: usize = 1_000;
/// Most due schedules one tick takes on.
pub const MAX_DUE_PER_TICK: usize = 100;

/// Checks a schedule id from a path: the job id form (UUIDv7).
pub fn check_id(id: &str) -> Result<()> {
    outfitter_contract::ids::validate_job_id(id)
        .map_err(|e| Error::InvalidParameter(format!("schedule id: {e}")))
}

fn due_field(next_due: Option<i64>) -> String {
    next_due.map(|d| d.to_string()).unwrap_or_default()
}

/// Writes a new schedule and indexes it.
pub async fn create(
    conn: &mut RedisConn,
    def: &Definition,
    paused: bool,
    next_due: Option<i64>,
) -> Result<()> {
    let data = serde_json::to_string(def).expect("definitions serialize");
    let key = redis_keys::schedule(&def.id);
    let mut pipe = redis::pipe();
    pipe.atomic()
        .hset_multiple(
            &key,
            &[
                ("data", data),
                ("paused", if paused { "1" } else { "0" }.to_owned()),
                ("next_due", due_field(next_due)),
            ],
        )
        .ignore()
        .zadd(redis_keys::SCHEDULES_INDEX, &def.id, def.created_at)
        .ignore();
    if let Some(due) = next_due {
        pipe.zadd(redis_keys::SCHEDULES_DUE, &def.id, due).ignore();
    }
    let () = pipe.query_async(conn).await?;
    Ok(())
}

fn parse(id: &str, fields: &HashMap<String, String>) -> Result<Schedule> {
    let data = fields
        .get("data")
        .ok_or_else(|| Error::NotFound(id.to_owned()))?;
    let def: Definition = serde_json::from_str(data)
        .map_err(|e| Error::Internal(format!("schedule {id} does not parse: {e}")))?;
    Ok(Schedule {
        def,
        paused: fields.get("paused").is_some_and(|p| p == "1"),
        next_due: fields.get("next_due").and_then(|d| d.parse().ok()),
        last: fields
            .get("last")
            .and_then(|l| serde_json::from_str(l).ok()),
    })
}

/// One schedule by id.
pub async fn load(conn: &mut RedisConn, id: &str) -> Result<Schedule> {
    check_id(id)?;
    let fields: HashMap<String, String> = conn.hgetall(redis_keys::schedule(id)).await?;
    parse(id, &fields)
}

/// Schedules, newest first (at most [`MAX_LISTED`]).
pub async fn list(conn: &mut RedisConn) -> Result<Vec<Schedule>> {
    let ids: Vec<String> = conn
        .zrevrange(redis_keys::SCHEDULES_INDEX, 0, MAX_LISTED as isize - 1)
        .await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match load(conn, &id).await {
            Ok(s) => out.push(s),
            // Deleted between the index read and the load.
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The newest `n` runs of a schedule, newest first.
pub async fn runs(conn: &mut RedisConn, id: &str, n: usize) -> Result<Vec<Run>> {
    let raw: Vec<String> = conn
        .lrange(redis_keys::schedule_runs(id), -(n as isize), -1)
        .await?;
    Ok(raw
        .iter()
        .rev()
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect())
}

/// Schedules due at `now_ms` or before, soonest first.
pub async fn due_ids(conn: &mut RedisConn, now_ms: i64) -> Result<Vec<String>> {
    Ok(conn
        .zrangebyscore_limit(
            redis_keys::SCHEDULES_DUE,
            "-inf",
            now_ms,
            0,
            MAX_DUE_PER_TICK as isize,
        )
        .await?)
}

/// Moves schedule `id` from due time `expected` to `next`, recording `run`; `false` when the
/// schedule was no longer at `expected` (another panel advanced it, or it was paused or
/// deleted).
pub async fn advance(
    conn: &mut RedisConn,
    id: &str,
    expected: i64,
    next: Option<i64>,
    run: &Run,
) -> Result<bool> {
    let run = serde_json::to_string(run).expect("runs serialize");
    let done: i64 = scripts::SCHEDULE_ADVANCE
        .key(redis_keys::schedule(id))
        .key(redis_keys::schedule_runs(id))
        .key(redis_keys::SCHEDULES_DUE)
        .arg(id)
        .arg(expected.to_string())
        .arg(due_field(next))
        .arg(run)
        .arg(MAX_RUNS)
        .invoke_async(conn)
        .await?;
    Ok(done == 1)
}

/// Pauses (`next_due` `None`) or resumes (at `next_due`) schedule `id`; `NotFound` if it does
/// not exist.
pub async fn set_paused(
    conn: &mut RedisConn,
    id: &str,
    paused: bool,
    next_due: Option<i64>,
) -> Result<()> {
    let done: i64 = scripts::SCHEDULE_STATE
        .key(redis_keys::schedule(id))
        .key(redis_keys::SCHEDULES_DUE)
        .arg(id)
        .arg(if paused { "1" } else { "0" })
        .arg(due_field(next_due))
        .invoke_async(conn)
        .await?;
    if done == 1 {
        Ok(())
    } else {
        Err(Error::NotFound(id.to_owned()))
    }
}

/// Deletes schedule `id` with its runs; `NotFound` if there was none.
pub async fn delete(conn: &mut RedisConn, id: &str) -> Result<()> {
    check_id(id)?;
    let (removed, ..): (i64, i64, i64, i64) = redis::pipe()
        .atomic()
        .del(redis_keys::schedule(id))
        .del(redis_keys::schedule_runs(id))
        .zrem(redis_keys::SCHEDULES_INDEX, id)
        .zrem(redis_keys::SCHEDULES_DUE, id)
        .query_async(conn)
        .await?;
    if removed == 1 {
        Ok(())
    } else {
        Err(Error::NotFound(id.to_owned()))
    }
}

/// Takes a schedule id off the due index (it names a schedule that is gone or paused).
pub async fn unindex_due(conn: &mut RedisConn, id: &str) -> Result<()> {
    let _: () = conn.zrem(redis_keys::SCHEDULES_DUE, id).await?;
    Ok(())
}
