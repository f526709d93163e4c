//! The daemon's two loops: taking jobs (BLMOVE on a dedicated connection, at most
//! `concurrency` at a time) and the tick (outbox flush, retry promotion, replay-guard pruning).

use std::sync::Arc;
use std::time::Instant;

use deadpool_redis::redis;
use outfitter_redis::{RedisConn, RedisTarget, Timeouts};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{
    FETCH_BLOCK_SECS, PRUNE_EVERY, REDIS_RETRY, REDIS_TIMEOUT, Shared, TICK, job, now_ms, now_secs,
    store,
};
use crate::metrics::RedisOp;

/// A connection for BLMOVE alone, without response timeout (it blocks by design).
async fn blocking_connection(target: &RedisTarget) -> redis::RedisResult<RedisConn> {
    let timeouts = Timeouts {
        connect: REDIS_TIMEOUT,
        response: None,
    };
    target.connect_plain(timeouts).await
}

/// Takes jobs until the runner stops, at most `concurrency` scripts at a time (a job gives
/// its slot back when its script is done, before its result is written); returns the jobs
/// still running.
pub(super) async fn fetch_loop(shared: Arc<Shared>) -> JoinSet<()> {
    let slots = Arc::new(Semaphore::new(shared.cfg.concurrency));
    let mut stopping = shared.stopping.clone();
    let mut jobs = JoinSet::new();
    let mut conn = None;
    loop {
        while jobs.try_join_next().is_some() {}
        if *stopping.borrow() {
            return jobs;
        }
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore never closes"),
            _ = stopping.wait_for(|s| *s) => return jobs,
        };
        if conn.is_none() {
            match blocking_connection(&shared.cfg.redis).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    shared.metrics.redis_error(RedisOp::Fetch);
                    tracing::warn!(error = %e, "redis unavailable");
                    tokio::time::sleep(REDIS_RETRY).await;
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected above");
        let taken: redis::RedisResult<Option<String>> = redis::cmd("BLMOVE")
            .arg(shared.names.queue())
            .arg(shared.names.processing())
            .arg("RIGHT")
            .arg("LEFT")
            .arg(FETCH_BLOCK_SECS)
            .query_async(c)
            .await;
        match taken {
            Ok(Some(wire)) => {
                let taken_at = Instant::now();
                let s = shared.clone();
                jobs.spawn(job::handle(s, wire, taken_at, permit));
            }
            Ok(None) => {}
            Err(e) => {
                shared.metrics.redis_error(RedisOp::Fetch);
                tracing::warn!(error = %e, "BLMOVE failed; reconnecting");
                conn = None;
                tokio::time::sleep(REDIS_RETRY).await;
            }
        }
    }
}

/// Promotes due retries, flushes the outbox (and counts what is left in it), prunes the
/// replay guard.
pub(super) async fn tick_forever(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(TICK);
    let mut last_prune = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let running = shared.running_jobs();
        if let Err(e) = shared
            .outbox
            .flush_finished(&shared.link, &shared.names, &running)
            .await
        {
            if e.is_redis() {
                shared.metrics.redis_error(RedisOp::Tick);
            }
            tracing::debug!(error = %e, "outbox flush pending");
        }
        shared
            .metrics
            .set_outbox_depth(shared.outbox.pending_jobs().len());
        let Ok(mut conn) = shared.redis().await else {
            shared.metrics.redis_error(RedisOp::Tick);
            continue;
        };
        if let Err(e) = store::promote_due(&mut conn, &shared.names, now_ms()).await {
            shared.metrics.redis_error(RedisOp::Tick);
            tracing::debug!(error = %e, "retry promotion pending");
        }
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = tokio::time::Instant::now();
            let _ = store::prune_seen(&mut conn, &shared.names, now_secs()).await;
        }
    }
}
