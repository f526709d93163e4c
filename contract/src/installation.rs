//! The installation's states and the one table of its transitions: which action may start
//! from which state, the state while its job runs, and where the job's end leaves it. Pure:
//! the panel sends the result with its own script.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::job::JobState;
use crate::lifecycle::{Action, Outcome, Phase};

/// Where an installation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallationState {
    /// The first install's job has not ended yet.
    Installing,
    /// The last action succeeded (or an upgrade was rolled back): the app runs at `version`.
    Installed,
    /// The last install, change of settings, upgrade with its rollback, restore or uninstall
    /// failed: a person looks, then changes settings, retries or uninstalls.
    Failed,
    /// A change of settings runs.
    Reconfiguring,
    /// An upgrade runs.
    Upgrading,
    /// An upgrade failed and the runner restores the previous version.
    RollingBack,
    /// A backup runs (the app keeps running).
    BackingUp,
    /// A restore from a backup runs.
    Restoring,
    /// The uninstall script runs.
    Uninstalling,
    /// Uninstalled; the record stays as history.
    Uninstalled,
}

impl InstallationState {
    /// Every state, in the order docs and filters list them.
    pub const ALL: [InstallationState; 10] = [
        InstallationState::Installing,
        InstallationState::Installed,
        InstallationState::Failed,
        InstallationState::Reconfiguring,
        InstallationState::Upgrading,
        InstallationState::RollingBack,
        InstallationState::BackingUp,
        InstallationState::Restoring,
        InstallationState::Uninstalling,
        InstallationState::Uninstalled,
    ];

    /// The name in the record, the API and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Installing => "installing",
            Self::Installed => "installed",
            Self::Failed => "failed",
            Self::Reconfiguring => "reconfiguring",
            Self::Upgrading => "upgrading",
            Self::RollingBack => "rolling_back",
            Self::BackingUp => "backing_up",
            Self::Restoring => "restoring",
            Self::Uninstalling => "uninstalling",
            Self::Uninstalled => "uninstalled",
        }
    }

    /// Whether another app may be installed on top of it: it is installed and works as far
    /// as the panel knows (an action on it may be running). A failed one does not count: mend
    /// it first.
    pub fn stands(self) -> bool {
        match self {
            Self::Installed
            | Self::Reconfiguring
            | Self::Upgrading
            | Self::RollingBack
            | Self::BackingUp
            | Self::Restoring => true,
            Self::Installing | Self::Failed | Self::Uninstalling | Self::Uninstalled => false,
        }
    }

    /// Whether it is still (partly) on the server: anything but uninstalled.
    pub fn is_present(self) -> bool {
        self != Self::Uninstalled
    }

    /// The state while a job of `action` runs.
    pub fn during(action: Action) -> Self {
        match action {
            Action::Install => Self::Installing,
            Action::Reconfigure => Self::Reconfiguring,
            Action::Upgrade => Self::Upgrading,
            Action::Uninstall => Self::Uninstalling,
            Action::Backup => Self::BackingUp,
            Action::Restore => Self::Restoring,
        }
    }

    /// The state shown while a job runs: an upgrade's job says when it rolls back.
    pub fn shown_during(action: Action, phase: Option<Phase>) -> Self {
        match (action, phase) {
            (Action::Upgrade, Some(Phase::RollingBack)) => Self::RollingBack,
            _ => Self::during(action),
        }
    }
}

impl fmt::Display for InstallationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InstallationState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown installation state '{s}'"))
    }
}

/// Why an action may not start now. The message is what clients read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Another job of the installation has not ended.
    #[error("job {0} of this installation has not ended yet")]
    Busy(String),
    /// The action does not apply in the current state.
    #[error("cannot {action} an installation that is {state}")]
    WrongState {
        /// The action asked for.
        action: Action,
        /// The state it is in.
        state: InstallationState,
    },
}

/// Whether `action` may start from `state`. A failed installation may be reconfigured (the
/// way to retry), upgraded, restored or uninstalled; an uninstalled one only installed again.
pub fn may_start(state: InstallationState, action: Action) -> Result<(), Refusal> {
    use InstallationState as S;
    let ok = match action {
        Action::Install => matches!(state, S::Uninstalled | S::Failed),
        Action::Reconfigure | Action::Upgrade | Action::Uninstall | Action::Restore => {
            matches!(state, S::Installed | S::Failed)
        }
        Action::Backup => state == S::Installed,
    };
    if ok {
        Ok(())
    } else {
        Err(Refusal::WrongState { action, state })
    }
}

