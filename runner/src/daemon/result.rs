//! The result of one attempt: the exit-code policy applied to how it ended, as the record
//! fields and state event the outbox delivers (and, for a retry, the re-signed next attempt).

use std::collections::VecDeque;

use outfitter_contract::envelope::Envelope;
use outfitter_contract::event::Event;
use outfitter_contract::exit_policy::{Decision, Ending, RetrySettings, code, decide};
use outfitter_contract::job::{JobState, write};
use outfitter_contract::keys::Key;
use outfitter_contract::lifecycle::Outcome;

use super::job::outgoing;
use super::store::{JobResult, Schedule};

/// What the lifecycle adds to how an attempt's steps ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleEnd {
    /// For the record's `outcome`; `None` writes none (the job state says it all).
    pub outcome: Option<Outcome>,
    /// The backup the job took.
    pub backup_id: Option<String>,
    /// A retry would repeat what must not run twice on its own (an upgrade).
    pub no_retry: bool,
    /// The runner's own reason, instead of the exit-code policy's.
    pub reason: Option<String>,
}

impl LifecycleEnd {
    /// Whether the job failed whatever the last step's exit code: an unhealthy result or an
    /// upgrade that had to be rolled back.
    fn fails(&self) -> bool {
        matches!(
            self.outcome,
            Some(
                Outcome::Unhealthy
                    | Outcome::RolledBack
                    | Outcome::RollbackFailed
                    | Outcome::Unchanged
            )
        )
    }
}

/// Applies the exit-code policy and the lifecycle's ending: the result of the attempt
/// (`ending` is `None` when the script could not even start).
#[allow(clippy::too_many_arguments)]
pub fn conclude(
    signing: &Key,
    env: &Envelope,
    wire: &str,
    ending: Option<Ending>,
    lifecycle: &LifecycleEnd,
    retry: RetrySettings,
    tail: &VecDeque<String>,
    survivors: &[String],
    finished_at: i64,
) -> JobResult {
    let decision = match ending {
        _ if lifecycle.fails() => Decision::Finish(JobState::Failed),
        Some(e) => match decide(e, env.attempt, retry) {
            Decision::Retry { .. } if lifecycle.no_retry => Decision::Finish(JobState::Failed),
            d => d,
        },
        None => Decision::Finish(JobState::Failed),
    };
    let exit_code = ending.and_then(Ending::exit_code);
    let last_lines: Vec<String> = tail.iter().cloned().collect();
    let end = write::AttemptEnd {
        attempt: env.attempt,
        finished_at,
        exit_code,
        last_lines: &last_lines,
        survivors,
    };
    let (state, reason, schedule, fields) = match decision {
        Decision::Finish(state) => {
            let reason = match (&lifecycle.reason, state) {
                (_, JobState::Succeeded) => None,
                (Some(r), _) => Some(r.clone()),
                (None, _) => finish_reason(state, ending, env, retry.max_attempts),
            };
            let next = write::Next::End {
                state,
                reason: reason.as_deref(),
            };
            let mut fields = write::finished(&end, &next);
            if let Some(outcome) = lifecycle.outcome {
                fields.extend(write::lifecycle_end(
                    outcome,
                    lifecycle.backup_id.as_deref(),
                ));
            }
            (state, reason.clone(), None, fields)
        }
        Decision::Retry {
            next_attempt,
            delay,
        } => {
            let due_ms = finished_at + delay.as_millis() as i64;
            // Its time in the queue starts when it is due (the second after), not now.
            let next = env.next_attempt(due_ms / 1000 + 1, env.queue_ttl());
            debug_assert_eq!(next.attempt, next_attempt);
            let next_wire = next.sign(signing).to_wire();
            let reason = format!(
                "installation error (exit {}); attempt {next_attempt} of {} in {}s",
                code::INSTALL_ERROR,
                retry.max_attempts,
                delay.as_secs()
            );
            let fields = write::finished(
                &end,
                &write::Next::Retry {
                    due_ms,
                    wire: &next_wire,
                    reason: &reason,
                },
            );
            (
                JobState::Retrying,
                Some(reason),
                Some(Schedule {
                    wire: next_wire,
                    due_ms,
                }),
                fields,
            )
        }
    };
    let event = Event::state(finished_at, env.attempt, state, exit_code, reason);
    JobResult {
        job_id: env.job_id.clone(),
        processing_wire: wire.to_owned(),
        event: outgoing(&event, &fields),
        schedule,
        finished_at,
    }
}

