//! The installation lifecycle as panel and runner both see it: the actions a job can take on
//! an installation, what the envelope tells the runner about the installation, the variables
//! every lifecycle script gets, and how an action ended (written into the job record).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a job does to an installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The first install of an instance (the install script).
    Install,
    /// New settings for an installed instance (the install script again, which is idempotent).
    Reconfigure,
    /// A newer bundle version: backup (when the bundle has one), the upgrade script (or the new
    /// install script), the health check, and on failure a rollback to the previous version.
    Upgrade,
    /// The uninstall script; data stays unless `PURGE=true`.
    Uninstall,
    /// The backup script into a new `BACKUP_DIR`.
    Backup,
    /// The restore script from a listed backup.
    Restore,
}

impl Action {
    /// Every action, in the order pages and docs list them.
    pub const ALL: [Action; 6] = [
        Action::Install,
        Action::Reconfigure,
        Action::Upgrade,
        Action::Uninstall,
        Action::Backup,
        Action::Restore,
    ];

    /// The name in `OUTFITTER_ACTION`, the job record and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Install => "install",
            Action::Reconfigure => "reconfigure",
            Action::Upgrade => "upgrade",
            Action::Uninstall => "uninstall",
            Action::Backup => "backup",
            Action::Restore => "restore",
        }
    }

    /// Whether the health check runs after this action succeeded.
    pub fn checks_health(self) -> bool {
        matches!(
            self,
            Action::Install | Action::Reconfigure | Action::Upgrade | Action::Restore
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown action '{s}'"))
    }
}

/// The part of a job's envelope that ties it to an installation. A job without it is a plain
/// install of the app as its own single instance (what every job was before installations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleOrder {
    /// The installation this job acts on ([`crate::ids::new_job_id`] form).
    pub installation_id: String,
    /// What to do.
    pub action: Action,
    /// The instance name (`INSTANCE`): the app id for single-instance apps.
    pub instance: String,
    /// For an upgrade: the bundle the installation stands on now, which the runner rolls back
    /// to from its own copy (kept by digest) when the upgrade or its health check fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousBundle>,
    /// For a restore: the backup to restore from, an id a backup job reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// For an uninstall: remove the data too (`PURGE=true`).
    #[serde(default)]
    pub purge: bool,
}

/// The bundle an installation stands on before an upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousBundle {
    /// Its manifest version (`PREVIOUS_VERSION`).
    pub version: String,
    /// Its [`crate::manifest::bundle_digest`]: the runner's copy of it is found by this.
    pub digest: String,
}

/// `OUTFITTER_ACTION`: the action, for every script and the health check.
pub const ACTION_VAR: &str = "OUTFITTER_ACTION";
/// `INSTANCE`: the instance name, for every script and the health check.
pub const INSTANCE_VAR: &str = "INSTANCE";
/// `PREVIOUS_VERSION`: the version an upgrade starts from (and a rollback returns to).
pub const PREVIOUS_VERSION_VAR: &str = "PREVIOUS_VERSION";
/// `BACKUP_DIR`: where the backup script writes and the restore script reads.
pub const BACKUP_DIR_VAR: &str = "BACKUP_DIR";
/// `PURGE`: `true` or `false`, for the uninstall script.
pub const PURGE_VAR: &str = "PURGE";

/// The names the runner sets for lifecycle scripts; reserved, so no input may take them.
pub const LIFECYCLE_VARIABLES: &[&str] = &[
    ACTION_VAR,
    INSTANCE_VAR,
    PREVIOUS_VERSION_VAR,
    BACKUP_DIR_VAR,
    PURGE_VAR,
];

/// What one lifecycle step of a job tells its script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepFacts {
    /// `OUTFITTER_ACTION` (the step's own: a rollback inside an upgrade runs `restore`).
    pub action: Option<Action>,
    /// `INSTANCE`.
    pub instance: String,
    /// `PREVIOUS_VERSION`, for an upgrade and its rollback.
    pub previous_version: Option<String>,
    /// `BACKUP_DIR`, for backup and restore (and an upgrade's backup and rollback).
    pub backup_dir: Option<String>,
    /// `PURGE`, for an uninstall.
    pub purge: Option<bool>,
}

