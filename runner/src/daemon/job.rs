//! One taken job, from checks to result: refuse, cancel, or run its steps in the sandbox
//! (`lifecycle`), apply the exit-code policy, and hand the result to the outbox.

use std::sync::Arc;
use std::time::{Duration, Instant};

use outfitter_contract::event::Event;
use outfitter_contract::job::{JobState, write};
use tokio::sync::{OwnedSemaphorePermit, watch};
use tracing::Instrument as _;

use super::checks::{self, Accepted, Claim, Refusal};
use super::events::EventWriter;
use super::result::conclude;
use super::store::{self, JobResult, Outgoing};
use super::{Shared, now_ms};
use crate::attempt;
use crate::joblog::JobLog;
use crate::lifecycle::steps::StepRunner;
use crate::lifecycle::{self, Driven};
use crate::metrics::RedisOp;
use crate::sandbox::Abort;

/// Lines kept in the record's `last_lines`.
pub const LAST_LINES: usize = 20;
/// Characters kept of each of those lines.
pub const LAST_LINE_CHARS: usize = 500;
/// How often the record's cancel flag is read while a job runs (in case a control message
/// was missed while the subscription was down).
pub const CANCEL_POLL: Duration = Duration::from_secs(2);

/// An event with the record fields to set in the same step.
pub fn outgoing(event: &Event, fields: &[(&str, String)]) -> Outgoing {
    Outgoing {
        e: event.to_unsequenced_json(),
        f: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        seq: None,
    }
}

/// Checks and then refuses, cancels or runs a job just taken from the queue at `taken_at`,
/// holding one of the `concurrency` slots until its script is done.
pub async fn handle(
    shared: Arc<Shared>,
    wire: String,
    taken_at: Instant,
    slot: OwnedSemaphorePermit,
) {
    let acc = match checks::check(&shared, &wire).await {
        Ok(acc) => acc,
        Err(r) => return refuse(&shared, &wire, &r).await,
    };
    // Fixed before the first try: a repeated claim recognises its own by it.
    let started_at = now_ms();
    let mut repeated = false;
    let claim = loop {
        match checks::claim(&shared, &acc, started_at, repeated).await {
            Ok(c) => break c,
            Err(e) => {
                shared.metrics.redis_error(RedisOp::Checks);
                tracing::warn!(error = %e, "redis failed during the checks; retrying");
                repeated = true;
                if !shared.pause_unless_stopping().await {
                    return; // left in processing: recovered at the next start
                }
            }
        }
    };
    let env = &acc.envelope;
    match claim {
        Claim::Replay => refuse(&shared, &wire, &checks::replay(env)).await,
        Claim::Canceled => {
            let at = now_ms();
            let reason = "canceled before it started".to_owned();
            let event = Event::state(
                at,
                env.attempt,
                JobState::Canceled,
                None,
                Some(reason.clone()),
            );
            let fields = write::terminal(JobState::Canceled, at, Some(&reason));
            deliver_result(
                &shared,
                JobResult {
                    job_id: env.job_id.clone(),
                    processing_wire: wire,
                    event: outgoing(&event, &fields),
                    schedule: None,
                    finished_at: at,
                },
            )
            .await;
            shared.metrics.job_finished(JobState::Canceled, None);
        }
        Claim::Running { next_seq } => {
            // Every line logged while the job runs carries these (under `span` in JSON logs).
            let span = tracing::info_span!(
                "job",
                job_id = %env.job_id,
                agent_id = %shared.cfg.agent_id,
                app_id = %env.app_id,
            );
            let start = Start {
                taken_at,
                started_at,
                next_seq,
            };
            run(shared, wire, acc, start, slot).instrument(span).await
        }
    }
}

/// When an accepted attempt started, and the sequence number of its next event.
#[derive(Debug, Clone, Copy)]
struct Start {
    taken_at: Instant,
    started_at: i64,
    next_seq: Option<u64>,
}

