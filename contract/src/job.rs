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
    Queued,
    Running,
    Retrying,
    Succeeded,
    Failed,
    NeedsAttention,
    TimedOut,
    Canceled,
    Interrupted,
    Rejected,
    Expired,
}

impl JobState {
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
    pub const ID: &str = "id";
    pub const APP_ID: &str = "app_id";
    pub const APP_VERSION: &str = "app_version";
    pub const AGENT_ID: &str = "agent_id";
    pub const STATE: &str = "state";
    pub const ATTEMPTS: &str = "attempts";
    pub const MAX_ATTEMPTS: &str = "max_attempts";
    pub const EXIT_CODE: &str = "exit_code";
    pub const PROGRESS: &str = "progress";
    pub const PROGRESS_MESSAGE: &str = "progress_message";
    pub const CREATED_AT: &str = "created_at";
    pub const STARTED_AT: &str = "started_at";
    pub const FINISHED_AT: &str = "finished_at";
    pub const NEXT_ATTEMPT_AT: &str = "next_attempt_at";
    pub const REASON: &str = "reason";
    /// Inputs as JSON with sensitive values replaced by [`super::REDACTED`].
    pub const INPUTS: &str = "inputs";
    /// The latest signed job (wire JSON), kept for retries; sensitive inputs are sealed.
    pub const SIGNED: &str = "signed";
    pub const CREATED_BY: &str = "created_by";
    pub const CANCEL_REQUESTED: &str = "cancel_requested";
    /// Last sequence number handed out to an event of this job.
    pub const SEQ: &str = "seq";
    /// The last lines of output (masked), JSON array.
    pub const LAST_LINES: &str = "last_lines";
    /// Processes a successful script left running on purpose (JSON array of strings).
    pub const SURVIVORS: &str = "survivors";
}

/// What a redacted sensitive value looks like wherever it is shown or stored.
pub const REDACTED: &str = "********";

/// A job as stored, read back from its hash. Times are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub app_id: String,
    pub app_version: String,
    pub agent_id: String,
    pub state: JobState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub exit_code: Option<i32>,
    pub progress: u8,
    pub progress_message: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub next_attempt_at: Option<i64>,
    pub reason: Option<String>,
    pub inputs: serde_json::Value,
    pub created_by: Option<String>,
    pub cancel_requested: bool,
    pub last_lines: Vec<String>,
    pub survivors: Vec<String>,
}

/// A job hash that cannot be read as a record.
#[derive(Debug, thiserror::Error)]
#[error("job record field {field:?}: {problem}")]
pub struct BadRecord {
    pub field: &'static str,
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
}
