//! A schedule: what runs (its [`Target`]), when (a cron expression in a time zone), what
//! happens to a run missed while no panel was up ([`CatchUp`]), and the runs it made.
//! The definition is stored as one JSON document; pause state, next due time and last run
//! beside it, so the tick's compare-and-swap touches only those.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// What a schedule runs at each due time. Tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// A job: the app on the agent with these inputs (as `POST /api/v1/jobs` takes them).
    /// Secret inputs are refused: a schedule stores its inputs, and secrets belong sealed in
    /// an installation (schedule an installation action instead).
    Job {
        #[schema(value_type = crate::http::openapi::schemas::AppId)]
        app_id: String,
        #[schema(value_type = crate::http::openapi::schemas::AgentId)]
        agent_id: String,
        #[serde(default)]
        #[schema(value_type = Object)]
        inputs: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance: Option<String>,
    },
    /// An action on an installation, run with the settings it keeps.
    Installation {
        #[schema(value_type = crate::http::openapi::schemas::JobId)]
        installation_id: String,
        action: ScheduledAction,
        /// New values, for `reconfigure` and `upgrade` only (no secrets).
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        #[schema(value_type = Object)]
        inputs: Map<String, Value>,
        /// For `uninstall` only: remove the app's data too.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        purge: bool,
    },
    /// A rollout over a fleet, as `POST /api/v1/rollouts` takes it (a weekly upgrade of
    /// every `env=prod` server). It is planned at each due time, against the servers then.
    Rollout(crate::rollouts::request::NewRolloutBody),
}

impl Target {
    /// `job nginx on web-1`, `backup of installation 0192…`: how a list shows it.
    pub fn describe(&self) -> String {
        match self {
            Target::Job {
                app_id, agent_id, ..
            } => format!("job {app_id} on {agent_id}"),
            Target::Installation {
                installation_id,
                action,
                ..
            } => format!("{} of installation {installation_id}", action.as_str()),
            Target::Rollout(r) => format!(
                "rollout: {} {}",
                r.action.map_or("install", |w| w.as_str()),
                r.app_id
            ),
        }
    }
}

/// The installation actions a schedule may repeat (a restore names one backup, so it is not
/// one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScheduledAction {
    Backup,
    Upgrade,
    Reconfigure,
    Uninstall,
}

impl ScheduledAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduledAction::Backup => "backup",
            ScheduledAction::Upgrade => "upgrade",
            ScheduledAction::Reconfigure => "reconfigure",
            ScheduledAction::Uninstall => "uninstall",
        }
    }
}

/// What happens to due times missed while every panel was down (seen later than the grace).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// One run for all the missed due times, at once; then the normal cadence.
    #[default]
    RunOnce,
    /// None: the schedule goes on from the next due time after now.
    Skip,
}

impl CatchUp {
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::RunOnce => "run_once",
            CatchUp::Skip => "skip",
        }
    }
}

/// The stored definition (the `data` field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    pub id: String,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub target: Target,
    pub catch_up: CatchUp,
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
}

/// A schedule as loaded: its definition and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub def: Definition,
    pub paused: bool,
    /// Unix ms of the next due time; `None` while paused (or for an expression that fires no
    /// more).
    pub next_due: Option<i64>,
    pub last: Option<Run>,
}

/// How a due time was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// Seen within the grace: run.
    OnTime,
    /// Missed while no panel ran, run once (catch-up `run_once`).
    CatchUp,
    /// Missed while no panel ran, not run (catch-up `skip`).
    Skipped,
}

/// One due time of a schedule and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    /// The due time (unix ms); each has at most one job.
    pub due: i64,
    pub kind: RunKind,
    /// The job it queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// The rollout it started (a rollout target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_id: Option<String>,
    /// Why no job was queued (the agent is gone, the installation is busy, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it was recorded (unix ms).
    pub at: i64,
}

/// A schedule to create, as the API and the page take it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSchedule {
    /// 1 to 100 characters, not only white space, no control characters (`manage::check_name`).
    #[schema(
        example = "nightly backup",
        max_length = 100,
        pattern = r"^(?!\s*$)[^\u0000-\u001f\u007f-\u009f]{1,100}$"
    )]
    pub name: String,
    /// Five fields (minute hour day-of-month month day-of-week), or six with seconds first.
    #[schema(example = "0 3 * * *")]
    pub cron: String,
    /// An IANA time zone; default `UTC`.
    #[serde(default = "utc")]
    #[schema(example = "Europe/Berlin")]
    pub timezone: String,
    pub target: Target,
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Create it paused.
    #[serde(default)]
    pub paused: bool,
}

fn utc() -> String {
    "UTC".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_tagged_by_kind() {
        let t: Target = serde_json::from_value(serde_json::json!({
            "kind": "installation", "installation_id": "x", "action": "backup"
        }))
        .unwrap();
        assert_eq!(t.describe(), "backup of installation x");
        let bad = serde_json::from_value::<Target>(serde_json::json!({
            "kind": "job", "app_id": "a", "agent_id": "b", "surprise": 1
        }));
        assert!(bad.is_err());
        let unknown = serde_json::from_value::<Target>(serde_json::json!({"kind": "teleport"}));
        assert!(unknown.unwrap_err().to_string().contains("teleport"));
    }
}
