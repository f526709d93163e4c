//! One taken job, from checks to result: refuse, cancel, or run it in the sandbox, stream its
//! events, apply the exit-code policy, and hand the result to the outbox.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use outfitter_contract::event::{Event, EventBody, OutputStream, parse_progress};
use outfitter_contract::job::{JobState, field, write};
use tokio::sync::{mpsc, watch};
use tracing::Instrument as _;

use super::checks::{self, Accepted, Refusal, Verdict};
use super::events::EventWriter;
use super::result::conclude;
use super::store::{self, JobResult, Outgoing};
use super::{Shared, now_ms};
use crate::attempt::{self, JobIdentity};
use crate::joblog::JobLog;
use crate::output::{LINE_CHANNEL_CAPACITY, OutputLine};
use crate::sandbox::{Abort, Finish, Outcome};

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

/// Checks and then refuses, cancels or runs a job just taken from the queue.
pub async fn handle(shared: Arc<Shared>, wire: String) {
    let mut claimed = false;
    let verdict = loop {
        match checks::check(&shared, &wire, &mut claimed).await {
            Ok(v) => break v,
            Err(e) => {
                tracing::warn!(error = %e, "redis failed during the checks; retrying");
                if !shared.pause_unless_stopping().await {
                    return; // left in processing: recovered at the next start
                }
            }
        }
    };
    match verdict {
        Verdict::Refuse(r) => refuse(&shared, &wire, &r).await,
        Verdict::Canceled(env) => {
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
        }
        Verdict::Run(acc) => {
            // Every line logged while the job runs carries these (under `span` in JSON logs).
            let span = tracing::info_span!(
                "job",
                job_id = %acc.envelope.job_id,
                agent_id = %shared.cfg.agent_id,
                app_id = %acc.envelope.app_id,
            );
            run(shared, wire, *acc).instrument(span).await
        }
    }
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
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot record the refusal; retrying");
                if !shared.pause_unless_stopping().await {
                    return;
                }
            }
        }
    }
}

/// Writes a result to the outbox, then tries to apply it (the flusher retries on failure). The
/// file is synced to disk only when it must wait for Redis.
async fn deliver_result(shared: &Arc<Shared>, result: JobResult) {
    let job = result.job_id.clone();
    if let Err(e) = shared.outbox.put_result(&result).await {
        tracing::error!(job, error = %e, "cannot write the outbox");
    }
    if let Err(e) = shared
        .outbox
        .flush_job(&shared.pool, &shared.names, &job, true)
        .await
    {
        tracing::warn!(job, error = %e, "result kept in the outbox until redis is back");
        if let Err(e) = shared.outbox.make_durable(&job).await {
            tracing::error!(job, error = %e, "cannot sync the outbox");
        }
    }
}

