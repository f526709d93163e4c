//! What can go wrong with webhooks, in the domain's words; `crate::error` maps each variant
//! to an API code.

/// One problem with one field of a webhook registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadField {
    pub field: &'static str,
    pub rule: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registration failed validation (URL, secret, events).
    #[error("{}", .0.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<BadField>),
    /// A path parameter that no webhook or delivery id can be.
    #[error("{0}")]
    InvalidParameter(String),
    #[error("no webhook {0}")]
    WebhookNotFound(String),
    #[error("no delivery {0} of this webhook")]
    DeliveryNotFound(String),
    #[error(transparent)]
    Store(#[from] redis::RedisError),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn field(field: &'static str, rule: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid(vec![BadField {
            field,
            rule,
            message: message.into(),
        }])
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
