//! Job states and the job record both programs read and write (a Redis hash).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a job is in its life. Terminal states never change again, except through an
/// explicit retry, which starts a new attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// An attempt waits in the agent's queue (new, a person's retry, or re-run after a restart).
    Queued,
    /// The runner passed its checks and the script runs.
    Running,
    /// The script exited 2 (installation error) and the next attempt waits in the agent's
    /// scheduled set until its due time.
    Retrying,
    /// The script exited 0.
    Succeeded,
    /// The script exited 1, any code the policy does not know, or 2 on the last attempt.
    Failed,
    /// The script exited 3 (configuration error): a person must look before it runs again.
    NeedsAttention,
    /// The runner killed the script at its timeout, or the script exited 124.
    TimedOut,
    /// A person canceled it, while it waited or while it ran.
    Canceled,
    /// The runner restarted while the job ran and the app is not idempotent, so it was not
    /// run again on its own.
    Interrupted,
    /// A runner check refused it before anything ran (signature, agent, replay, digest,
    /// sealed inputs, inputs); the reason says which.
    Rejected,
    /// The runner took it after the envelope's `expires_at`, so it never ran.
    Expired,
}

impl JobState {
    /// Every state, in the order the docs and the job list's filter show them.
    pub const ALL: [JobState; 11] = [
        JobState::Queued,
        JobState::Running,
        JobState::Retrying,
        JobState::Succeeded,
        JobState::Failed,
        JobState::NeedsAttention,
        JobState::TimedOut,
        JobState::Canceled,
        JobState::Interrupted,
        JobState::Rejected,
        JobState::Expired,
    ];

    /// The state's name in the job record's `state` field, events and URLs; the same as its
    /// serde name, and what [`FromStr`] reads.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Retrying => "retrying",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::NeedsAttention => "needs_attention",
            JobState::TimedOut => "timed_out",
            JobState::Canceled => "canceled",
            JobState::Interrupted => "interrupted",
            JobState::Rejected => "rejected",
            JobState::Expired => "expired",
        }
    }

    /// True once nothing more will happen without a person.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            JobState::Queued | JobState::Running | JobState::Retrying
        )
    }

    /// Whether a person may ask for this job to run again.
    pub fn is_retryable_by_user(self) -> bool {
        matches!(
            self,
            JobState::Failed
                | JobState::NeedsAttention
                | JobState::TimedOut
                | JobState::Canceled
                | JobState::Interrupted
                | JobState::Expired
                // The panel re-signs a retry with the agent's current key, so a job refused
                // for a key the runner no longer has (after a rotation) can run again.
                | JobState::Rejected
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no job state.
#[derive(Debug, thiserror::Error)]
#[error("unknown job state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.chars().take(40).collect()))
    }
}

/// Field names of the job hash. Both programs write some of them; nobody spells them twice.
pub mod field {
    /// The job id, as in the envelope.
    pub const ID: &str = "id";
    /// The bundle's manifest id.
    pub const APP_ID: &str = "app_id";
    /// The manifest version the job was created for.
    pub const APP_VERSION: &str = "app_version";
    /// The agent whose queue the job is on.
    pub const AGENT_ID: &str = "agent_id";
    /// A [`super::JobState`] name ([`super::JobState::as_str`]).
    pub const STATE: &str = "state";
    /// The number of the latest attempt that started; 0 until the runner starts the first.
    pub const ATTEMPTS: &str = "attempts";
    /// Total attempts the manifest's retry policy allows (installation errors only).
    pub const MAX_ATTEMPTS: &str = "max_attempts";
    /// The latest attempt's exit status; empty while it runs or when it never exited.
    pub const EXIT_CODE: &str = "exit_code";
    /// The latest `::progress` percent, 0..=100.
    pub const PROGRESS: &str = "progress";
    /// The message of the latest `::progress` line.
    pub const PROGRESS_MESSAGE: &str = "progress_message";
    /// Unix ms when the panel enqueued the job.
    pub const CREATED_AT: &str = "created_at";
    /// Unix ms when the latest attempt started.
    pub const STARTED_AT: &str = "started_at";
    /// Unix ms when the latest attempt (or the job) ended.
    pub const FINISHED_AT: &str = "finished_at";
    /// Unix ms when a scheduled retry is due; empty unless the job is `retrying`.
    pub const NEXT_ATTEMPT_AT: &str = "next_attempt_at";
    /// Why the job is where it is, in a sentence (refusal, retry, failure).
    pub const REASON: &str = "reason";
    /// Inputs as JSON with sensitive values replaced by [`super::REDACTED`].
    pub const INPUTS: &str = "inputs";
    /// The latest signed job (wire JSON), kept for retries; sensitive inputs are sealed.
    pub const SIGNED: &str = "signed";
    /// The name of the token or person that enqueued the job.
    pub const CREATED_BY: &str = "created_by";
    /// `1` once a person asked to cancel, else `0`. The runner checks it before an attempt
    /// and polls it while one runs, so a cancel missed on the control channel still holds.
    pub const CANCEL_REQUESTED: &str = "cancel_requested";
    /// Last sequence number handed out to an event of this job.
    pub const SEQ: &str = "seq";
    /// The last lines of output (masked), JSON array.
    pub const LAST_LINES: &str = "last_lines";
    /// Processes a successful script left running on purpose (JSON array of strings).
    pub const SURVIVORS: &str = "survivors";
    /// The installation the job acts on (absent for a job of no installation).
    pub const INSTALLATION_ID: &str = "installation_id";
    /// The lifecycle action ([`crate::lifecycle::Action`]), with `installation_id`.
    pub const ACTION: &str = "action";
    /// How a lifecycle job ended ([`crate::lifecycle::Outcome`]), written by the runner with
    /// the job's end.
    pub const OUTCOME: &str = "outcome";
    /// Where a running lifecycle job is ([`crate::lifecycle::Phase`]).
    pub const PHASE: &str = "phase";
    /// The backup a job took ([`crate::lifecycle::backup_id`]): a backup job's, or an
    /// upgrade's safety backup.
    pub const BACKUP_ID: &str = "backup_id";
}

