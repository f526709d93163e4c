//! Progress events: what a job's stream and channel carry, and the `::progress` line syntax.
//!
//! Every event gets a sequence number when it is appended (see [`crate::scripts::APPEND_EVENT`]):
//! it is the job's stream entry id `0-<seq>` and the SSE `id:`, so a client that reconnects
//! with `Last-Event-ID` resumes exactly after what it saw.

use serde::{Deserialize, Serialize};

use crate::job::JobState;

/// One event of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Assigned when the event is appended; absent before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Unix milliseconds.
    pub ts: i64,
    /// The attempt this event belongs to (0 for events before any attempt).
    pub attempt: u32,
    /// The kind of event and its fields, flattened beside `seq`, `ts` and `attempt` under a
    /// `type` tag (`schemas/event.schema.json`).
    #[serde(flatten)]
    pub body: EventBody,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// The job changed state.
    State {
        /// The state the job is in from this event on.
        state: JobState,
        /// The script's exit status, when the state ends an attempt that ran (signals as
        /// 128 + n; 124 on timeout).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        /// Why, in a sentence a person reads (rejections, retries, failures).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// One line of output (already masked).
    Log {
        /// The pipe the line came from, or the runner.
        stream: OutputStream,
        /// The line without its newline; a long line arrives split, and sensitive values are
        /// replaced by [`crate::job::REDACTED`].
        line: String,
    },
    /// A `::progress N message` line.
    Progress {
        /// How far the script says it is, 0..=100 ([`parse_progress`] refuses more).
        percent: u8,
        /// The rest of the line, trimmed; may be empty.
        message: String,
    },
}

/// Which pipe a line came from (or the runner itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    /// The script's standard output.
    Stdout,
    /// The script's standard error.
    Stderr,
    /// A note from the runner (truncation markers, survivors, retries).
    Runner,
}

impl Event {
    /// An event not yet appended: `seq` is assigned by [`crate::scripts::APPEND_EVENT`].
    /// `ts` is Unix milliseconds.
    pub fn new(ts: i64, attempt: u32, body: EventBody) -> Self {
        Self {
            seq: None,
            ts,
            attempt,
            body,
        }
    }

    /// A not yet appended [`EventBody::State`] event: the job entered `state` at `ts` (Unix
    /// milliseconds) during `attempt`.
    pub fn state(
        ts: i64,
        attempt: u32,
        state: JobState,
        exit_code: Option<i32>,
        reason: Option<String>,
    ) -> Self {
        Self::new(
            ts,
            attempt,
            EventBody::State {
                state,
                exit_code,
                reason,
            },
        )
    }

    /// JSON without `seq`, starting with `{`, as [`crate::scripts::APPEND_EVENT`] expects.
    pub fn to_unsequenced_json(&self) -> String {
        let mut e = self.clone();
        e.seq = None;
        serde_json::to_string(&e).expect("events always serialize")
    }
}

/// Parses `::progress <0-100> <message>`. Anything else (or a percent out of range) is `None`,
/// and the line is shown as plain output instead.
pub fn parse_progress(line: &str) -> Option<(u8, &str)> {
    let rest = line.strip_prefix("::progress ")?;
    let (num, msg) = rest.split_once(' ').unwrap_or((rest, ""));
    let percent: u8 = num.trim().parse().ok()?;
    (percent <= 100).then_some((percent, msg.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_are_parsed() {
        assert_eq!(
            parse_progress("::progress 40 Installing nginx"),
            Some((40, "Installing nginx"))
        );
        assert_eq!(parse_progress("::progress 100"), Some((100, "")));
        assert_eq!(parse_progress("::progress 101 too far"), None);
        assert_eq!(parse_progress("::progress -1 no"), None);
        assert_eq!(parse_progress("progress 5 x"), None);
    }

    #[test]
    fn events_serialize_flat_with_a_type_tag() {
        let mut e = Event::new(
            7,
            1,
            EventBody::Log {
                stream: OutputStream::Stdout,
                line: "hi".into(),
            },
        );
        assert_eq!(
            e.to_unsequenced_json(),
            r#"{"ts":7,"attempt":1,"type":"log","stream":"stdout","line":"hi"}"#
        );
        e.seq = Some(3);
        let back: Event = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}
