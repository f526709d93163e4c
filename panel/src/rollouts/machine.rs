//! The rules of a rollout, in one place and without I/O: how job ends change a server's
//! state, when the rollout halts or succeeds, which servers start next, and what pause,
//! resume, abort and retry do. The driver and the API only load, call these, and write.

use outfitter_contract::job::JobState;

use super::model::{Rollout, RolloutState, TargetState};

/// A server's state from its job's.
pub fn target_state(job: JobState) -> TargetState {
    match job {
        JobState::Queued | JobState::Retrying => TargetState::Queued,
        JobState::Running => TargetState::Running,
        JobState::Succeeded => TargetState::Succeeded,
        JobState::Failed
        | JobState::NeedsAttention
        | JobState::TimedOut
        | JobState::Canceled
        | JobState::Interrupted
        | JobState::Rejected
        | JobState::Expired => TargetState::Failed,
    }
}

/// Records what a server's job is now; returns whether anything changed.
pub fn observe(r: &mut Rollout, index: usize, job: JobState) -> bool {
    let t = &mut r.targets[index];
    let state = target_state(job);
    if !t.state.is_active() || t.state == state {
        return false;
    }
    t.state = state;
    if state == TargetState::Failed {
        t.reason = Some(format!("its job ended {}", job.as_str()));
    }
    true
}

/// What [`advance`] decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The record changed (write it).
    pub changed: bool,
    /// Indexes of the targets to start now (their batch is due).
    pub start: Vec<usize>,
    /// The rollout reached this state now (a webhook event).
    pub became: Option<RolloutState>,
}

/// Decides the rollout's next step after the latest observations.
pub fn advance(r: &mut Rollout, now: i64) -> Decision {
    let mut d = Decision::default();
    let failures = count(r, TargetState::Failed);
    if matches!(r.state, RolloutState::Running | RolloutState::Paused)
        && failures > r.strategy.max_failures as usize
    {
        let reason = format!(
            "not started: the rollout halted after {failures} failed server(s) (max_failures {})",
            r.strategy.max_failures
        );
        skip_pending(r, &reason);
        r.state = RolloutState::Halted;
        r.next_batch_at = None;
        r.finished_at = Some(now);
        d.changed = true;
        d.became = Some(RolloutState::Halted);
        return d;
    }
    if r.state != RolloutState::Running || r.targets.iter().any(|t| t.state.is_active()) {
        return d;
    }
    let Some(batch) = r
        .targets
        .iter()
        .filter(|t| t.state == TargetState::Pending)
        .map(|t| t.batch)
        .min()
    else {
        r.state = RolloutState::Succeeded;
        r.finished_at = Some(now);
        d.changed = true;
        d.became = Some(RolloutState::Succeeded);
        return d;
    };
    let after_a_batch = r
        .targets
        .iter()
        .any(|t| t.batch < batch && t.state.is_done());
    if after_a_batch && r.strategy.pause_seconds > 0 {
        match r.next_batch_at {
            None => {
                r.next_batch_at = Some(now + i64::from(r.strategy.pause_seconds) * 1000);
                d.changed = true;
                return d;
            }
            Some(at) if at > now => return d,
            Some(_) => {}
        }
    }
    if r.next_batch_at.take().is_some() {
        d.changed = true;
    }
    d.start = r
        .targets
        .iter()
        .enumerate()
        .filter(|(_, t)| t.state == TargetState::Pending && t.batch == batch)
        .map(|(i, _)| i)
        .collect();
    d
}

fn count(r: &Rollout, state: TargetState) -> usize {
    r.targets.iter().filter(|t| t.state == state).count()
}

fn skip_pending(r: &mut Rollout, reason: &str) {
    for t in r
        .targets
        .iter_mut()
        .filter(|t| t.state == TargetState::Pending)
    {
        t.state = TargetState::Skipped;
        t.reason = Some(reason.to_owned());
    }
}

/// Why a person's request does not apply to the rollout now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the rollout is {state}: {why}", state = state.as_str())]
pub struct Refused {
    pub state: RolloutState,
    pub why: &'static str,
}

fn refuse(r: &Rollout, why: &'static str) -> Refused {
    Refused {
        state: r.state,
        why,
    }
}

