//! Running the steps of one attempt: each script or health check is one sandbox run with the
//! job's events, log file and last lines; the runner's notes say which step starts and how
//! it ended, and a lifecycle job's record follows its phase.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use outfitter_contract::envelope::Envelope;
use outfitter_contract::event::{Event, EventBody, OutputStream, parse_progress};
use outfitter_contract::exit_policy::Ending;
use outfitter_contract::inputs::InputValues;
use outfitter_contract::job::{field, write};
use outfitter_contract::lifecycle::{Phase, StepFacts};
use outfitter_contract::manifest::Bundle;
use tokio::sync::{mpsc, watch};

use crate::attempt::{self, JobIdentity};
use crate::daemon::events::EventWriter;
use crate::daemon::job::{LAST_LINE_CHARS, LAST_LINES, outgoing};
use crate::daemon::{Shared, now_ms};
use crate::joblog::JobLog;
use crate::mask::Masker;
use crate::output::{LINE_CHANNEL_CAPACITY, OutputLine};
use crate::sandbox::{Abort, Finish, Outcome, Program};

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEnd {
    /// It ran to an ending (exit, timeout, cancel).
    Ended(Ending),
    /// It could not start.
    NotStarted,
    /// The runner is stopping: the job is recovered at the next start.
    Stopped,
}

impl StepEnd {
    pub fn passed(&self) -> bool {
        *self == StepEnd::Ended(Ending::Exited(0))
    }

    /// The contract's view (`None`: could not start).
    pub fn ending(&self) -> Option<Ending> {
        match self {
            StepEnd::Ended(e) => Some(*e),
            _ => None,
        }
    }
}

/// One step to run.
#[derive(Debug, Clone)]
pub struct Step<'b> {
    /// What the notes call it ("install_script", "health check").
    pub name: String,
    pub bundle: &'b Bundle,
    pub values: &'b InputValues,
    pub program: Program,
    pub facts: StepFacts,
    /// Overrides the manifest's timeout (the health check's own).
    pub timeout: Option<std::time::Duration>,
}

/// What the steps of one attempt share.
pub struct StepRunner<'a> {
    pub shared: Arc<Shared>,
    pub writer: &'a EventWriter,
    pub log: Option<JobLog>,
    pub tail: VecDeque<String>,
    pub abort: watch::Receiver<Option<Abort>>,
    pub who: JobIdentity,
    /// Masks the runner's notes: the first step's sensitive values.
    pub masker: Masker,
    /// What the steps that passed left running on purpose.
    pub survivors: Vec<String>,
    /// Whether the record follows the phase (lifecycle jobs only).
    pub track_phase: bool,
    /// Whether the notes name each step: not for a plain install of one script, whose
    /// output stays what it always was.
    pub narrate: bool,
    /// When the job was taken off the queue: the first script's spawn is measured from it
    /// (`outfitter_runner_spawn_latency_seconds`), once.
    pub taken_at: Option<Instant>,
    steps: u32,
}

impl<'a> StepRunner<'a> {
    /// The steps of one attempt of `env`'s job, on `bundle` with `values`.
    pub fn new(
        shared: Arc<Shared>,
        writer: &'a EventWriter,
        log: Option<JobLog>,
        abort: watch::Receiver<Option<Abort>>,
        env: &Envelope,
        bundle: &Bundle,
        values: &InputValues,
    ) -> Self {
        let who = JobIdentity {
            job_id: env.job_id.clone(),
            attempt: env.attempt,
            agent_id: shared.cfg.agent_id.clone(),
        };
        StepRunner {
            shared,
            writer,
            log,
            tail: VecDeque::with_capacity(LAST_LINES),
            abort,
            who,
            masker: attempt::masker_for(&bundle.manifest, values),
            survivors: Vec::new(),
            track_phase: env.lifecycle.is_some(),
            narrate: env.lifecycle.is_some() || bundle.manifest.health_check.is_some(),
            taken_at: None,
            steps: 0,
        }
    }

