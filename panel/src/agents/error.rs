//! What can go wrong with an agent, in the domain's words; `crate::error` maps each variant
//! to a code of the API's table. The messages here are the messages clients see.

use crate::jobs;

/// Attempts at a compare-and-swap of a registration before giving up (each loses only to
/// another writer of the same registration, e.g. the heartbeat recorder).
pub const CAS_TRIES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no registered agent {0:?} (register it with `outfitter-panel agent add {0}`)")]
    NotRegistered(String),
    /// It still has queued, retrying or running jobs; the message says how many and what to do.
    #[error("{0}")]
    Busy(String),
    /// A label breaks a rule of `contract/src/labels.rs`.
    #[error(transparent)]
    Labels(#[from] outfitter_contract::labels::LabelError),
    #[error("agent {0:?} has used every key generation; remove it and add a new id")]
    KeysExhausted(String),
    #[error("the registration of agent {0:?} changed {CAS_TRIES} times while it was being updated")]
    Contended(String),
    /// Canceling one of its jobs failed.
    #[error(transparent)]
    Job(Box<jobs::Error>),
    #[error(transparent)]
    Store(#[from] redis::RedisError),
}

impl From<jobs::Error> for Error {
    fn from(e: jobs::Error) -> Self {
        Error::Job(Box::new(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