/// What a redacted sensitive value looks like wherever it is shown or stored.
pub const REDACTED: &str = "********";

/// Field/value pairs of the job hash, as one transition writes them (one `HSET`).
pub type Fields = Vec<(&'static str, String)>;

/// The record fields each transition of a job writes. Every writer (the panel's enqueue,
/// cancel and retry; the runner's start, result, refusal and recovery) takes its list from
/// here, so a new attempt resets the same fields wherever it begins. Pure: the callers send
/// the lists with their own scripts.
pub mod write {
    use std::collections::BTreeMap;

    use serde_json::{Map, Value};

    use super::{Fields, JobState, REDACTED, field};
    use crate::envelope::Envelope;

    /// A new job, as the panel enqueues it.
    #[derive(Debug, Clone)]
    pub struct Created<'a> {
        /// The first attempt's envelope.
        pub envelope: &'a Envelope,
        /// Its signed wire form.
        pub wire: &'a str,
        /// The inputs as shown ([`shown_inputs`]).
        pub inputs: &'a Map<String, Value>,
        /// Total attempts the manifest's retry policy allows ([`field::MAX_ATTEMPTS`]).
        pub max_attempts: u32,
        /// Unix ms.
        pub created_at: i64,
        /// Who enqueued it ([`field::CREATED_BY`]).
        pub created_by: &'a str,
    }

    /// The inputs a record shows: the plain ones, and each sensitive one as [`REDACTED`].
    pub fn shown_inputs<'s>(
        plain: &BTreeMap<String, Value>,
        sensitive: impl IntoIterator<Item = &'s str>,
    ) -> Map<String, Value> {
        let mut shown: Map<String, Value> =
            plain.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for name in sensitive {
            shown.insert(name.to_owned(), Value::String(REDACTED.into()));
        }
        shown
    }

    /// The record of a new job: `queued`, no attempt started yet (`attempts` 0).
    pub fn created(c: &Created<'_>) -> Fields {
        let env = c.envelope;
        let mut out = vec![
            (field::ID, env.job_id.clone()),
            (field::APP_ID, env.app_id.clone()),
            (field::APP_VERSION, env.app_version.clone()),
            (field::AGENT_ID, env.agent_id.clone()),
            (field::STATE, JobState::Queued.as_str().to_owned()),
            (field::ATTEMPTS, "0".into()),
            (field::MAX_ATTEMPTS, c.max_attempts.to_string()),
            (field::PROGRESS, "0".into()),
            (field::CREATED_AT, c.created_at.to_string()),
            (field::INPUTS, Value::Object(c.inputs.clone()).to_string()),
            (field::SIGNED, c.wire.to_owned()),
            (field::CREATED_BY, c.created_by.to_owned()),
            (field::CANCEL_REQUESTED, "0".into()),
        ];
        if let Some(order) = &env.lifecycle {
            out.push((field::INSTALLATION_ID, order.installation_id.clone()));
            out.push((field::ACTION, order.action.as_str().to_owned()));
        }
        out
    }

    /// What a lifecycle job's end adds to [`finished`]: how it ended and the backup it took.
    pub fn lifecycle_end(outcome: crate::lifecycle::Outcome, backup_id: Option<&str>) -> Fields {
        let mut out = vec![(field::OUTCOME, outcome.as_str().to_owned())];
        if let Some(id) = backup_id {
            out.push((field::BACKUP_ID, id.to_owned()));
        }
        out
    }

    /// The field a running lifecycle job updates as it moves from step to step.
    pub fn phase(phase: crate::lifecycle::Phase) -> Fields {
        vec![(field::PHASE, phase.as_str().to_owned())]
    }

    /// Whether a new attempt clears an earlier cancel request.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum CancelRequest {
        /// A person asked for the attempt: an earlier request is void.
        Clear,
        /// The runner re-runs after a restart: a request made meanwhile still holds.
        Keep,
    }

    /// What every new attempt resets: all that the previous attempt wrote.
    fn reset(out: &mut Fields, except: &[&str]) {
        let blank = [
            (field::EXIT_CODE, ""),
            (field::REASON, ""),
            (field::PROGRESS, "0"),
            (field::PROGRESS_MESSAGE, ""),
            (field::STARTED_AT, ""),
            (field::FINISHED_AT, ""),
            (field::NEXT_ATTEMPT_AT, ""),
            (field::LAST_LINES, ""),
            (field::SURVIVORS, ""),
            (field::OUTCOME, ""),
            (field::PHASE, ""),
            (field::BACKUP_ID, ""),
        ];
        out.extend(
            blank
                .into_iter()
                .filter(|(k, _)| !except.contains(k))
                .map(|(k, v)| (k, v.to_owned())),
        );
    }

    /// A new attempt waits in the queue (a person's retry, a re-run after recovery); `wire` is
    /// its signed envelope, `reason` says why it runs again.
    pub fn queued(wire: &str, reason: Option<&str>, cancel: CancelRequest) -> Fields {
        let mut out = vec![
            (field::STATE, JobState::Queued.as_str().to_owned()),
            (field::SIGNED, wire.to_owned()),
        ];
        if cancel == CancelRequest::Clear {
            out.push((field::CANCEL_REQUESTED, "0".into()));
        }
        reset(&mut out, &[field::REASON]);
        out.push((field::REASON, reason.unwrap_or_default().to_owned()));
        out
    }

    /// An attempt starts (the runner, after its checks), at unix ms `started_at`.
    pub fn running(attempt: u32, started_at: i64) -> Fields {
        let mut out = vec![
            (field::STATE, JobState::Running.as_str().to_owned()),
            (field::ATTEMPTS, attempt.to_string()),
            (field::STARTED_AT, started_at.to_string()),
        ];
        reset(&mut out, &[field::STARTED_AT]);
        out
    }

    /// The job ended in `state` at unix ms `finished_at`: refused, canceled or interrupted
    /// without a result of its own, or an attempt's end ([`finished`]). `None` leaves the
    /// record's reason as it was (the event carries the message).
    pub fn terminal(state: JobState, finished_at: i64, reason: Option<&str>) -> Fields {
        debug_assert!(state.is_terminal(), "{state} is not terminal");
        let mut out = vec![
            (field::STATE, state.as_str().to_owned()),
            (field::FINISHED_AT, finished_at.to_string()),
            (field::NEXT_ATTEMPT_AT, String::new()),
        ];
        if let Some(r) = reason {
            out.push((field::REASON, r.to_owned()));
        }
        out
    }

    /// How an attempt that ran ended.
    #[derive(Debug, Clone)]
    pub struct AttemptEnd<'a> {
        /// The 1-based number of the attempt that ended.
        pub attempt: u32,
        /// Unix ms.
        pub finished_at: i64,
        /// Its exit status ([`crate::exit_policy::Ending::exit_code`]); `None` when canceled.
        pub exit_code: Option<i32>,
        /// The last lines of output (masked).
        pub last_lines: &'a [String],
        /// Processes a successful script left running on purpose.
        pub survivors: &'a [String],
    }

    /// What follows an attempt that ran, as the exit-code policy decided.
    #[derive(Debug, Clone)]
    pub enum Next<'a> {
        /// The job ends in this (terminal) state.
        End {
            /// The terminal state the policy chose.
            state: JobState,
            /// Why, for the record; `None` clears the previous attempt's reason.
            reason: Option<&'a str>,
        },
        /// The next attempt (`wire`) is due at unix ms `due_ms`: the job is `retrying`.
        Retry {
            /// Unix ms when the next attempt may be taken (its score in the scheduled set).
            due_ms: i64,
            /// The next attempt's signed envelope, wire form.
            wire: &'a str,
            /// Why it runs again, for the record.
            reason: &'a str,
        },
    }

    /// The record after an attempt that ran. Its reason replaces the previous one, even when
    /// it has none.
    pub fn finished(end: &AttemptEnd<'_>, next: &Next<'_>) -> Fields {
        let json = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
        let mut out = vec![
            (
                field::EXIT_CODE,
                end.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            ),
            (field::ATTEMPTS, end.attempt.to_string()),
            (field::LAST_LINES, json(end.last_lines)),
            (field::SURVIVORS, json(end.survivors)),
        ];
        match next {
            Next::End { state, reason } => out.extend(terminal(
                *state,
                end.finished_at,
                Some(reason.unwrap_or_default()),
            )),
            Next::Retry {
                due_ms,
                wire,
                reason,
            } => out.extend([
                (field::STATE, JobState::Retrying.as_str().to_owned()),
                (field::FINISHED_AT, end.finished_at.to_string()),
                (field::NEXT_ATTEMPT_AT, due_ms.to_string()),
                (field::SIGNED, (*wire).to_owned()),
                (field::REASON, (*reason).to_owned()),
            ]),
        }
        out
    }
}