async fn run(shared: Arc<Shared>, wire: String, acc: Accepted) {
    let Accepted {
        envelope: env,
        bundle,
        values,
    } = acc;
    let job = env.job_id.clone();
    let (abort_tx, abort_rx) = watch::channel(None);
    let abort_tx = Arc::new(abort_tx);
    shared.register(&job, abort_tx.clone());
    let writer = EventWriter::start(shared.clone(), job.clone());
    let started_at = now_ms();
    let header = format!(
        "attempt {} of {} {} started at {started_at}",
        env.attempt, env.app_id, env.app_version
    );
    let mut log = JobLog::open(&shared.cfg.log_dir, &job, &header)
        .map_err(|e| tracing::warn!(job, error = %e, "no job log file"))
        .ok();
    let running = Event::state(started_at, env.attempt, JobState::Running, None, None);
    writer
        .send(outgoing(&running, &write::running(env.attempt, started_at)))
        .await;
    let poller = tokio::spawn(poll_cancel(shared.clone(), job.clone(), abort_tx));
    let who = JobIdentity {
        job_id: job.clone(),
        attempt: env.attempt,
        agent_id: shared.cfg.agent_id.clone(),
    };
    let prepared = attempt::prepare(&bundle, &values, &who);
    let masker = prepared.masker.clone();
    let (tx, rx) = mpsc::channel(LINE_CHANNEL_CAPACITY);
    let (result, mut tail) = tokio::join!(
        shared.sandbox.run(&prepared, tx, abort_rx),
        consume(rx, &writer, &mut log, env.attempt)
    );
    poller.abort();
    // A note of the runner's own: masked, in the log file, the tail and the events.
    let note = |log: &mut Option<JobLog>, tail: &mut VecDeque<String>, text: String| {
        let line = OutputLine::runner(masker.mask_str(&text));
        if let Some(l) = log.as_mut() {
            l.line(now_ms(), &line);
        }
        push_tail(tail, &line.text);
        let ev = Event::new(
            now_ms(),
            env.attempt,
            EventBody::Log {
                stream: OutputStream::Runner,
                line: line.text,
            },
        );
        outgoing(&ev, &[])
    };
    let (ending, survivors) = match result {
        Ok(outcome) => {
            for text in outcome_notes(&outcome) {
                writer.send(note(&mut log, &mut tail, text)).await;
            }
            if outcome.finish == Finish::Stopped {
                writer
                    .send(note(
                        &mut log,
                        &mut tail,
                        "the runner stopped; the job is recovered when it starts again".into(),
                    ))
                    .await;
                writer.close().await;
                if let Some(l) = log {
                    l.close();
                }
                shared.unregister(&job);
                return;
            }
            (outcome.finish.ending(), outcome.survivors)
        }
        Err(e) => {
            writer.send(note(&mut log, &mut tail, e.to_string())).await;
            (None, Vec::new())
        }
    };
    let finished_at = now_ms();
    let retry = attempt::retry_settings(&bundle.manifest);
    let result = conclude(
        &shared.keys.signing,
        &env,
        &wire,
        ending,
        retry,
        &tail,
        &survivors,
        finished_at,
    );
    if let Some(mut l) = log {
        l.note(&format!(
            "attempt {} finished at {finished_at}: {}",
            env.attempt, result.event.e
        ));
        l.close();
    }
    writer.close().await;
    deliver_result(&shared, result).await;
    shared.unregister(&job);
}

fn outcome_notes(o: &Outcome) -> Vec<String> {
    let mut notes = o.notes.clone();
    if o.discarded_bytes > 0 {
        notes.push(format!(
            "{} of {} bytes of output were discarded",
            o.discarded_bytes, o.output_bytes
        ));
    }
    if !o.survivors.is_empty() {
        notes.push(format!(
            "left running on purpose: {}",
            o.survivors.join(", ")
        ));
    }
    notes
}

fn push_tail(tail: &mut VecDeque<String>, text: &str) {
    if tail.len() == LAST_LINES {
        tail.pop_front();
    }
    tail.push_back(text.chars().take(LAST_LINE_CHARS).collect());
}

/// Turns output lines into events (progress lines into progress events) and log file lines.
async fn consume(
    mut rx: mpsc::Receiver<OutputLine>,
    writer: &EventWriter,
    log: &mut Option<JobLog>,
    attempt: u32,
) -> VecDeque<String> {
    let mut tail = VecDeque::with_capacity(LAST_LINES);
    while let Some(line) = rx.recv().await {
        let ts = now_ms();
        if let Some(l) = log.as_mut() {
            l.line(ts, &line);
        }
        let progress = match line.stream {
            OutputStream::Runner => None,
            _ => parse_progress(&line.text),
        };
        let o = match progress {
            Some((percent, message)) => outgoing(
                &Event::new(
                    ts,
                    attempt,
                    EventBody::Progress {
                        percent,
                        message: message.to_owned(),
                    },
                ),
                &[
                    (field::PROGRESS, percent.to_string()),
                    (field::PROGRESS_MESSAGE, message.to_owned()),
                ],
            ),
            None => {
                push_tail(&mut tail, &line.text);
                outgoing(
                    &Event::new(
                        ts,
                        attempt,
                        EventBody::Log {
                            stream: line.stream,
                            line: line.text,
                        },
                    ),
                    &[],
                )
            }
        };
        writer.send(o).await;
    }
    tail
}

/// Reads the record's cancel flag now and then; a missed control message still cancels.
async fn poll_cancel(shared: Arc<Shared>, job: String, abort: Arc<watch::Sender<Option<Abort>>>) {
    loop {
        if let Ok(mut conn) = shared.redis().await
            && let Ok(true) = store::cancel_requested(&mut conn, &shared.names, &job).await
        {
            let _ = abort.send(Some(Abort::Cancel));
            return;
        }
        tokio::time::sleep(CANCEL_POLL).await;
    }
}