/// How a job of an installation ended, as its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobEnd {
    /// Its terminal state.
    pub state: JobState,
    /// The runner's [`Outcome`], when it wrote one.
    pub outcome: Option<Outcome>,
    /// Whether any attempt started (a job canceled, expired or rejected before its script ran
    /// changed nothing on the server).
    pub ran: bool,
}

/// Where a job's end leaves the installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    /// The new state.
    pub state: InstallationState,
    /// Whether the version, digest and inputs the job carried become the installation's.
    pub adopt: bool,
}

/// The transition at a job's end. `before` is the state the installation was in when the job
/// was queued: a job that never ran leaves it there.
pub fn settle(action: Action, before: InstallationState, end: JobEnd) -> Settlement {
    use InstallationState as S;
    let keep = Settlement {
        state: before,
        adopt: false,
    };
    if !end.ran || end.outcome == Some(Outcome::Unchanged) {
        // An install that never ran has nothing to go back to but its own failure.
        return if action == Action::Install && before == S::Installing {
            Settlement {
                state: S::Failed,
                adopt: true,
            }
        } else {
            keep
        };
    }
    let succeeded = end.state == JobState::Succeeded;
    match action {
        // The first install's settings stay even when it failed: "change settings" retries.
        Action::Install => Settlement {
            state: if succeeded { S::Installed } else { S::Failed },
            adopt: true,
        },
        Action::Reconfigure | Action::Upgrade | Action::Restore if succeeded => Settlement {
            state: S::Installed,
            adopt: action != Action::Restore,
        },
        Action::Upgrade if end.outcome == Some(Outcome::RolledBack) => Settlement {
            state: S::Installed,
            adopt: false,
        },
        Action::Reconfigure | Action::Upgrade | Action::Restore => Settlement {
            state: S::Failed,
            adopt: false,
        },
        Action::Uninstall => Settlement {
            state: if succeeded { S::Uninstalled } else { S::Failed },
            adopt: false,
        },
        // A failed backup changed nothing the app runs on.
        Action::Backup => keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InstallationState as S;

    fn ended(state: JobState, outcome: Option<Outcome>) -> JobEnd {
        JobEnd {
            state,
            outcome,
            ran: true,
        }
    }

    #[test]
    fn a_rolled_back_upgrade_stands_installed_at_the_previous_version() {
        let s = settle(
            Action::Upgrade,
            S::Installed,
            ended(JobState::Failed, Some(Outcome::RolledBack)),
        );
        assert_eq!(
            s,
            Settlement {
                state: S::Installed,
                adopt: false
            }
        );
        let s = settle(
            Action::Upgrade,
            S::Installed,
            ended(JobState::Failed, Some(Outcome::RollbackFailed)),
        );
        assert_eq!(s.state, S::Failed);
        assert!(!s.adopt);
    }

    #[test]
    fn a_job_that_never_ran_leaves_the_installation_where_it_was() {
        for action in [Action::Reconfigure, Action::Upgrade, Action::Uninstall] {
            let s = settle(
                action,
                S::Installed,
                JobEnd {
                    state: JobState::Canceled,
                    outcome: None,
                    ran: false,
                },
            );
            assert_eq!(s.state, S::Installed, "{action}");
            assert!(!s.adopt);
        }
    }

    #[test]
    fn an_upgrade_whose_backup_failed_leaves_the_installation_installed() {
        let s = settle(
            Action::Upgrade,
            S::Installed,
            ended(JobState::Failed, Some(Outcome::Unchanged)),
        );
        assert_eq!(
            s,
            Settlement {
                state: S::Installed,
                adopt: false
            }
        );
    }

    #[test]
    fn success_adopts_what_the_job_carried() {
        for action in [Action::Install, Action::Reconfigure, Action::Upgrade] {
            let s = settle(action, S::Installed, ended(JobState::Succeeded, None));
            assert_eq!(s.state, S::Installed);
            assert!(s.adopt, "{action}");
        }
        let s = settle(
            Action::Uninstall,
            S::Installed,
            ended(JobState::Succeeded, None),
        );
        assert_eq!(s.state, S::Uninstalled);
    }

    #[test]
    fn actions_start_only_from_the_states_that_allow_them() {
        assert!(may_start(S::Installed, Action::Upgrade).is_ok());
        assert!(may_start(S::Failed, Action::Reconfigure).is_ok());
        assert_eq!(
            may_start(S::Uninstalled, Action::Upgrade),
            Err(Refusal::WrongState {
                action: Action::Upgrade,
                state: S::Uninstalled
            })
        );
        assert!(may_start(S::Failed, Action::Backup).is_err());
        assert!(may_start(S::Uninstalled, Action::Install).is_ok());
    }
}