/// A job as stored, read back from its hash. Times are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// [`field::ID`].
    pub id: String,
    /// [`field::APP_ID`].
    pub app_id: String,
    /// [`field::APP_VERSION`]; empty when the field is absent.
    pub app_version: String,
    /// [`field::AGENT_ID`].
    pub agent_id: String,
    /// [`field::STATE`].
    pub state: JobState,
    /// [`field::ATTEMPTS`]: 0 until the first attempt starts.
    pub attempts: u32,
    /// [`field::MAX_ATTEMPTS`]; 1 when the field is absent.
    pub max_attempts: u32,
    /// [`field::EXIT_CODE`] of the latest attempt.
    pub exit_code: Option<i32>,
    /// [`field::PROGRESS`], percent.
    pub progress: u8,
    /// [`field::PROGRESS_MESSAGE`]; `None` when empty.
    pub progress_message: Option<String>,
    /// [`field::CREATED_AT`].
    pub created_at: i64,
    /// [`field::STARTED_AT`] of the latest attempt.
    pub started_at: Option<i64>,
    /// [`field::FINISHED_AT`] of the latest attempt.
    pub finished_at: Option<i64>,
    /// [`field::NEXT_ATTEMPT_AT`], while `retrying`.
    pub next_attempt_at: Option<i64>,
    /// [`field::REASON`]; `None` when empty.
    pub reason: Option<String>,
    /// [`field::INPUTS`]: a JSON object, sensitive values as [`REDACTED`].
    pub inputs: serde_json::Value,
    /// [`field::CREATED_BY`].
    pub created_by: Option<String>,
    /// [`field::CANCEL_REQUESTED`] is `1`.
    pub cancel_requested: bool,
    /// [`field::LAST_LINES`], masked; empty until an attempt has finished.
    pub last_lines: Vec<String>,
    /// [`field::SURVIVORS`].
    pub survivors: Vec<String>,
    /// The lifecycle part of the record, for a job of an installation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleFields>,
}

