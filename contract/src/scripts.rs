//! The Lua scripts that write a job's record and events, and the KEYS/ARGV of the one both
//! programs send (enqueue). Each file's header names its KEYS and ARGV.
//!
//! Every script that appends an event starts with `lua/event_fragment.lua`, joined in front
//! of it at compile time: numbering (`HINCRBY`), storing (`XADD 0-<seq>`) and publishing an
//! event is written once. The programs load each script once (a `LazyLock<redis::Script>`)
//! and call it by `EVALSHA`, which redis-rs reloads on `NOSCRIPT`.

use crate::envelope::Envelope;
use crate::event::Event;
use crate::job::{Fields, JobState};
use crate::redis_keys::AgentRedisKeys;

/// The field of a job stream entry that holds the event JSON.
pub const EVENT_FIELD: &str = "e";

/// The shared fragment followed by the script `lua/<file>`.
macro_rules! with_event_fragment {
    ($file:literal) => {
        concat!(
            include_str!("../lua/event_fragment.lua"),
            include_str!(concat!("../lua/", $file))
        )
    };
}

/// Numbers an event, appends it to the job's stream and publishes it (both programs).
pub const APPEND_EVENT: &str = with_event_fragment!("append_event.lua");
/// A batch of events of one job in one step (the runner's event writer).
pub const APPEND_EVENTS: &str = with_event_fragment!("append_events.lua");
/// Record + first event + queue push of a new job (the panel; the runner's tests).
pub const ENQUEUE: &str = with_event_fragment!("enqueue.lua");
/// A person's retry: the next attempt, queued (the panel).
pub const RETRY: &str = with_event_fragment!("retry.lua");
/// A person's cancel: ended here if still waiting, else asked of the runner (the panel).
pub const CANCEL: &str = with_event_fragment!("cancel.lua");
/// The start of an attempt: replay guard, cancel flag, `running` record and event (the runner).
pub const CLAIM_ATTEMPT: &str = with_event_fragment!("claim_attempt.lua");
/// The result of an attempt: event + record, retry scheduled, off processing (the runner).
pub const FINISH_ATTEMPT: &str = with_event_fragment!("finish_attempt.lua");
/// A taken job back on its queue, with an optional event (the runner's recovery).
pub const REQUEUE: &str = with_event_fragment!("requeue.lua");
/// A refused job: rejected stream, off processing, maybe its record (the runner's checks).
pub const REJECT: &str = with_event_fragment!("reject.lua");

/// One script call: its KEYS and ARGV in the order the script's header names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The Redis keys the script touches (`KEYS[1..]`), all under one agent's hash tag.
    pub keys: Vec<String>,
    /// The script's `ARGV[1..]`.
    pub args: Vec<String>,
}

/// The [`ENQUEUE`] call of a new job: its record (`record`, from
/// [`crate::job::write::created`]), the `queued` event of its first attempt at `now_ms`, and
/// `wire` pushed onto its agent's queue.
pub fn enqueue(env: &Envelope, wire: &str, record: &Fields, now_ms: i64) -> Call {
    let names = AgentRedisKeys::new(&env.agent_id);
    let job = &env.job_id;
    let queued = Event::state(now_ms, env.attempt, JobState::Queued, None, None);
    let mut args = vec![
        names.job_channel(job),
        queued.to_unsequenced_json(),
        wire.to_owned(),
    ];
    for (k, v) in record {
        args.push((*k).to_owned());
        args.push(v.clone());
    }
    Call {
        keys: vec![names.job(job), names.job_events(job), names.queue()],
        args,
    }
}

/// The replay guard's member for one attempt of a job: each (job, attempt) starts once.
pub fn seen_member(job_id: &str, attempt: u32) -> String {
    format!("{job_id}:{attempt}")
}

/// What a [`CLAIM_ATTEMPT`] call starts: one attempt of a job.
#[derive(Debug, Clone, Copy)]
pub struct AttemptStart<'a> {
    /// The attempt number (1-based), as the envelope names it.
    pub attempt: u32,
    /// The envelope's expiry (unix s): the replay guard's entry is pruned after it.
    pub expires_at: i64,
    /// The attempt's started-at (unix ms), also in the record fields.
    pub started_at: i64,
    /// The `running` state event, without `seq`.
    pub event_json: &'a str,
    /// Whether this call repeats one whose reply was lost (same `started_at`).
    pub repeated: bool,
}

