//! What can go wrong with a rollout, in the domain's words; `crate::error` maps each variant
//! to an API code.

use super::machine::Refused;
use super::model::Unfit;
use crate::{installations, jobs};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field breaks a rule: the field, the rule, and why.
    #[error("{field}: {message}")]
    Invalid {
        field: String,
        rule: &'static str,
        message: String,
    },
    /// Servers the selector picked cannot take the work, and the request did not say to
    /// leave them out.
    #[error("{} server(s) cannot take this rollout: {}", .0.len(), describe(.0))]
    Unfit(Vec<Unfit>),
    /// A path parameter that cannot be a rollout id.
    #[error("{0}")]
    InvalidParameter(String),
    #[error("no app {0:?} in the catalog")]
    AppNotFound(String),
    #[error("no rollout {0}")]
    NotFound(String),
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The rollout changed under the request too many times in a row.
    #[error("the rollout changed meanwhile; try again")]
    Contended,
    #[error(transparent)]
    Job(Box<jobs::Error>),
    #[error(transparent)]
    Installation(Box<installations::Error>),
    #[error(transparent)]
    Store(#[from] redis::RedisError),
    #[error("{0}")]
    Internal(String),
}

fn describe(unfit: &[Unfit]) -> String {
    unfit
        .iter()
        .take(10)
        .map(|u| format!("{} ({})", u.agent_id, u.reason))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Error {
    pub fn invalid(
        field: impl Into<String>,
        rule: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            field: field.into(),
            rule,
            message: message.into(),
        }
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

pub type Result<T, E = Error> = std::result::Result<T, E>;
