//! The exit-code policy: what a script's exit status means for its job.

use std::time::Duration;

use crate::job::JobState;
use crate::limits;

/// Exit codes of the install.sh contract.
pub mod code {
    /// The installation finished; the job ends `succeeded`.
    pub const SUCCESS: i32 = 0;
    /// The inputs were wrong: running again cannot help.
    pub const INVALID_INPUT: i32 = 1;
    /// The installation failed in a way that may pass later (network, dpkg lock).
    pub const INSTALL_ERROR: i32 = 2;
    /// The configuration failed its own check: a person must look.
    pub const CONFIG_ERROR: i32 = 3;
    /// The runner killed the script at its timeout.
    pub const TIMEOUT: i32 = 124;
}

/// No backoff grows beyond this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Retry settings of one app (defaults: [`limits::DEFAULT_RETRY_MAX_ATTEMPTS`] and
/// [`limits::DEFAULT_RETRY_BACKOFF_SECONDS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    /// Total attempts, the first one included (manifest `retry.max_attempts`, 1..=10): an
    /// installation error on attempt `max_attempts` ends the job `failed`.
    pub max_attempts: u32,
    /// Delay before the second attempt (manifest `retry.backoff_seconds`); it doubles for each
    /// further attempt, up to [`MAX_BACKOFF`].
    pub first_backoff: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: limits::DEFAULT_RETRY_MAX_ATTEMPTS,
            first_backoff: Duration::from_secs(limits::DEFAULT_RETRY_BACKOFF_SECONDS),
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The job ends in this state.
    Finish(JobState),
    /// Run attempt `next_attempt` after `delay`.
    Retry {
        /// The 1-based number of the attempt to run next.
        next_attempt: u32,
        /// How long it waits in the agent's scheduled set first ([`backoff`]).
        delay: Duration,
    },
}

/// How an attempt ended, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The script exited with this code (signals map to 128 + n).
    Exited(i32),
    /// The runner killed it at its timeout.
    TimedOut,
    /// A person canceled it.
    Canceled,
}

impl Ending {
    /// The exit code recorded for this ending.
    pub fn exit_code(self) -> Option<i32> {
        match self {
            Ending::Exited(c) => Some(c),
            Ending::TimedOut => Some(code::TIMEOUT),
            Ending::Canceled => None,
        }
    }
}

/// Decides the outcome of attempt number `attempt` (1-based).
pub fn decide(ending: Ending, attempt: u32, retry: RetrySettings) -> Decision {
    match ending {
        Ending::Canceled => Decision::Finish(JobState::Canceled),
        Ending::TimedOut | Ending::Exited(code::TIMEOUT) => Decision::Finish(JobState::TimedOut),
        Ending::Exited(code::SUCCESS) => Decision::Finish(JobState::Succeeded),
        Ending::Exited(code::INSTALL_ERROR) if attempt < retry.max_attempts => Decision::Retry {
            next_attempt: attempt + 1,
            delay: backoff(attempt, retry.first_backoff),
        },
        Ending::Exited(code::CONFIG_ERROR) => Decision::Finish(JobState::NeedsAttention),
        Ending::Exited(_) => Decision::Finish(JobState::Failed),
    }
}

/// Delay after failed attempt `attempt`: `first * 2^(attempt-1)`, capped at [`MAX_BACKOFF`].
pub fn backoff(attempt: u32, first: Duration) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    first
        .checked_mul(factor)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: RetrySettings = RetrySettings {
        max_attempts: 3,
        first_backoff: Duration::from_secs(2),
    };

    #[test]
    fn exit_zero_succeeds() {
        assert_eq!(
            decide(Ending::Exited(0), 1, R),
            Decision::Finish(JobState::Succeeded)
        );
    }

    #[test]
    fn exit_one_fails_without_retry() {
        assert_eq!(
            decide(Ending::Exited(1), 1, R),
            Decision::Finish(JobState::Failed)
        );
    }

    #[test]
    fn exit_two_retries_with_doubling_backoff_until_the_last_attempt() {
        assert_eq!(
            decide(Ending::Exited(2), 1, R),
            Decision::Retry {
                next_attempt: 2,
                delay: Duration::from_secs(2)
            }
        );
        assert_eq!(
            decide(Ending::Exited(2), 2, R),
            Decision::Retry {
                next_attempt: 3,
                delay: Duration::from_secs(4)
            }
        );
        assert_eq!(
            decide(Ending::Exited(2), 3, R),
            Decision::Finish(JobState::Failed)
        );
    }

    #[test]
    fn exit_three_needs_attention() {
        assert_eq!(
            decide(Ending::Exited(3), 1, R),
            Decision::Finish(JobState::NeedsAttention)
        );
    }

    #[test]
    fn timeout_and_exit_124_are_timed_out() {
        assert_eq!(
            decide(Ending::TimedOut, 1, R),
            Decision::Finish(JobState::TimedOut)
        );
        assert_eq!(
            decide(Ending::Exited(124), 1, R),
            Decision::Finish(JobState::TimedOut)
        );
    }

    #[test]
    fn other_codes_and_signals_fail() {
        assert_eq!(
            decide(Ending::Exited(137), 1, R),
            Decision::Finish(JobState::Failed)
        );
        assert_eq!(
            decide(Ending::Exited(42), 1, R),
            Decision::Finish(JobState::Failed)
        );
    }

    #[test]
    fn backoff_is_capped() {
        assert_eq!(backoff(40, Duration::from_secs(10)), MAX_BACKOFF);
    }
}