/// Stops starting batches; started jobs finish.
pub fn pause(r: &mut Rollout) -> Result<(), Refused> {
    if r.state != RolloutState::Running {
        return Err(refuse(r, "only a running rollout can be paused"));
    }
    r.state = RolloutState::Paused;
    Ok(())
}

/// Goes on from where it was paused.
pub fn resume(r: &mut Rollout) -> Result<(), Refused> {
    if r.state != RolloutState::Paused {
        return Err(refuse(r, "only a paused rollout can be resumed"));
    }
    r.state = RolloutState::Running;
    Ok(())
}

/// Ends the rollout: servers not started are skipped. Returns the indexes of the targets
/// whose jobs still wait in a queue (the caller cancels them; running ones finish).
pub fn abort(r: &mut Rollout, by: &str, now: i64) -> Result<Vec<usize>, Refused> {
    if !matches!(r.state, RolloutState::Running | RolloutState::Paused) {
        return Err(refuse(r, "only a running or paused rollout can be aborted"));
    }
    skip_pending(r, &format!("not started: {by} aborted the rollout"));
    r.state = RolloutState::Aborted;
    r.next_batch_at = None;
    r.finished_at = Some(now);
    Ok(r.targets
        .iter()
        .enumerate()
        .filter(|(_, t)| t.state == TargetState::Queued)
        .map(|(i, _)| i)
        .collect())
}

