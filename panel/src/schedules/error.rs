//! What can go wrong with a schedule, in the domain's words; `crate::error` maps each variant
//! to an API code.

use crate::jobs::InvalidField;
use crate::{installations, jobs};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Fields of a new schedule that break a rule (each `field` is a JSON path, e.g. `cron`
    /// or `target.agent_id`).
    #[error("{}", .0.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    InvalidFields(Vec<InvalidField>),
    /// A malformed id in a path.
    #[error("{0}")]
    InvalidParameter(String),
    #[error("no schedule {0}")]
    NotFound(String),
    /// The target's app or agent (checked through the job domain).
    #[error(transparent)]
    Job(Box<jobs::Error>),
    /// The target's installation (checked through the installation domain).
    #[error(transparent)]
    Installation(Box<installations::Error>),
    /// The target's rollout request (checked through the rollout domain).
    #[error(transparent)]
    Rollout(Box<crate::rollouts::Error>),
    #[error(transparent)]
    Store(#[from] redis::RedisError),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// One field that breaks one rule.
    pub fn field(field: &str, rule: &str, message: impl Into<String>) -> Self {
        Error::InvalidFields(vec![InvalidField {
            field: field.to_owned(),
            rule: rule.to_owned(),
            message: message.into(),
        }])
    }
}

impl From<jobs::Error> for Error {
    fn from(e: jobs::Error) -> Self {
        Error::Job(Box::new(e))
    }
}

impl From<installations::Error> for Error {
    fn from(e: installations::Error) -> Self {
        Error::Installation(Box::new(e))
    }
}

impl From<crate::rollouts::Error> for Error {
    fn from(e: crate::rollouts::Error) -> Self {
        Error::Rollout(Box::new(e))
    }
}

impl From<crate::agents::Error> for Error {
    fn from(e: crate::agents::Error) -> Self {
        Error::Job(Box::new(e.into()))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