/// The [`CLAIM_ATTEMPT`] call of one attempt's start of job `job`, with the record fields
/// `record` (from [`crate::job::write::running`]).
pub fn claim_attempt<K: AsRef<str>, V: AsRef<str>>(
    names: &AgentRedisKeys,
    job: &str,
    start: &AttemptStart<'_>,
    record: &[(K, V)],
) -> Call {
    use crate::job::field;
    let mut args = vec![
        names.job_channel(job),
        seen_member(job, start.attempt),
        start.expires_at.to_string(),
        field::CANCEL_REQUESTED.to_owned(),
        if start.repeated { "1" } else { "0" }.to_owned(),
        start.event_json.to_owned(),
        field::ATTEMPTS.to_owned(),
        start.attempt.to_string(),
        field::STARTED_AT.to_owned(),
        start.started_at.to_string(),
    ];
    for (k, v) in record {
        args.push(k.as_ref().to_owned());
        args.push(v.as_ref().to_owned());
    }
    Call {
        keys: vec![names.job(job), names.job_events(job), names.seen()],
        args,
    }
}

/// What a [`FINISH_ATTEMPT`] call applies: one attempt's end.
#[derive(Debug, Clone, Copy)]
pub struct AttemptEnd<'a> {
    /// The job's final (or retrying) state event, without `seq`.
    pub event_json: &'a str,
    /// The wire the runner took, to come off the processing list.
    pub processing_wire: &'a str,
    /// The result's finished-at: a record already holding it was applied before.
    pub finished_at: i64,
    /// The next attempt's wire and due time (unix ms), when a retry is scheduled.
    pub retry: Option<(&'a str, i64)>,
}