fn finish_reason(
    state: JobState,
    ending: Option<Ending>,
    env: &Envelope,
    max_attempts: u32,
) -> Option<String> {
    let text = match (state, ending) {
        (JobState::Succeeded, _) => return None,
        (_, None) => "the script could not be started".to_owned(),
        (JobState::Canceled, _) => "canceled by request".to_owned(),
        (JobState::TimedOut, Some(Ending::TimedOut)) => {
            "timed out; the process tree was killed".to_owned()
        }
        (JobState::TimedOut, _) => format!("the script exited {} (timeout)", code::TIMEOUT),
        (JobState::NeedsAttention, _) => format!(
            "configuration error (exit {}); a person must look",
            code::CONFIG_ERROR
        ),
        (_, Some(Ending::Exited(code::INVALID_INPUT))) => {
            format!(
                "validation error (exit {}); not retried",
                code::INVALID_INPUT
            )
        }
        (_, Some(Ending::Exited(code::INSTALL_ERROR))) => format!(
            "installation error (exit {}) on attempt {} of {max_attempts}; no attempts left",
            code::INSTALL_ERROR,
            env.attempt
        ),
        (_, Some(Ending::Exited(c))) if c > 128 => format!("killed by signal {}", c - 128),
        (_, Some(Ending::Exited(c))) => format!("exit code {c}"),
        (s, _) => s.to_string(),
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use outfitter_contract::envelope::{ENVELOPE_VERSION, SignedJob};

    use super::*;
    use outfitter_contract::job::field;

    const KEY: Key = Key([5; 32]);
    const RETRY: RetrySettings = RetrySettings {
        max_attempts: 3,
        first_backoff: Duration::from_secs(4),
    };

    fn env(attempt: u32) -> Envelope {
        Envelope {
            v: ENVELOPE_VERSION,
            job_id: "0192d3a0-0000-7000-8000-000000000001".into(),
            agent_id: "a".into(),
            app_id: "app".into(),
            app_version: "1".into(),
            bundle_digest: "ab".repeat(32),
            inputs: BTreeMap::new(),
            sealed_inputs: None,
            issued_at: 1_000,
            expires_at: 4_600,
            attempt,
            lifecycle: None,
        }
    }

    fn field_of<'a>(r: &'a JobResult, name: &str) -> &'a str {
        r.event
            .f
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    fn run(ending: Option<Ending>, attempt: u32) -> JobResult {
        run_lifecycle(ending, attempt, &LifecycleEnd::default())
    }

    fn run_lifecycle(ending: Option<Ending>, attempt: u32, l: &LifecycleEnd) -> JobResult {
        let tail = VecDeque::from(vec!["last".to_owned()]);
        conclude(
            &KEY,
            &env(attempt),
            "wire",
            ending,
            l,
            RETRY,
            &tail,
            &[],
            1_000_000,
        )
    }

    #[test]
    fn exit_two_schedules_a_resigned_next_attempt_after_the_backoff() {
        let r = run(Some(Ending::Exited(2)), 1);
        assert_eq!(field_of(&r, field::STATE), "retrying");
        let s = r.schedule.as_ref().expect("scheduled");
        assert_eq!(s.due_ms, 1_000_000 + 4_000);
        assert_eq!(field_of(&r, field::NEXT_ATTEMPT_AT), "1004000");
        assert_eq!(field_of(&r, field::SIGNED), s.wire);
        let next = SignedJob::from_wire(&s.wire).unwrap().verify(&KEY).unwrap();
        assert_eq!(next.attempt, 2);
        assert!(next.expires_at * 1000 > s.due_ms, "still valid when due");
        assert_eq!(r.processing_wire, "wire");
    }

    #[test]
    fn exit_two_on_the_last_attempt_fails_and_says_so() {
        let r = run(Some(Ending::Exited(2)), 3);
        assert_eq!(field_of(&r, field::STATE), "failed");
        assert!(r.schedule.is_none());
        assert!(field_of(&r, field::REASON).contains("attempt 3 of 3"));
    }

    #[test]
    fn timeout_records_124_and_success_has_no_reason() {
        let r = run(Some(Ending::TimedOut), 1);
        assert_eq!(field_of(&r, field::STATE), "timed_out");
        assert_eq!(field_of(&r, field::EXIT_CODE), "124");
        let r = run(Some(Ending::Exited(0)), 1);
        assert_eq!(field_of(&r, field::STATE), "succeeded");
        assert_eq!(field_of(&r, field::REASON), "");
        assert_eq!(field_of(&r, field::LAST_LINES), r#"["last"]"#);
        assert_eq!(r.finished_at, 1_000_000);
    }

    #[test]
    fn a_script_that_could_not_start_fails_without_exit_code() {
        let r = run(None, 1);
        assert_eq!(field_of(&r, field::STATE), "failed");
        assert_eq!(field_of(&r, field::EXIT_CODE), "");
        assert!(field_of(&r, field::REASON).contains("could not be started"));
    }

    #[test]
    fn an_unhealthy_install_fails_without_a_retry_and_says_why() {
        let l = LifecycleEnd {
            outcome: Some(Outcome::Unhealthy),
            reason: Some("the health check did not pass".into()),
            ..LifecycleEnd::default()
        };
        let r = run_lifecycle(Some(Ending::Exited(2)), 1, &l);
        assert_eq!(field_of(&r, field::STATE), "failed");
        assert!(r.schedule.is_none());
        assert_eq!(field_of(&r, field::OUTCOME), "unhealthy");
        assert_eq!(field_of(&r, field::REASON), "the health check did not pass");
    }

    #[test]
    fn a_rolled_back_upgrade_fails_with_its_outcome_and_backup() {
        let l = LifecycleEnd {
            outcome: Some(Outcome::RolledBack),
            backup_id: Some("b.1".into()),
            no_retry: true,
            reason: Some("rolled back".into()),
        };
        let r = run_lifecycle(Some(Ending::Exited(1)), 1, &l);
        assert_eq!(field_of(&r, field::STATE), "failed");
        assert_eq!(field_of(&r, field::OUTCOME), "rolled_back");
        assert_eq!(field_of(&r, field::BACKUP_ID), "b.1");
    }

    #[test]
    fn an_upgrade_step_exiting_two_is_not_retried() {
        let l = LifecycleEnd {
            no_retry: true,
            ..LifecycleEnd::default()
        };
        let r = run_lifecycle(Some(Ending::Exited(2)), 1, &l);
        assert_eq!(field_of(&r, field::STATE), "failed");
        assert!(r.schedule.is_none());
    }

    #[test]
    fn a_plain_success_writes_no_outcome() {
        let r = run(Some(Ending::Exited(0)), 1);
        assert!(r.event.f.iter().all(|(k, _)| k != field::OUTCOME));
    }

    #[test]
    fn cancel_is_final() {
        let r = run(Some(Ending::Canceled), 1);
        assert_eq!(field_of(&r, field::STATE), "canceled");
        assert!(r.schedule.is_none());
    }
}