/// What the record of an installation's job holds beyond a plain job's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleFields {
    /// [`field::INSTALLATION_ID`].
    pub installation_id: String,
    /// [`field::ACTION`].
    pub action: crate::lifecycle::Action,
    /// [`field::OUTCOME`], once the runner wrote it.
    pub outcome: Option<crate::lifecycle::Outcome>,
    /// [`field::PHASE`], while it runs.
    pub phase: Option<crate::lifecycle::Phase>,
    /// [`field::BACKUP_ID`], when it took a backup.
    pub backup_id: Option<String>,
}

impl LifecycleFields {
    fn from_fields(f: &HashMap<String, String>) -> Option<Self> {
        let text = |k: &str| f.get(k).filter(|s| !s.is_empty());
        Some(LifecycleFields {
            installation_id: text(field::INSTALLATION_ID)?.clone(),
            action: text(field::ACTION)?.parse().ok()?,
            outcome: text(field::OUTCOME).and_then(|v| v.parse().ok()),
            phase: text(field::PHASE).and_then(|v| v.parse().ok()),
            backup_id: text(field::BACKUP_ID).cloned(),
        })
    }
}

/// A job hash that cannot be read as a record.
#[derive(Debug, thiserror::Error)]
#[error("job record field {field:?}: {problem}")]
pub struct BadRecord {
    /// The hash field at fault ([`field`]).
    pub field: &'static str,
    /// What is wrong with it: `missing`, or the value that does not parse.
    pub problem: String,
}