async fn refuse(shared: &Arc<Shared>, wire: &str, r: &Refusal) {
    tracing::warn!(job = ?r.job_hint, reason = %r.reason, "job refused");
    let at = now_ms();
    let event = Event::state(at, r.attempt, r.state, None, Some(r.reason.clone()));
    let fields = write::terminal(r.state, at, Some(&r.reason));
    let o = outgoing(&event, &fields);
    loop {
        let done = match shared.redis().await {
            Ok(mut conn) => store::reject(
                &mut conn,
                &shared.names,
                r.job_hint.as_deref(),
                wire,
                &r.reason,
                Some(&o),
                |state, signed| checks::refusal_touches_record(r, wire, state, signed),
            )
            .await
            .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match done {
            Ok(()) => {
                shared.metrics.job_finished(r.state, None);
                return;
            }
            Err(e) => {
                shared.metrics.redis_error(RedisOp::Checks);
                tracing::warn!(error = %e, "cannot record the refusal; retrying");
                if !shared.pause_unless_stopping().await {
                    return;
                }
            }
        }
    }
}

/// Applies a result to Redis; only when that fails does it go to the outbox (synced to disk),
/// where the flusher retries it. A job whose events wait in the outbox sends its result after
/// them, through the outbox.
async fn deliver_result(shared: &Arc<Shared>, result: JobResult) {
    let job = result.job_id.clone();
    if !shared.outbox.is_spooling(&job).await {
        let applied = match shared.redis().await {
            Ok(mut conn) => store::apply_result(&mut conn, &shared.names, &result).await,
            Err(e) => Err(e),
        };
        match applied {
            Ok(()) => return,
            Err(e) => {
                shared.metrics.redis_error(RedisOp::Result);
                tracing::warn!(job, error = %e, "result kept in the outbox until redis is back");
            }
        }
    }
    if let Err(e) = shared.outbox.put_result(&result).await {
        tracing::error!(job, error = %e, "cannot write the outbox");
    }
    if let Err(e) = shared.outbox.make_durable(&job).await {
        tracing::error!(job, error = %e, "cannot sync the outbox");
    }
    if let Err(e) = shared
        .outbox
        .flush_job(&shared.link, &shared.names, &job, true)
        .await
    {
        if e.is_redis() {
            shared.metrics.redis_error(RedisOp::Result);
        }
        tracing::debug!(job, error = %e, "outbox flush pending");
    }
}

async fn run(
    shared: Arc<Shared>,
    wire: String,
    acc: Accepted,
    start: Start,
    slot: OwnedSemaphorePermit,
) {
    let Accepted {
        envelope: env,
        bundle,
        values,
    } = acc;
    let job = env.job_id.clone();
    let (abort_tx, abort_rx) = watch::channel(None);
    let abort_tx = Arc::new(abort_tx);
    shared.register(&job, abort_tx.clone());
    // The `running` event is in Redis already (the claim wrote it).
    let writer = EventWriter::start(shared.clone(), job.clone(), start.next_seq);
    let started_at = start.started_at;
    let action = env.lifecycle.as_ref().map(|o| o.action);
    let header = format!(
        "attempt {} of {} {} ({}) started at {started_at}",
        env.attempt,
        env.app_id,
        env.app_version,
        action.map_or("install", |a| a.as_str())
    );
    let log = JobLog::open(&shared.cfg.log_dir, &job, &header)
        .map_err(|e| tracing::warn!(job, error = %e, "no job log file"))
        .ok();
    let dir = shared.cfg.log_dir.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = JobLog::prepare_spare(&dir) {
            tracing::debug!(error = %e, "no spare job log file");
        }
    });
    // Kept before anything runs: a later upgrade rolls back to this copy.
    if let Err(e) = shared.stores.bundles.keep(&bundle) {
        tracing::warn!(job, error = %e, "bundle not kept in the bundle store");
    }
    let poller = tokio::spawn(poll_cancel(shared.clone(), job.clone(), abort_tx));
    let mut steps = StepRunner::new(
        shared.clone(),
        &writer,
        log,
        abort_rx,
        &env,
        &bundle,
        &values,
    );
    steps.taken_at = Some(start.taken_at);
    let driven = lifecycle::Job {
        runner: &mut steps,
        stores: &shared.stores,
        env: &env,
        bundle: &bundle,
        values: &values,
    }
    .drive()
    .await;
    poller.abort();
    // The script and everything it started are gone (the lifecycle waited for them): the
    // next job may start while this one's last events and result are written.
    drop(slot);
    let (ending, end) = match driven {
        Driven::Stopped => {
            steps
                .note("the runner stopped; the job is recovered when it starts again")
                .await;
            if let Some(l) = steps.log {
                l.close();
            }
            writer.close().await;
            shared.unregister(&job);
            return;
        }
        Driven::Ended { ending, lifecycle } => (ending, lifecycle),
    };
    let finished_at = now_ms();
    let retry = attempt::retry_settings(&bundle.manifest);
    let result = conclude(
        &shared.keys.signing,
        &env,
        &wire,
        ending,
        &end,
        retry,
        &steps.tail,
        &steps.survivors,
        finished_at,
    );
    if let Some(mut l) = steps.log {
        l.note(&format!(
            "attempt {} finished at {finished_at}: {}",
            env.attempt, result.event.e
        ));
        l.close();
    }
    writer.close().await;
    let state = result.state();
    deliver_result(&shared, result).await;
    shared.unregister(&job);
    if let Some(state) = state {
        let ran = Duration::from_millis((finished_at - started_at).max(0) as u64);
        shared.metrics.job_finished(state, Some(ran));
    }
}

/// Reads the record's cancel flag now and then; a missed control message still cancels. The
/// first read is one period after the claim, which read the flag in the same step as `running`.
async fn poll_cancel(shared: Arc<Shared>, job: String, abort: Arc<watch::Sender<Option<Abort>>>) {
    loop {
        tokio::time::sleep(CANCEL_POLL).await;
        let requested = match shared.redis().await {
            Ok(mut conn) => store::cancel_requested(&mut conn, &shared.names, &job)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match requested {
            Ok(true) => {
                let _ = abort.send(Some(Abort::Cancel));
                return;
            }
            Ok(false) => {}
            Err(e) => {
                shared.metrics.redis_error(RedisOp::Control);
                tracing::debug!(job, error = %e, "cannot read the cancel flag");
            }
        }
    }
}