/// The [`FINISH_ATTEMPT`] call of one attempt's end of job `job`, with the record fields
/// `record` (from [`crate::job::write::finished`]).
pub fn finish_attempt<K: AsRef<str>, V: AsRef<str>>(
    names: &AgentRedisKeys,
    job: &str,
    end: &AttemptEnd<'_>,
    record: &[(K, V)],
) -> Call {
    let (wire, due) = end.retry.unwrap_or(("", 0));
    let mut args = vec![
        names.job_channel(job),
        end.event_json.to_owned(),
        end.processing_wire.to_owned(),
        crate::job::field::FINISHED_AT.to_owned(),
        end.finished_at.to_string(),
        wire.to_owned(),
        due.to_string(),
    ];
    for (k, v) in record {
        args.push(k.as_ref().to_owned());
        args.push(v.as_ref().to_owned());
    }
    Call {
        keys: vec![
            names.job(job),
            names.job_events(job),
            names.processing(),
            names.scheduled(),
        ],
        args,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::field;

    #[test]
    fn a_finish_attempt_call_follows_the_scripts_header() {
        let names = AgentRedisKeys::new("web-1");
        let end = AttemptEnd {
            event_json: "{}",
            processing_wire: "wire",
            finished_at: 7,
            retry: Some(("next", 9)),
        };
        let call = finish_attempt(&names, "j1", &end, &[("state", "retrying")]);
        assert_eq!(
            call.keys,
            [
                names.job("j1"),
                names.job_events("j1"),
                names.processing(),
                names.scheduled()
            ]
        );
        assert_eq!(
            call.args,
            [
                names.job_channel("j1"),
                "{}".into(),
                "wire".into(),
                field::FINISHED_AT.to_owned(),
                "7".into(),
                "next".into(),
                "9".into(),
                "state".into(),
                "retrying".into()
            ]
        );
        for line in [
            "KEYS[4] agent scheduled",
            "ARGV[5] this result's finished-at",
            "ARGV[8..] field/value",
        ] {
            assert!(FINISH_ATTEMPT.contains(line), "{line}");
        }
    }

    #[test]
    fn a_claim_attempt_call_follows_the_scripts_header() {
        let names = AgentRedisKeys::new("web-1");
        let start = AttemptStart {
            attempt: 2,
            expires_at: 70,
            started_at: 9,
            event_json: "{}",
            repeated: true,
        };
        let call = claim_attempt(&names, "j1", &start, &[("state", "running")]);
        assert_eq!(
            call.keys,
            [names.job("j1"), names.job_events("j1"), names.seen()]
        );
        assert_eq!(
            call.args,
            [
                names.job_channel("j1"),
                "j1:2".into(),
                "70".into(),
                field::CANCEL_REQUESTED.to_owned(),
                "1".into(),
                "{}".into(),
                field::ATTEMPTS.to_owned(),
                "2".into(),
                field::STARTED_AT.to_owned(),
                "9".into(),
                "state".into(),
                "running".into()
            ]
        );
        for line in [
            "KEYS[3] agent replay guard",
            "ARGV[5] '1' when this call repeats",
            "ARGV[10] this start's started-at",
            "ARGV[11..] field/value",
        ] {
            assert!(CLAIM_ATTEMPT.contains(line), "{line}");
        }
    }

    const FRAGMENT: &str = include_str!("../lua/event_fragment.lua");
    const WITH_EVENTS: [(&str, &str); 9] = [
        ("append_event", APPEND_EVENT),
        ("append_events", APPEND_EVENTS),
        ("enqueue", ENQUEUE),
        ("retry", RETRY),
        ("cancel", CANCEL),
        ("claim_attempt", CLAIM_ATTEMPT),
        ("finish_attempt", FINISH_ATTEMPT),
        ("requeue", REQUEUE),
        ("reject", REJECT),
    ];

    #[test]
    fn the_fragment_names_the_fields_the_rust_side_reads() {
        assert!(FRAGMENT.contains(&format!("local SEQ_FIELD = '{}'\n", field::SEQ)));
        assert!(FRAGMENT.contains(&format!("local EVENT_FIELD = '{EVENT_FIELD}'\n")));
    }

    #[test]
    fn every_event_script_starts_with_the_fragment_and_spells_no_field_of_its_own() {
        for (name, script) in WITH_EVENTS {
            let own = script
                .strip_prefix(FRAGMENT)
                .unwrap_or_else(|| panic!("{name} starts with the fragment"));
            for copied in ["HINCRBY", "PUBLISH', ARGV[1]", "'0-'", "'seq'", "'e'"] {
                assert!(!own.contains(copied), "{name} repeats {copied:?}");
            }
            assert!(
                own.contains("append_event("),
                "{name} appends through the fragment"
            );
        }
    }

    #[test]
    fn every_script_has_a_header_naming_its_keys_and_argv() {
        for (name, script) in WITH_EVENTS {
            let own = &script[FRAGMENT.len()..];
            let header: Vec<&str> = own.lines().take_while(|l| l.starts_with("--")).collect();
            assert!(header.len() >= 3, "{name} has a header");
            assert!(
                header.iter().any(|l| l.starts_with("-- KEYS[1] ")),
                "{name} names KEYS[1]"
            );
            assert!(
                header.iter().any(|l| l.starts_with("-- ARGV[1] ")),
                "{name} names ARGV[1]"
            );
            assert!(
                header.iter().any(|l| l.starts_with("-- Returns ")),
                "{name} says what it returns"
            );
        }
    }

    #[test]
    fn enqueue_call_follows_the_script_header() {
        let env = Envelope {
            v: crate::envelope::ENVELOPE_VERSION,
            job_id: "j1".into(),
            agent_id: "web-1".into(),
            app_id: "nginx".into(),
            app_version: "1.0.0".into(),
            bundle_digest: "ab".repeat(32),
            inputs: Default::default(),
            sealed_inputs: None,
            issued_at: 10,
            expires_at: 70,
            attempt: 1,
            lifecycle: None,
        };
        let record: Fields = vec![(field::ID, "j1".into()), (field::STATE, "queued".into())];
        let call = enqueue(&env, "WIRE", &record, 5_000);
        let names = AgentRedisKeys::new("web-1");
        assert_eq!(
            call.keys,
            [names.job("j1"), names.job_events("j1"), names.queue()]
        );
        assert_eq!(call.args[0], names.job_channel("j1"));
        let event: Event = serde_json::from_str(&call.args[1]).unwrap();
        assert_eq!(
            event,
            Event::state(5_000, 1, JobState::Queued, None, None),
            "the first attempt's queued event"
        );
        assert_eq!(call.args[2], "WIRE");
        assert_eq!(call.args[3..], ["id", "j1", "state", "queued"]);
    }
}
