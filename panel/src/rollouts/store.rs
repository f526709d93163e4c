//! Rollouts in Redis: one hash per rollout (`data`, `rev`) written by compare-and-swap with a
//! history list beside it, an index by creation time, and the set of rollouts the drivers
//! still look after.

use outfitter_contract::redis_keys;
use outfitter_redis::RedisConn;
use redis::AsyncCommands;

use super::error::{Error, Result};
use super::model::{HistoryEntry, Rollout};

/// Checks a rollout id from a path: the job id form (UUIDv7).
pub fn check_id(id: &str) -> Result<()> {
    outfitter_contract::ids::validate_job_id(id)
        .map_err(|e| Error::InvalidParameter(format!("rollout id: {e}")))
}

/// One rollout with its revision.
pub async fn load(conn: &mut RedisConn, id: &str) -> Result<Rollout> {
    check_id(id)?;
    let (data, rev): (Option<String>, Option<u64>) = redis::cmd("HMGET")
        .arg(redis_keys::rollout(id))
        .arg("data")
        .arg("rev")
        .query_async(conn)
        .await?;
    let data = data.ok_or_else(|| Error::NotFound(id.to_owned()))?;
    let mut r: Rollout = serde_json::from_str(&data)
        .map_err(|e| Error::Internal(format!("rollout {id} does not parse: {e}")))?;
    r.rev = rev.unwrap_or(0);
    Ok(r)
}

/// Writes `r` if the stored revision is still `r.rev` (with an optional history entry);
/// returns the new revision, or `None` when someone else wrote first.
pub async fn write(
    conn: &mut RedisConn,
    r: &Rollout,
    history: Option<&HistoryEntry>,
) -> Result<Option<u64>> {
    let key = redis_keys::rollout(&r.id);
    let history_key = redis_keys::rollout_history(&r.id);
    Ok(crate::record::write(conn, &key, &history_key, r.rev, r, history).await?)
}

/// Stores a new rollout and hands it to the drivers; false when one with its id exists.
pub async fn create(conn: &mut RedisConn, r: &Rollout, history: &HistoryEntry) -> Result<bool> {
    if write(conn, r, Some(history)).await?.is_none() {
        return Ok(false);
    }
    let _: () = redis::pipe()
        .zadd(redis_keys::ROLLOUTS_INDEX, &r.id, r.created_at)
        .sadd(redis_keys::ROLLOUTS_ACTIVE, &r.id)
        .query_async(conn)
        .await?;
    Ok(true)
}

/// Renames the keys of rollouts stored before their names carried a hash tag, once at start
/// (on one Redis: a cluster never held the old names). Returns how many were renamed.
pub async fn migrate_untagged(conn: &mut RedisConn) -> Result<usize> {
    if conn.is_cluster() {
        return Ok(0);
    }
    let ids: Vec<String> = conn.zrange(redis_keys::ROLLOUTS_INDEX, 0, -1).await?;
    let mut renamed = 0;
    for id in ids {
        let new = [
            redis_keys::rollout(&id),
            redis_keys::rollout_history(&id),
            redis_keys::rollout_lease(&id),
        ];
        for (old, new) in redis_keys::rollout_untagged(&id).iter().zip(&new) {
            let exists: bool = conn.exists(old).await?;
            if exists {
                let moved: bool = redis::cmd("RENAMENX")
                    .arg(old)
                    .arg(new)
                    .query_async(conn)
                    .await?;
                renamed += usize::from(moved);
            }
        }
    }
    Ok(renamed)
}

/// The rollout id reserved for `key` (a schedule's due time): the one reserved before, or
/// `fresh`, for a day.
pub async fn reserve_id(conn: &mut RedisConn, key: &str, fresh: &str) -> Result<String> {
    let k = redis_keys::rollout_key(key);
    let set: Option<String> = redis::cmd("SET")
        .arg(&k)
        .arg(fresh)
        .arg("NX")
        .arg("EX")
        .arg(crate::jobs::enqueue::idempotency::TTL_SECS)
        .query_async(conn)
        .await?;
    if set.is_some() {
        return Ok(fresh.to_owned());
    }
    let held: Option<String> = conn.get(&k).await?;
    Ok(held.unwrap_or_else(|| fresh.to_owned()))
}

/// The rollouts the drivers look after.
pub async fn active_ids(conn: &mut RedisConn) -> Result<Vec<String>> {
    Ok(conn.smembers(redis_keys::ROLLOUTS_ACTIVE).await?)
}

/// Hands a rollout back to the drivers (a retry) or takes it away (over, nothing runs).
pub async fn set_active(conn: &mut RedisConn, id: &str, active: bool) -> Result<()> {
    if active {
        let _: i64 = conn.sadd(redis_keys::ROLLOUTS_ACTIVE, id).await?;
    } else {
        let _: i64 = conn.srem(redis_keys::ROLLOUTS_ACTIVE, id).await?;
    }
    Ok(())
}

/// The newest rollouts first, at most `limit`.
pub async fn list(conn: &mut RedisConn, limit: usize) -> Result<Vec<Rollout>> {
    let stop = isize::try_from(limit)
        .unwrap_or(isize::MAX)
        .saturating_sub(1);
    let ids: Vec<String> = conn.zrevrange(redis_keys::ROLLOUTS_INDEX, 0, stop).await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match load(conn, &id).await {
            Ok(r) => out.push(r),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// A rollout's history, oldest first (the newest `limit` entries).
pub async fn history(conn: &mut RedisConn, id: &str, limit: isize) -> Result<Vec<HistoryEntry>> {
    let raw: Vec<String> = conn
        .lrange(redis_keys::rollout_history(id), -limit, -1)
        .await?;
    Ok(raw
        .iter()
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect())
}

/// Takes (or keeps) the right to drive rollout `id` for a while. Two panels driving at once
/// would still be safe (writes are compare-and-swap, jobs carry idempotency keys); the lease
/// only saves them the double work.
pub async fn lease(conn: &mut RedisConn, id: &str, holder: &str, ms: u64) -> Result<bool> {
    let key = redis_keys::rollout_lease(id);
    let taken: Option<String> = redis::cmd("SET")
        .arg(&key)
        .arg(holder)
        .arg("NX")
        .arg("PX")
        .arg(ms)
        .query_async(conn)
        .await?;
    if taken.is_some() {
        return Ok(true);
    }
    let current: Option<String> = conn.get(&key).await?;
    if current.as_deref() == Some(holder) {
        let _: bool = conn.pexpire(&key, ms as i64).await?;
        return Ok(true);
    }
    Ok(false)
}
