//! Deletes finished jobs (record, events, index entries) and audit entries older than the
//! retention. Jobs that are not finished are kept whatever their age.

use std::time::Duration;

use outfitter_contract::job::{JobState, field};
use outfitter_contract::redis_keys::{self, AgentRedisKeys};
use outfitter_redis::RedisConn;
use redis::AsyncCommands;

use crate::audit;
use crate::clock::now_ms;

/// How often the sweep runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);
const BATCH: isize = 500;

/// Deletes what is older than `retention_days`; returns the number of jobs deleted.
pub async fn sweep(conn: &mut RedisConn, retention_days: u64) -> redis::RedisResult<usize> {
    let cutoff = now_ms() - (retention_days.min(100_000) as i64) * 86_400_000;
    let mut deleted = 0;
    let mut offset = 0;
    loop {
        let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(redis_keys::JOBS_INDEX)
            .arg("-inf")
            .arg(cutoff)
            .arg("LIMIT")
            .arg(offset)
            .arg(BATCH)
            .query_async(conn)
            .await?;
        if ids.is_empty() {
            break;
        }
        let mut kept = 0;
        for id in &ids {
            let agent: Option<String> = conn.hget(redis_keys::JOB_AGENT, id).await?;
            if let Some(agent) = &agent {
                let keys = AgentRedisKeys::new(agent);
                let state: Option<String> = conn.hget(keys.job(id), field::STATE).await?;
                let finished = state
                    .as_deref()
                    .and_then(|s| s.parse::<JobState>().ok())
                    .is_none_or(JobState::is_terminal);
                if !finished {
                    kept += 1;
                    continue;
                }
                let _: () = conn.del(&[keys.job(id), keys.job_events(id)]).await?;
            }
            let _: () = redis::pipe()
                .zrem(redis_keys::JOBS_INDEX, id)
                .hdel(redis_keys::JOB_AGENT, id)
                .query_async(conn)
                .await?;
            deleted += 1;
        }
        offset += kept;
        if (ids.len() as isize) < BATCH {
            break;
        }
    }
    audit::trim_before(conn, cutoff).await?;
    Ok(deleted)
}

/// Runs the sweep forever. Spawn once per process.
pub async fn run(mut conn: RedisConn, retention_days: u64) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        match sweep(&mut conn, retention_days).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "retention sweep deleted old jobs"),
            Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
        }
    }
}
