//! The background runner every panel runs: each tick takes the schedules whose next due time
//! has come, queues each due time's job under that due time's idempotency key, and moves the
//! schedule on by compare-and-swap from that due time. Two panels queue the same job (the key
//! makes it one); one advance lands and records the run. A panel killed between the two steps
//! leaves the schedule at that due time, and the next tick anywhere gets the same job again.

use std::sync::Arc;
use std::time::Duration;

use super::error::{Error, Result};
use super::model::{CatchUp, Run, RunKind};
use super::{cron, store, target};
use crate::clock::now_ms;
use crate::state::AppState;

/// How often a panel looks for due schedules.
pub const TICK: Duration = Duration::from_millis(500);
/// A due time seen later than this, or later than the schedule's period (whichever is
/// shorter), was missed: no panel ran at the time, and the schedule's catch-up policy
/// applies. Within it, a late tick (a slow Redis, a busy panel) still runs the due time as
/// usual. Capping it at the period means a panel back after several due times never runs
/// them one after another: a tick that finds the following due time passed too collapses
/// them.
pub const GRACE_MS: i64 = 60_000;

/// Ticks forever; errors are logged and the next tick tries again.
pub async fn run(state: Arc<AppState>) {
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = tick(&state, now_ms()).await {
            tracing::debug!(error = %e, "schedule tick failed");
        }
    }
}

/// One tick at `now` (unix ms): every schedule due by then is run or caught up; returns how
/// many runs this panel recorded.
pub async fn tick(state: &AppState, now: i64) -> Result<usize> {
    let mut conn = state.redis.clone();
    let mut recorded = 0;
    for id in store::due_ids(&mut conn, now).await? {
        match run_due(state, &id, now).await {
            Ok(true) => recorded += 1,
            Ok(false) => {}
            // One broken schedule does not hold up the others.
            Err(e) => tracing::warn!(schedule = %id, error = %e, "schedule could not run"),
        }
    }
    Ok(recorded)
}

/// What to do about a due time seen at `now`: how it is met and the due time after it. A
/// function of the stored due time, `now` and the schedule only, so every panel that looks
/// at the same moment decides alike; the run's idempotency key is the stored due time's in
/// every case.
pub fn plan(
    due: i64,
    now: i64,
    catch_up: CatchUp,
    cadence: &cron::Cadence,
) -> (RunKind, Option<i64>) {
    let following = cadence.next_after(due);
    let grace = following.map_or(GRACE_MS, |f| (f - due).min(GRACE_MS));
    if now - due <= grace {
        return (RunKind::OnTime, following);
    }
    // Missed: one run (or none) stands for every due time up to now.
    let kind = match catch_up {
        CatchUp::RunOnce => RunKind::CatchUp,
        CatchUp::Skip => RunKind::Skipped,
    };
    (kind, cadence.next_after(now))
}

/// Runs schedule `id`'s due time if it has come; `true` if this panel recorded the run.
async fn run_due(state: &AppState, id: &str, now: i64) -> Result<bool> {
    let mut conn = state.redis.clone();
    let schedule = match store::load(&mut conn, id).await {
        Ok(s) => s,
        Err(Error::NotFound(_)) => {
            store::unindex_due(&mut conn, id).await?;
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let Some(due) = schedule.next_due.filter(|d| *d <= now && !schedule.paused) else {
        return Ok(false);
    };
    let def = &schedule.def;
    let cadence = cron::parse(&def.cron, &def.timezone, now)?;
    let (kind, next) = plan(due, now, def.catch_up, &cadence);
    // The key is the stored due time's, for a catch-up too: every panel computes the same
    // one, whenever it looks.
    let outcome = match kind {
        RunKind::Skipped => None,
        RunKind::OnTime | RunKind::CatchUp => Some(target::fire(state, id, &def.target, due).await),
    };
    let fired = outcome.as_ref().and_then(|o| o.as_ref().ok());
    let run = Run {
        due,
        kind,
        job_id: fired.and_then(|f| f.job_id()),
        rollout_id: fired.and_then(|f| f.rollout_id()),
        error: outcome.and_then(|o| o.err()),
        at: now_ms(),
    };
    let advanced = store::advance(&mut conn, id, due, next, &run).await?;
    if advanced {
        match (run.job_id.as_ref().or(run.rollout_id.as_ref()), &run.error) {
            (Some(job), _) => {
                tracing::info!(schedule = %id, due, started = %job, kind = ?run.kind, "schedule ran")
            }
            (None, Some(e)) => {
                tracing::warn!(schedule = %id, due, error = %e, "schedule run queued no job")
            }
            (None, None) => tracing::info!(schedule = %id, due, "missed run skipped"),
        }
    }
    Ok(advanced)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_774_699_200_000;

    #[test]
    fn late_within_grace_runs_on_time_and_keeps_cadence() {
        let every2 = cron::parse("*/2 * * * * *", "UTC", T0).unwrap();
        let (kind, next) = plan(T0, T0 + 1_500, CatchUp::Skip, &every2);
        assert_eq!(kind, RunKind::OnTime);
        assert_eq!(next, Some(T0 + 2_000));
    }

    #[test]
    fn a_tick_later_than_one_period_collapses_the_missed_due_times() {
        let every2 = cron::parse("*/2 * * * * *", "UTC", T0).unwrap();
        assert_eq!(
            plan(T0, T0 + 1_900, CatchUp::Skip, &every2).0,
            RunKind::OnTime
        );
        let (kind, next) = plan(T0, T0 + 7_000, CatchUp::RunOnce, &every2);
        assert_eq!(kind, RunKind::CatchUp);
        assert_eq!(next, Some(T0 + 8_000));
        // A daily schedule's grace is the cap.
        let daily = cron::parse("0 3 * * *", "UTC", T0).unwrap();
        let due = daily.next_after(T0).unwrap();
        assert_eq!(
            plan(due, due + 59_000, CatchUp::Skip, &daily).0,
            RunKind::OnTime
        );
        assert_eq!(
            plan(due, due + 61_000, CatchUp::Skip, &daily).0,
            RunKind::Skipped
        );
    }

    #[test]
    fn missed_runs_collapse_into_one_or_none() {
        let every2 = cron::parse("*/2 * * * * *", "UTC", T0).unwrap();
        let now = T0 + GRACE_MS + 10_500;
        let (kind, next) = plan(T0, now, CatchUp::RunOnce, &every2);
        assert_eq!(kind, RunKind::CatchUp);
        assert_eq!(next, Some(T0 + GRACE_MS + 12_000));
        let (kind, next) = plan(T0, now, CatchUp::Skip, &every2);
        assert_eq!(kind, RunKind::Skipped);
        assert!(next.unwrap() > now);
    }

    #[test]
    fn one_due_time_has_one_key() {
        assert_eq!(
            target::idempotency_key("s", T0 + 999),
            target::idempotency_key("s", T0)
        );
        assert_ne!(
            target::idempotency_key("s", T0),
            target::idempotency_key("s", T0 + 2_000)
        );
    }
}
