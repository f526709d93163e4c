//! What can go wrong with a job, in the domain's words. The HTTP layer maps each variant to
//! a code of the API's table (`impl From<jobs::Error> for ApiError` in `crate::error`); the
//! messages here are the messages clients see.

use outfitter_contract::job::BadRecord;

use crate::agents;

/// One field of a request that failed a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    /// The input or request field, e.g. `server_name` or `agent_id`.
    pub field: String,
    /// The rule id that failed (input rules `I…`, or `id`).
    pub rule: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed id, filter, cursor or `Idempotency-Key`.
    #[error("{0}")]
    InvalidParameter(String),
    /// Request fields or inputs that fail their rules.
    #[error("invalid fields: {}", .0.iter().map(|f| f.field.as_str()).collect::<Vec<_>>().join(", "))]
    InvalidFields(Vec<InvalidField>),
    #[error("no app {0:?} in the catalog")]
    AppNotFound(String),
    #[error("no job {0}")]
    JobNotFound(String),
    /// The agent is unknown, or something about it failed.
    #[error(transparent)]
    Agent(#[from] agents::Error),
    #[error("agent {0:?} has never sent a heartbeat; start its runner first")]
    AgentNeverSeen(String),
    #[error("{0}")]
    RequirementsNotMet(String),
    #[error("{0}")]
    NotCancelable(String),
    #[error("{0}")]
    NotRetryable(String),
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    /// The installation the job would act on refused it.
    #[error(transparent)]
    Installation(Box<crate::installations::Error>),
    #[error(transparent)]
    Store(#[from] redis::RedisError),
    /// A bug or a corrupted record; the message says which.
    #[error("{0}")]
    Internal(String),
}

impl From<crate::installations::Error> for Error {
    fn from(e: crate::installations::Error) -> Self {
        match e {
            crate::installations::Error::Job(e) => *e,
            e => Error::Installation(Box::new(e)),
        }
    }
}

impl From<BadRecord> for Error {
    fn from(e: BadRecord) -> Self {
        Error::Internal(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