impl JobRecord {
    /// Reads a record from the fields of its hash (`HGETALL`).
    pub fn from_fields(f: &HashMap<String, String>) -> Result<Self, BadRecord> {
        fn req<'a>(f: &'a HashMap<String, String>, k: &'static str) -> Result<&'a str, BadRecord> {
            f.get(k).map(String::as_str).ok_or(BadRecord {
                field: k,
                problem: "missing".into(),
            })
        }
        fn num<T: FromStr>(
            f: &HashMap<String, String>,
            k: &'static str,
        ) -> Result<Option<T>, BadRecord> {
            match f.get(k).map(String::as_str) {
                None | Some("") => Ok(None),
                Some(v) => v.parse().map(Some).map_err(|_| BadRecord {
                    field: k,
                    problem: format!("not a number: {v:?}"),
                }),
            }
        }
        fn json<T: serde::de::DeserializeOwned + Default>(
            f: &HashMap<String, String>,
            k: &'static str,
        ) -> T {
            f.get(k)
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or_default()
        }
        let state = req(f, field::STATE)?
            .parse()
            .map_err(|e: UnknownState| BadRecord {
                field: field::STATE,
                problem: e.to_string(),
            })?;
        Ok(JobRecord {
            id: req(f, field::ID)?.to_owned(),
            app_id: req(f, field::APP_ID)?.to_owned(),
            app_version: f.get(field::APP_VERSION).cloned().unwrap_or_default(),
            agent_id: req(f, field::AGENT_ID)?.to_owned(),
            state,
            attempts: num(f, field::ATTEMPTS)?.unwrap_or(0),
            max_attempts: num(f, field::MAX_ATTEMPTS)?.unwrap_or(1),
            exit_code: num(f, field::EXIT_CODE)?,
            progress: num(f, field::PROGRESS)?.unwrap_or(0),
            progress_message: f
                .get(field::PROGRESS_MESSAGE)
                .filter(|s| !s.is_empty())
                .cloned(),
            created_at: num(f, field::CREATED_AT)?.unwrap_or(0),
            started_at: num(f, field::STARTED_AT)?,
            finished_at: num(f, field::FINISHED_AT)?,
            next_attempt_at: num(f, field::NEXT_ATTEMPT_AT)?,
            reason: f.get(field::REASON).filter(|s| !s.is_empty()).cloned(),
            inputs: f
                .get(field::INPUTS)
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or(serde_json::Value::Object(Default::default())),
            created_by: f.get(field::CREATED_BY).filter(|s| !s.is_empty()).cloned(),
            cancel_requested: f.get(field::CANCEL_REQUESTED).is_some_and(|v| v == "1"),
            last_lines: json(f, field::LAST_LINES),
            survivors: json(f, field::SURVIVORS),
            lifecycle: LifecycleFields::from_fields(f),
        })
    }