/// Runs the failed servers again (a new attempt each), and after a halt the servers it
/// skipped; the rollout runs on from the first batch with such a server.
pub fn retry(r: &mut Rollout) -> Result<usize, Refused> {
    if !matches!(r.state, RolloutState::Halted | RolloutState::Succeeded) {
        return Err(refuse(
            r,
            "only a halted rollout, or one that succeeded with tolerated failures, can be retried",
        ));
    }
    let halted = r.state == RolloutState::Halted;
    let mut again = 0;
    for t in &mut r.targets {
        let failed = t.state == TargetState::Failed;
        if failed || (halted && t.state == TargetState::Skipped) {
            if failed {
                t.attempt += 1;
                t.job_id = None;
            }
            t.state = TargetState::Pending;
            t.reason = None;
            again += 1;
        }
    }
    if again == 0 {
        return Err(refuse(r, "no server failed"));
    }
    r.state = RolloutState::Running;
    r.finished_at = None;
    r.next_batch_at = None;
    r.announced = None;
    Ok(again)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollouts::model::{Selection, Strategy, Target, Work};

    fn rollout(batches: &[u32], max_failures: u32, pause_seconds: u32) -> Rollout {
        Rollout {
            id: "r".into(),
            app_id: "app".into(),
            instance: None,
            work: Work::Install,
            inputs: Default::default(),
            sealed: None,
            purge: false,
            selection: Selection::Agents(vec![]),
            strategy: Strategy {
                batch_size: 1,
                canary: None,
                max_failures,
                pause_seconds,
            },
            state: RolloutState::Running,
            targets: batches
                .iter()
                .enumerate()
                .map(|(i, b)| Target {
                    agent_id: format!("a{i}"),
                    batch: *b,
                    state: TargetState::Pending,
                    job_id: None,
                    attempt: 1,
                    installation_id: None,
                    reason: None,
                })
                .collect(),
            unfit: vec![],
            next_batch_at: None,
            created_at: 0,
            created_by: "t".into(),
            updated_at: 0,
            finished_at: None,
            announced: None,
            rev: 1,
        }
    }

    fn started(r: &mut Rollout, idx: &[usize]) {
        for i in idx {
            r.targets[*i].state = TargetState::Queued;
            r.targets[*i].job_id = Some(format!("j{i}"));
        }
    }

    #[test]
    fn batches_start_in_order_one_at_a_time() {
        let mut r = rollout(&[0, 1, 1, 2], 0, 0);
        assert_eq!(advance(&mut r, 0).start, vec![0]);
        started(&mut r, &[0]);
        assert_eq!(advance(&mut r, 1).start, Vec::<usize>::new());
        assert!(observe(&mut r, 0, JobState::Running));
        assert!(!observe(&mut r, 0, JobState::Running));
        observe(&mut r, 0, JobState::Succeeded);
        assert_eq!(advance(&mut r, 2).start, vec![1, 2]);
        started(&mut r, &[1, 2]);
        observe(&mut r, 1, JobState::Succeeded);
        assert!(advance(&mut r, 3).start.is_empty(), "2 still runs");
        observe(&mut r, 2, JobState::Succeeded);
        assert_eq!(advance(&mut r, 4).start, vec![3]);
        started(&mut r, &[3]);
        observe(&mut r, 3, JobState::Succeeded);
        let d = advance(&mut r, 5);
        assert_eq!(d.became, Some(RolloutState::Succeeded));
        assert_eq!(r.finished_at, Some(5));
    }

    #[test]
    fn a_failure_past_the_limit_halts_and_skips_the_rest() {
        let mut r = rollout(&[0, 1, 2], 0, 0);
        advance(&mut r, 0);
        started(&mut r, &[0]);
        observe(&mut r, 0, JobState::Succeeded);
        advance(&mut r, 1);
        started(&mut r, &[1]);
        observe(&mut r, 1, JobState::Failed);
        let d = advance(&mut r, 2);
        assert_eq!(d.became, Some(RolloutState::Halted));
        assert!(d.start.is_empty());
        assert_eq!(r.targets[2].state, TargetState::Skipped);
        assert!(r.targets[2].reason.as_deref().unwrap().contains("halted"));
        // Nothing more starts.
        assert_eq!(advance(&mut r, 3), Decision::default());
    }

    #[test]
    fn tolerated_failures_do_not_halt() {
        let mut r = rollout(&[0, 1], 1, 0);
        advance(&mut r, 0);
        started(&mut r, &[0]);
        observe(&mut r, 0, JobState::NeedsAttention);
        assert_eq!(advance(&mut r, 1).start, vec![1]);
        started(&mut r, &[1]);
        observe(&mut r, 1, JobState::Succeeded);
        assert_eq!(advance(&mut r, 2).became, Some(RolloutState::Succeeded));
        assert_eq!(retry(&mut r), Ok(1));
        assert_eq!(r.targets[0].attempt, 2);
        assert_eq!(advance(&mut r, 3).start, vec![0]);
    }

    #[test]
    fn the_pause_between_batches_waits_its_time() {
        let mut r = rollout(&[0, 1], 0, 10);
        advance(&mut r, 0);
        started(&mut r, &[0]);
        observe(&mut r, 0, JobState::Succeeded);
        let d = advance(&mut r, 1_000);
        assert!(d.changed && d.start.is_empty());
        assert_eq!(r.next_batch_at, Some(11_000));
        assert!(advance(&mut r, 10_999).start.is_empty());
        assert_eq!(advance(&mut r, 11_000).start, vec![1]);
        assert_eq!(r.next_batch_at, None);
    }

    #[test]
    fn paused_starts_nothing_and_resumes_where_it_was() {
        let mut r = rollout(&[0, 1], 0, 0);
        advance(&mut r, 0);
        started(&mut r, &[0]);
        pause(&mut r).unwrap();
        assert!(pause(&mut r).is_err());
        observe(&mut r, 0, JobState::Succeeded);
        assert!(advance(&mut r, 1).start.is_empty());
        resume(&mut r).unwrap();
        assert_eq!(advance(&mut r, 2).start, vec![1]);
    }

    #[test]
    fn abort_skips_the_rest_and_names_queued_jobs() {
        let mut r = rollout(&[0, 0, 1], 0, 0);
        advance(&mut r, 0);
        started(&mut r, &[0, 1]);
        observe(&mut r, 0, JobState::Running);
        assert_eq!(abort(&mut r, "ops", 5), Ok(vec![1]));
        assert_eq!(r.targets[2].state, TargetState::Skipped);
        assert!(abort(&mut r, "ops", 6).is_err());
        assert!(retry(&mut r).is_err());
    }

    #[test]
    fn retry_after_a_halt_runs_the_failed_and_the_skipped() {
        let mut r = rollout(&[0, 1, 2], 0, 0);
        advance(&mut r, 0);
        started(&mut r, &[0]);
        observe(&mut r, 0, JobState::Failed);
        advance(&mut r, 1);
        assert_eq!(r.state, RolloutState::Halted);
        assert_eq!(retry(&mut r), Ok(3));
        assert_eq!(r.state, RolloutState::Running);
        assert_eq!(r.targets[0].job_id, None);
        assert_eq!(advance(&mut r, 2).start, vec![0]);
    }
}
