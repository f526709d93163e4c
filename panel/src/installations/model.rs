//! The installation record: what is installed where, with which settings, and what it is
//! doing now. Stored as one JSON document per installation (`data`) beside a revision.

use outfitter_contract::installation::InstallationState;
use outfitter_contract::lifecycle::Action;
use outfitter_contract::manifest::Manifest;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One app instance on one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installation {
    pub id: String,
    pub agent_id: String,
    pub app_id: String,
    /// `INSTANCE`: the app id unless the app allows several instances.
    pub instance: String,
    /// The version it stands at (the last one installed, upgraded to or rolled back to).
    pub version: String,
    /// The digest of that version's bundle: what a rollback returns to.
    pub digest: String,
    /// That version's manifest: the installation's actions still run it (from the runner's
    /// copy) after the catalog moved on to a newer one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
    pub state: InstallationState,
    /// The settings it runs with: plain values, and each secret as `REDACTED`.
    pub inputs: Map<String, Value>,
    /// The secret values, sealed with the panel's installation key (bound to the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    pub created_at: i64,
    pub created_by: String,
    pub updated_at: i64,
    /// Backups its jobs took, oldest first.
    #[serde(default)]
    pub backups: Vec<Backup>,
    /// The job acting on it now, not yet settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// Revision of the stored record (not part of the JSON; set when loaded).
    #[serde(skip)]
    pub rev: u64,
}

/// A job acting on an installation, and what it would make of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub job_id: String,
    pub action: Action,
    /// The state before the job: where a job that never ran leaves the installation.
    pub before: InstallationState,
    /// Version, digest and settings the installation adopts if the job succeeds.
    pub version: String,
    pub digest: String,
    pub manifest: Manifest,
    pub inputs: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    /// Unix ms the job was queued.
    pub since: i64,
    pub by: String,
}

/// A backup a job of the installation took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub id: String,
    /// The version it was taken of.
    pub version: String,
    pub job_id: String,
    /// Unix ms.
    pub at: i64,
}

/// One line of an installation's history: a job it ran and how that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Unix ms.
    pub at: i64,
    pub action: Action,
    pub job_id: String,
    /// Who asked for it.
    pub by: String,
    /// `queued`, or how it ended: the job state, and the outcome when the runner gave one
    /// (`failed (rolled_back)`).
    pub result: String,
    /// The version it ran (from → to for an upgrade).
    pub version: String,
}
