//! Creating, pausing, resuming and deleting schedules on behalf of a caller, each recorded in
//! the audit log. The pages and the API both come here.

use outfitter_contract::ids;

use super::error::{Error, Result};
use super::model::{Definition, NewSchedule, Run, Schedule};
use super::{cron, store, target};
use crate::audit;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::state::AppState;

/// Longest schedule name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(Error::field(
            "name",
            "length",
            format!("a name is 1 to {MAX_NAME_CHARS} printable characters"),
        ));
    }
    Ok(name.to_owned())
}

/// Checks and stores a new schedule; its first due time is the next after now (none while
/// paused).
pub async fn create(state: &AppState, new: NewSchedule, caller: &Caller) -> Result<Schedule> {
    let now = now_ms();
    let name = check_name(&new.name)?;
    let cron_expr = new.cron.trim().to_owned();
    let cadence = cron::parse(&cron_expr, &new.timezone, now)?;
    target::check(state, &new.target).await?;
    let def = Definition {
        id: ids::new_job_id(),
        name,
        cron: cron_expr,
        timezone: new.timezone,
        target: new.target,
        catch_up: new.catch_up,
        created_by: caller.name.clone(),
        created_at: now,
    };
    let next_due = if new.paused {
        None
    } else {
        cadence.next_after(now)
    };
    let mut conn = state.redis.clone();
    store::create(&mut conn, &def, new.paused, next_due).await?;
    audit::record(
        &mut conn,
        &caller.name,
        "schedule.create",
        &def.id,
        &caller.from,
        &format!(
            "name={:?} cron={:?} timezone={} target={} catch_up={}",
            def.name,
            def.cron,
            def.timezone,
            def.target.describe(),
            def.catch_up.as_str()
        ),
    )
    .await;
    Ok(Schedule {
        def,
        paused: new.paused,
        next_due,
        last: None,
    })
}

/// One schedule with its newest runs.
pub async fn detail(state: &AppState, id: &str, runs: usize) -> Result<(Schedule, Vec<Run>)> {
    let mut conn = state.redis.clone();
    let schedule = store::load(&mut conn, id).await?;
    let runs = store::runs(&mut conn, id, runs).await?;
    Ok((schedule, runs))
}

/// Pauses a schedule: no due time comes until it is resumed.
pub async fn pause(state: &AppState, id: &str, caller: &Caller) -> Result<Schedule> {
    let mut conn = state.redis.clone();
    store::check_id(id)?;
    store::set_paused(&mut conn, id, true, None).await?;
    audit::record(
        &mut conn,
        &caller.name,
        "schedule.pause",
        id,
        &caller.from,
        "",
    )
    .await;
    store::load(&mut conn, id).await
}

/// Resumes a schedule from now: due times that passed while it was paused are not run.
pub async fn resume(state: &AppState, id: &str, caller: &Caller) -> Result<Schedule> {
    let mut conn = state.redis.clone();
    let schedule = store::load(&mut conn, id).await?;
    let now = now_ms();
    let cadence = cron::parse(&schedule.def.cron, &schedule.def.timezone, now)?;
    store::set_paused(&mut conn, id, false, cadence.next_after(now)).await?;
    audit::record(
        &mut conn,
        &caller.name,
        "schedule.resume",
        id,
        &caller.from,
        "",
    )
    .await;
    store::load(&mut conn, id).await
}

/// Deletes a schedule and its runs (the jobs it queued stay).
pub async fn delete(state: &AppState, id: &str, caller: &Caller) -> Result<()> {
    let mut conn = state.redis.clone();
    store::delete(&mut conn, id).await?;
    audit::record(
        &mut conn,
        &caller.name,
        "schedule.delete",
        id,
        &caller.from,
        "",
    )
    .await;
    Ok(())
}