    /// A note of the runner's own: masked, in the log file, the tail and the events, with
    /// `fields` set on the record in the same step.
    pub async fn note_with(&mut self, text: &str, fields: &[(&str, String)]) {
        let line = OutputLine::runner(self.masker.mask_str(text));
        if let Some(l) = self.log.as_mut() {
            l.line(now_ms(), &line);
        }
        push_tail(&mut self.tail, &line.text);
        let ev = Event::new(
            now_ms(),
            self.who.attempt,
            EventBody::Log {
                stream: OutputStream::Runner,
                line: line.text,
            },
        );
        self.writer.send(outgoing(&ev, fields)).await;
    }

    pub async fn note(&mut self, text: &str) {
        self.note_with(text, &[]).await;
    }

    /// Moves a lifecycle job's record to `phase`.
    pub async fn phase(&mut self, phase: Phase) {
        if self.track_phase {
            let fields: Vec<(&str, String)> = write::phase(phase).into_iter().collect();
            self.note_with(&format!("phase: {}", phase.as_str()), &fields)
                .await;
        }
    }

    /// Runs one step in the sandbox and says how it ended.
    pub async fn run(&mut self, step: Step<'_>) -> StepEnd {
        match *self.abort.borrow() {
            Some(Abort::Shutdown) => return StepEnd::Stopped,
            Some(Abort::Cancel) => return StepEnd::Ended(Ending::Canceled),
            None => {}
        }
        self.steps += 1;
        let mut prepared = attempt::prepare(
            step.bundle,
            step.values,
            &self.who,
            step.program,
            &step.facts,
        );
        // Each step its own cgroup: a failed step's cleanup must not take the cgroup of what
        // an earlier step left running on purpose.
        if self.steps > 1 {
            prepared.cgroup_name = format!("{}.s{}", prepared.cgroup_name, self.steps);
        }
        if let Some(t) = step.timeout {
            prepared.timeout = t;
        }
        if self.narrate {
            self.note(&format!(
                "step {}: {} ({}={}) started",
                self.steps,
                step.name,
                outfitter_contract::lifecycle::ACTION_VAR,
                step.facts.action.map_or("install", |a| a.as_str())
            ))
            .await;
        }
        let (tx, rx) = mpsc::channel(LINE_CHANNEL_CAPACITY);
        let abort = self.abort.clone();
        let writer = self.writer;
        let attempt_no = self.who.attempt;
        let mut log = self.log.take();
        let mut tail = std::mem::take(&mut self.tail);
        let taken_at = self.taken_at.take();
        let metrics = &self.shared.metrics;
        let spawned = move || {
            if let Some(t) = taken_at {
                metrics.spawned(t.elapsed());
            }
        };
        let (result, ()) = tokio::join!(
            self.shared
                .sandbox
                .run_notifying(&prepared, tx, abort, spawned),
            consume(rx, writer, &mut log, &mut tail, attempt_no)
        );
        self.log = log;
        self.tail = tail;
        let end = match result {
            Ok(outcome) => {
                for text in outcome_notes(&outcome) {
                    self.note(&text).await;
                }
                match outcome.finish {
                    Finish::Stopped => StepEnd::Stopped,
                    f => {
                        if f == Finish::Exited(0) {
                            for s in outcome.survivors {
                                if !self.survivors.contains(&s) {
                                    self.survivors.push(s);
                                }
                            }
                        }
                        f.ending().map_or(StepEnd::Stopped, StepEnd::Ended)
                    }
                }
            }
            Err(e) => {
                self.note(&e.to_string()).await;
                StepEnd::NotStarted
            }
        };
        let how = match &end {
            StepEnd::Ended(Ending::Exited(c)) => format!("exited {c}"),
            StepEnd::Ended(Ending::TimedOut) => "timed out".to_owned(),
            StepEnd::Ended(Ending::Canceled) => "canceled".to_owned(),
            StepEnd::NotStarted => "could not start".to_owned(),
            StepEnd::Stopped => "stopped with the runner".to_owned(),
        };
        if self.narrate {
            self.note(&format!("step {}: {} {how}", self.steps, step.name))
                .await;
        }
        end
    }
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
    tail: &mut VecDeque<String>,
    attempt: u32,
) {
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
                push_tail(tail, &line.text);
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
}
