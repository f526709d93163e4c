//! Start-up recovery of what the processing list still holds (the runner died or was stopped
//! mid-job): leftover processes of those jobs are killed first; a job that was running is
//! re-run when its manifest says `idempotent: true` or it is an upgrade (which its journal
//! finishes or rolls back), and marked `interrupted` otherwise; a job that never started goes
//! back to the queue.

use std::sync::Arc;

use deadpool_redis::redis::{self, AsyncCommands, RedisResult};
use outfitter_contract::envelope::{Envelope, SignedJob};
use outfitter_contract::event::Event;
use outfitter_contract::job::{JobState, field, write};
use outfitter_contract::lifecycle::Action;

use super::job::outgoing;
use super::store::{self, JobResult};
use super::{Shared, now_ms, now_secs};
use crate::sandbox::tree::{self, JobScope};

/// What recovery did with one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    Rerun { job_id: String, attempt: u32 },
    Requeued { job_id: String },
    Interrupted { job_id: String },
    Dropped,
}

/// Recovers every job in the processing list.
pub async fn recover(shared: &Arc<Shared>) -> RedisResult<Vec<Recovered>> {
    let mut conn = shared.redis().await?;
    let wires: Vec<String> = conn.lrange(shared.names.processing(), 0, -1).await?;
    let mut done = Vec::new();
    for wire in wires {
        let env = SignedJob::from_wire(&wire)
            .and_then(|s| s.verify(&shared.keys.signing))
            .ok()
            .filter(|e| e.agent_id == shared.cfg.agent_id);
        let Some(env) = env else {
            // Not a job this runner can vouch for: take it off the list, on the record.
            store::reject(
                &mut conn,
                &shared.names,
                None,
                &wire,
                "unverifiable job in the processing list",
                None,
                |_, _| false,
            )
            .await?;
            done.push(Recovered::Dropped);
            continue;
        };
        kill_leftovers(shared, &env).await;
        done.push(recover_one(shared, &mut conn, &wire, env).await?);
    }
    Ok(done)
}

/// A script of this job may still run (reparented to init when the runner died): kill it.
async fn kill_leftovers(shared: &Shared, env: &Envelope) {
    let sys = shared.sandbox.sys;
    let cgroup = shared
        .sandbox
        .layout
        .dirs_named(sys, &format!("{}.{}", env.job_id, env.attempt))
        .unwrap_or_else(|e| {
            tracing::warn!(job = %env.job_id, error = %e, "cannot look for the previous run's cgroup");
            Default::default()
        });
    let scope = JobScope {
        env_marker: format!("JOB_ID={}", env.job_id).into_bytes(),
        root_pid: 0,
        pgid: 0,
        runner_pid: sys.own_pid(),
        runner_pgid: sys.own_process_group(),
        cgroup: Some(Arc::new(cgroup)),
        // The previous runner's orphans went to PID 1: test every process for the marker.
        orphans_come_to_runner: false,
    };
    let t = tree::terminate(sys, &scope, shared.sandbox.limits.kill_grace).await;
    if t.found > 0 {
        tracing::warn!(job = %env.job_id, killed = t.found, "killed processes left by the previous runner");
    }
    if let Some(cg) = &scope.cgroup {
        cg.remove(sys).await;
    }
}

async fn recover_one(
    shared: &Arc<Shared>,
    conn: &mut super::link::Conn,
    wire: &str,
    env: Envelope,
) -> RedisResult<Recovered> {
    let job = env.job_id.clone();
    let (state, attempts): (Option<String>, Option<String>) = redis::cmd("HMGET")
        .arg(shared.names.job(&job))
        .arg(field::STATE)
        .arg(field::ATTEMPTS)
        .query_async(conn)
        .await?;
    let ran = state.and_then(|s| s.parse::<JobState>().ok()) == Some(JobState::Running)
        && attempts.and_then(|a| a.parse::<u32>().ok()) == Some(env.attempt);
    let seen: Option<f64> = conn
        .zscore(shared.names.seen(), store::seen_member(&job, env.attempt))
        .await?;
    if !ran && seen.is_none() {
        // Never started: back to the queue as it was.
        store::requeue(conn, &shared.names, &job, wire, wire, None).await?;
        return Ok(Recovered::Requeued { job_id: job });
    }
    let idempotent = shared
        .catalog()
        .get(&env.app_id)
        .is_some_and(|b| b.manifest.idempotent);
    // An upgrade is always taken again: its journal tells the re-run to start over (the
    // backup had not finished) or to roll back, so the installation never stays half done.
    let upgrade = env
        .lifecycle
        .as_ref()
        .is_some_and(|o| o.action == Action::Upgrade);
    if ran && !idempotent && !upgrade {
        let at = now_ms();
        let reason =
            "the runner stopped while the job ran; the app is not idempotent, so it is not re-run"
                .to_owned();
        let event = Event::state(
            at,
            env.attempt,
            JobState::Interrupted,
            None,
            Some(reason.clone()),
        );
        let fields = write::terminal(JobState::Interrupted, at, Some(&reason));
        let result = JobResult {
            job_id: job.clone(),
            processing_wire: wire.to_owned(),
            event: outgoing(&event, &fields),
            schedule: None,
            finished_at: at,
        };
        store::apply_result(conn, &shared.names, &result).await?;
        return Ok(Recovered::Interrupted { job_id: job });
    }
    // Ran and idempotent, or claimed but never started: a fresh attempt.
    let next = env.next_attempt(now_secs(), env.queue_ttl());
    let new_wire = next.sign(&shared.keys.signing).to_wire();
    let reason = if ran && upgrade {
        "the runner stopped during the upgrade; re-run to finish it or roll it back"
    } else if ran {
        "the runner stopped while the job ran; re-run because the app is idempotent"
    } else {
        "taken again after the runner restarted"
    };
    let event = Event::state(
        now_ms(),
        next.attempt,
        JobState::Queued,
        None,
        Some(reason.to_owned()),
    );
    // A cancel asked for while the runner was down still holds for the re-run.
    let fields = write::queued(&new_wire, Some(reason), write::CancelRequest::Keep);
    store::requeue(
        conn,
        &shared.names,
        &job,
        wire,
        &new_wire,
        Some(&outgoing(&event, &fields)),
    )
    .await?;
    Ok(Recovered::Rerun {
        job_id: job,
        attempt: next.attempt,
    })
}