/// The lifecycle variables of one step, in [`LIFECYCLE_VARIABLES`] order; a variable that
/// does not apply is left out rather than set empty.
pub fn lifecycle_env(facts: &StepFacts) -> Vec<(String, String)> {
    let action = facts.action.unwrap_or(Action::Install);
    let mut env = vec![
        (ACTION_VAR.to_owned(), action.as_str().to_owned()),
        (INSTANCE_VAR.to_owned(), facts.instance.clone()),
    ];
    if let Some(v) = &facts.previous_version {
        env.push((PREVIOUS_VERSION_VAR.to_owned(), v.clone()));
    }
    if let Some(d) = &facts.backup_dir {
        env.push((BACKUP_DIR_VAR.to_owned(), d.clone()));
    }
    if let Some(p) = facts.purge {
        env.push((PURGE_VAR.to_owned(), p.to_string()));
    }
    env
}

/// How a lifecycle job ended beyond its job state, in the job record's
/// [`crate::job::field::OUTCOME`]: what the panel needs to settle the installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The action's script and the health check (where it runs) passed.
    Done,
    /// The script passed, the health check did not: the job fails.
    Unhealthy,
    /// The upgrade (or its health check) failed, and the previous version was restored and
    /// passed its health check: the installation stands where it was.
    RolledBack,
    /// The upgrade failed and so did the rollback: a person must look; the backup is kept.
    RollbackFailed,
    /// The job failed before it changed anything on the server (the backup before an
    /// upgrade, a backup directory, a check of the runner's): the installation stays where
    /// it was.
    Unchanged,
}

impl Outcome {
    /// The name in the job record.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Unhealthy => "unhealthy",
            Outcome::RolledBack => "rolled_back",
            Outcome::RollbackFailed => "rollback_failed",
            Outcome::Unchanged => "unchanged",
        }
    }
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Outcome::Done,
            Outcome::Unhealthy,
            Outcome::RolledBack,
            Outcome::RollbackFailed,
            Outcome::Unchanged,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| format!("unknown outcome '{s}'"))
    }
}

/// Where an upgrade job is, in the job record's [`crate::job::field::PHASE`] while it runs:
/// the panel shows an installation as `rolling_back` during [`Phase::RollingBack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The backup script runs before the upgrade.
    BackingUp,
    /// The action's own script runs.
    Running,
    /// The health check runs.
    CheckingHealth,
    /// The previous version is being restored.
    RollingBack,
}

impl Phase {
    /// The name in the job record.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::BackingUp => "backing_up",
            Phase::Running => "running",
            Phase::CheckingHealth => "checking_health",
            Phase::RollingBack => "rolling_back",
        }
    }
}

impl FromStr for Phase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Phase::BackingUp,
            Phase::Running,
            Phase::CheckingHealth,
            Phase::RollingBack,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| format!("unknown phase '{s}'"))
    }
}

/// A backup id: what the runner names a backup directory by and the panel lists. Made of the
/// job id and attempt that took it, so it is unique and says where it came from.
pub fn backup_id(job_id: &str, attempt: u32) -> String {
    format!("{job_id}.{attempt}")
}

/// Whether a string may be a backup id: `[0-9a-f-]` then `.` and digits, as [`backup_id`]
/// makes them; anything else (a path, `..`) is refused before it reaches a file name.
pub fn is_backup_id(s: &str) -> bool {
    let Some((job, attempt)) = s.split_once('.') else {
        return false;
    };
    !job.is_empty()
        && job.len() <= 64
        && job.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        && !attempt.is_empty()
        && attempt.len() <= 10
        && attempt.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_only_what_applies() {
        let env = lifecycle_env(&StepFacts {
            action: Some(Action::Uninstall),
            instance: "blog".into(),
            purge: Some(true),
            ..StepFacts::default()
        });
        assert_eq!(
            env,
            vec![
                ("OUTFITTER_ACTION".to_owned(), "uninstall".to_owned()),
                ("INSTANCE".to_owned(), "blog".to_owned()),
                ("PURGE".to_owned(), "true".to_owned()),
            ]
        );
    }

    #[test]
    fn backup_ids_are_what_backup_id_makes_and_nothing_else() {
        let id = backup_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", 2);
        assert!(is_backup_id(&id));
        for bad in [
            "", "..", "../etc.1", "abc", "abc.", "abc.1/..", "ABC.1x", "a/b.1",
        ] {
            assert!(!is_backup_id(bad), "{bad}");
        }
    }

    #[test]
    fn actions_round_trip_through_their_names() {
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
        }
        assert!("purge".parse::<Action>().is_err());
    }
}
