//! What a rollout is, as stored (one JSON record with a revision, like an installation).

use std::collections::BTreeMap;

use outfitter_contract::labels::LabelSelector;
use outfitter_contract::lifecycle::Action;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The rollout as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Batches start one after another.
    Running,
    /// A person paused it: no new batch starts; jobs already started finish.
    Paused,
    /// More servers failed than `max_failures` allows: servers not started are `skipped`.
    Halted,
    /// Every server ran, and no more failed than allowed.
    Succeeded,
    /// A person aborted it: servers not started are `skipped`.
    Aborted,
}

impl RolloutState {
    /// Whether the rollout has ended (nothing starts any more; a retry may begin it again).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RolloutState::Halted | RolloutState::Succeeded | RolloutState::Aborted
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::Paused => "paused",
            RolloutState::Halted => "halted",
            RolloutState::Succeeded => "succeeded",
            RolloutState::Aborted => "aborted",
        }
    }
}

/// One server of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Its batch has not started yet.
    Pending,
    /// Its job waits in the server's queue (or for a retry of the exit-code policy).
    Queued,
    /// Its job runs.
    Running,
    Succeeded,
    /// Its job ended in any other way, or could not be queued.
    Failed,
    /// Never started: the rollout halted or was aborted first.
    Skipped,
}

impl TargetState {
    /// Whether this server's part is over (for this attempt).
    pub fn is_done(self) -> bool {
        matches!(
            self,
            TargetState::Succeeded | TargetState::Failed | TargetState::Skipped
        )
    }

    /// Whether its job is out there (queued or running).
    pub fn is_active(self) -> bool {
        matches!(self, TargetState::Queued | TargetState::Running)
    }

    pub const ALL: [TargetState; 6] = [
        TargetState::Pending,
        TargetState::Queued,
        TargetState::Running,
        TargetState::Succeeded,
        TargetState::Failed,
        TargetState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Pending => "pending",
            TargetState::Queued => "queued",
            TargetState::Running => "running",
            TargetState::Succeeded => "succeeded",
            TargetState::Failed => "failed",
            TargetState::Skipped => "skipped",
        }
    }
}

/// What a rollout does on each server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// Install the app (on a server where it is installed: change its settings).
    Install,
    /// Upgrade the installation to the catalog's version.
    Upgrade,
    /// Change the installation's settings.
    Reconfigure,
    /// Uninstall it.
    Uninstall,
}

impl Work {
    /// The installation action, for every kind but a plain install.
    pub fn action(self) -> Option<Action> {
        match self {
            Work::Install => None,
            Work::Upgrade => Some(Action::Upgrade),
            Work::Reconfigure => Some(Action::Reconfigure),
            Work::Uninstall => Some(Action::Uninstall),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Work::Install => "install",
            Work::Upgrade => "upgrade",
            Work::Reconfigure => "reconfigure",
            Work::Uninstall => "uninstall",
        }
    }
}

/// How the servers are taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Strategy {
    /// Servers at once.
    pub batch_size: u32,
    /// Size of a first batch that goes alone (a canary), when given.
    pub canary: Option<u32>,
    /// How many failed servers the rollout tolerates; one more halts it.
    pub max_failures: u32,
    /// Seconds to wait after a batch ends before the next starts.
    pub pause_seconds: u32,
}

/// How the servers were picked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// By id.
    Agents(Vec<String>),
    /// Every server whose labels match.
    Labels(LabelSelector),
}

/// One server's part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub agent_id: String,
    /// The batch it belongs to (0 is the first).
    pub batch: u32,
    pub state: TargetState,
    /// The job of its latest attempt.
    pub job_id: Option<String>,
    /// 1 for the first run; a retry of the rollout's failed servers adds one.
    pub attempt: u32,
    /// The installation acted on (actions on installations; after an install, once known).
    pub installation_id: Option<String>,
    /// Why it failed or was skipped, for people.
    pub reason: Option<String>,
}

/// A server the selector picked that cannot take the work, found before anything started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Unfit {
    pub agent_id: String,
    /// Why (offline, requirements, not installed, …).
    pub reason: String,
}

/// A rollout as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub id: String,
    pub app_id: String,
    /// The instance acted on or installed (`None`: the app id).
    pub instance: Option<String>,
    pub work: Work,
    /// Plain input values as given (secrets are in `sealed`).
    pub inputs: Map<String, Value>,
    /// Secret input values, sealed under the panel's key and bound to the rollout id.
    pub sealed: Option<String>,
    /// Uninstall: remove the app's data too.
    #[serde(default)]
    pub purge: bool,
    pub selection: Selection,
    pub strategy: Strategy,
    pub state: RolloutState,
    pub targets: Vec<Target>,
    /// Servers picked but left out before the start, with why.
    pub unfit: Vec<Unfit>,
    /// When the next batch may start (set while the pause between batches runs).
    pub next_batch_at: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// The final state whose webhook event is out (the driver announces each end once).
    #[serde(default)]
    pub announced: Option<RolloutState>,
    /// Bumped by every write: counts state changes for webhooks and stale writes.
    #[serde(skip)]
    pub rev: u64,
}

impl Rollout {
    /// How many servers are in each state.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts: BTreeMap<&'static str, usize> =
            TargetState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for t in &self.targets {
            *counts.entry(t.state.as_str()).or_default() += 1;
        }
        counts
    }

    /// The name its jobs are queued under (audit log, a job's `created_by`, idempotency).
    pub fn caller_name(&self) -> String {
        format!("rollout:{}", self.id)
    }
}

/// One line of a rollout's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// Unix milliseconds.
    pub at: i64,
    /// Who: a token's name, or `panel` for the rollout's own steps.
    pub by: String,
    /// What happened, for people.
    pub what: String,
}