    /// Duration in milliseconds of the latest attempt, when it has finished.
    pub fn duration_ms(&self) -> Option<i64> {
        Some(self.finished_at? - self.started_at?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_name() {
        for st in JobState::ALL {
            assert_eq!(st.as_str().parse::<JobState>().unwrap(), st);
            assert_eq!(serde_json::to_value(st).unwrap(), st.as_str());
        }
        assert!("bogus".parse::<JobState>().is_err());
    }

    #[test]
    fn record_reads_from_hash_fields() {
        let f: HashMap<String, String> = [
            ("id", "j1"),
            ("app_id", "nginx"),
            ("agent_id", "local"),
            ("state", "timed_out"),
            ("attempts", "2"),
            ("exit_code", "124"),
            ("created_at", "5"),
            ("inputs", r#"{"a":1}"#),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let r = JobRecord::from_fields(&f).unwrap();
        assert_eq!(r.state, JobState::TimedOut);
        assert_eq!(r.exit_code, Some(124));
        assert_eq!(r.attempts, 2);
        assert_eq!(r.inputs["a"], 1);
    }

    #[test]
    fn record_without_state_is_an_error_not_a_panic() {
        let f = HashMap::from([("id".to_owned(), "j".to_owned())]);
        let e = JobRecord::from_fields(&f).unwrap_err();
        assert_eq!(e.field, "state");
    }

    fn names(f: &Fields) -> Vec<&'static str> {
        f.iter().map(|(k, _)| *k).collect()
    }

    fn no_field_twice(f: &Fields) {
        let mut seen = names(f);
        seen.sort_unstable();
        let before = seen.len();
        seen.dedup();
        assert_eq!(seen.len(), before, "a field written twice: {f:?}");
    }

    #[test]
    fn a_new_attempt_resets_everything_the_last_one_wrote_wherever_it_starts() {
        let attempt_fields = [
            field::EXIT_CODE,
            field::REASON,
            field::PROGRESS,
            field::PROGRESS_MESSAGE,
            field::STARTED_AT,
            field::FINISHED_AT,
            field::NEXT_ATTEMPT_AT,
            field::LAST_LINES,
            field::SURVIVORS,
        ];
        let by_person = write::queued("w", None, write::CancelRequest::Clear);
        let recovered = write::queued("w", Some("again"), write::CancelRequest::Keep);
        let running = write::running(2, 7);
        for f in [&by_person, &recovered, &running] {
            no_field_twice(f);
            for name in attempt_fields {
                assert!(names(f).contains(&name), "{name} reset in {f:?}");
            }
        }
        assert!(by_person.contains(&(field::CANCEL_REQUESTED, "0".into())));
        assert!(!names(&recovered).contains(&field::CANCEL_REQUESTED));
        assert!(recovered.contains(&(field::REASON, "again".into())));
        assert!(running.contains(&(field::STARTED_AT, "7".into())));
        assert!(running.contains(&(field::ATTEMPTS, "2".into())));
        assert!(running.contains(&(field::STATE, "running".into())));
    }

    #[test]
    fn an_ended_attempt_has_no_next_one_and_a_retry_names_it() {
        let lines = vec!["last".to_owned()];
        let end = write::AttemptEnd {
            attempt: 1,
            finished_at: 9,
            exit_code: Some(2),
            last_lines: &lines,
            survivors: &[],
        };
        let failed = write::finished(
            &end,
            &write::Next::End {
                state: JobState::Failed,
                reason: None,
            },
        );
        no_field_twice(&failed);
        assert!(failed.contains(&(field::NEXT_ATTEMPT_AT, String::new())));
        assert!(failed.contains(&(field::REASON, String::new())));
        assert!(failed.contains(&(field::LAST_LINES, r#"["last"]"#.into())));
        let retrying = write::finished(
            &end,
            &write::Next::Retry {
                due_ms: 99,
                wire: "next",
                reason: "again",
            },
        );
        no_field_twice(&retrying);
        assert!(retrying.contains(&(field::STATE, "retrying".into())));
        assert!(retrying.contains(&(field::NEXT_ATTEMPT_AT, "99".into())));
        assert!(retrying.contains(&(field::SIGNED, "next".into())));
        let canceled = write::terminal(JobState::Canceled, 5, None);
        assert!(!names(&canceled).contains(&field::REASON));
    }

    #[test]
    fn a_created_record_reads_back_as_queued_with_secrets_redacted() {
        let env = crate::envelope::Envelope {
            v: crate::envelope::ENVELOPE_VERSION,
            job_id: "j1".into(),
            agent_id: "web-1".into(),
            app_id: "nginx".into(),
            app_version: "1.0.0".into(),
            bundle_digest: "ab".repeat(32),
            inputs: [("name".to_owned(), serde_json::json!("x"))].into(),
            sealed_inputs: Some("sealed".into()),
            issued_at: 1,
            expires_at: 61,
            attempt: 1,
            lifecycle: None,
        };
        let shown = write::shown_inputs(&env.inputs, ["password"]);
        let fields = write::created(&write::Created {
            envelope: &env,
            wire: "w",
            inputs: &shown,
            max_attempts: 3,
            created_at: 1_000,
            created_by: "alice",
        });
        no_field_twice(&fields);
        let map = fields
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<HashMap<_, _>>();
        let r = JobRecord::from_fields(&map).unwrap();
        assert_eq!(
            (r.state, r.attempts, r.max_attempts),
            (JobState::Queued, 0, 3)
        );
        assert_eq!(
            r.inputs,
            serde_json::json!({"name": "x", "password": REDACTED})
        );
        assert_eq!(r.created_by.as_deref(), Some("alice"));
    }
}
