//! What can go wrong with an installation, in the domain's words; `crate::error` maps each
//! variant to an API code.

use outfitter_contract::installation::Refusal;

use crate::jobs;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidParameter(String),
    #[error("no installation {0}")]
    NotFound(String),
    /// Another job of the installation runs, or the action does not apply in its state.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The installation changed since the caller read it (a stale form).
    #[error(
        "the installation changed meanwhile (revision {current}, the request was made at {seen}); reload it and try again"
    )]
    Stale { seen: u64, current: u64 },
    /// The action needs a script or a version the bundle does not have.
    #[error("{0}")]
    NotApplicable(String),
    /// An upgrade to a version the catalog does not hold.
    #[error("{0}")]
    VersionNotFound(String),
    /// An app the manifest requires does not stand on the server.
    #[error("{0}")]
    RequirementMissing(String),
    /// Other installations on the server stand on this one (uninstall with force).
    #[error("{0}")]
    RequiredByOthers(String),
    #[error("no backup {0} of this installation")]
    BackupNotFound(String),
    #[error(transparent)]
    Job(#[from] Box<jobs::Error>),
    #[error(transparent)]
    Store(#[from] redis::RedisError),
    #[error("{0}")]
    Internal(String),
}

impl From<jobs::Error> for Error {
    fn from(e: jobs::Error) -> Self {
        Error::Job(Box::new(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
