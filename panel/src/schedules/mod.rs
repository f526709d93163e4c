//! Schedules: a job or an installation action on a cron expression in a time zone, run
//! exactly once per due time by whichever panels are up ([`tick`]), with a catch-up policy
//! for due times missed while none was. Nothing here knows about HTTP.

pub mod cron;
pub mod error;
pub mod manage;
pub mod model;
pub mod store;
pub mod target;
pub mod tick;

pub use error::{Error, Result};
pub use model::{CatchUp, NewSchedule, Run, RunKind, Schedule, ScheduledAction, Target};
