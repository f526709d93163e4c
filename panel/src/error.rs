//! The one table of API error codes: each has a stable name and an HTTP status.
//!
//! Every error the panel returns, JSON or HTML, is an [`ApiError`] built from a [`Code`].
//! Codes are part of the API: never rename one; add new ones at the end.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// A stable error code. `as_str` is what clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The body is not JSON, or JSON of the wrong shape (unknown field, wrong type).
    InvalidJson,
    /// JSON nested deeper than the panel accepts.
    JsonTooDeep,
    /// A path or query parameter is malformed (an id that cannot exist, a bad cursor).
    InvalidParameter,
    /// The body is larger than the panel accepts.
    PayloadTooLarge,
    /// The body has a content type the endpoint does not take.
    UnsupportedMediaType,
    /// No credentials, or credentials that are not valid.
    Unauthorized,
    /// The caller's role does not allow this action.
    Forbidden,
    /// A browser form without a valid CSRF token.
    CsrfFailed,
    /// No such route.
    NotFound,
    /// The route exists, the method does not.
    MethodNotAllowed,
    /// No app with that id in the catalog.
    AppNotFound,
    /// No registered agent with that id.
    AgentNotFound,
    /// No job with that id.
    JobNotFound,
    /// No API token with that name.
    TokenNotFound,
    /// Inputs (or request fields) failed validation; `fields` says which and why.
    ValidationFailed,
    /// The agent does not meet the app's OS or resource requirements.
    RequirementsNotMet,
    /// The agent has never sent a heartbeat, so its host facts are unknown.
    AgentNeverSeen,
    /// The job is in a state that cannot be canceled.
    NotCancelable,
    /// The job is in a state that cannot be retried.
    NotRetryable,
    /// The `Idempotency-Key` was used before with a different request.
    IdempotencyKeyReused,
    /// Something with that name already exists (token, agent).
    AlreadyExists,
    /// Redis does not answer.
    StoreUnavailable,
    /// A bug or a corrupted record; the message says which.
    Internal,
    /// The agent still has queued, retrying or running jobs (remove it with force).
    AgentBusy,
    /// The request body did not arrive within `body_read_timeout_secs`.
    RequestTimeout,
    /// Too many failed sign-ins or invalid tokens from this address (`Retry-After` says when).
    TooManyRequests,
    /// No installation with that id.
    InstallationNotFound,
    /// Another job of the installation has not ended yet.
    InstallationBusy,
    /// The action does not apply to the installation now (its state, a script the bundle
    /// lacks, no newer version).
    ActionNotApplicable,
    /// The installation changed since the caller read it (a stale form); reload and retry.
    InstallationChanged,
    /// An upgrade to a version the catalog does not hold.
    VersionNotFound,
    /// No backup with that id for this installation.
    BackupNotFound,
    /// No rollout with that id.
    RolloutNotFound,
    /// The rollout's state does not allow the request (pause a finished one, retry one
    /// with no failed server), or servers it picked cannot take it.
    RolloutRefused,
    /// No webhook with that id.
    WebhookNotFound,
    /// No delivery with that id for this webhook.
    DeliveryNotFound,
    /// No schedule with that id.
    ScheduleNotFound,
    /// An app the installed app requires does not stand on the server yet.
    DependencyMissing,
    /// Other installations on the server stand on this one; uninstall with `force`.
    DependencyInUse,
}

impl Code {
    /// Every code, for the documentation test.
    pub const ALL: [Code; 39] = [
        Code::InvalidJson,
        Code::JsonTooDeep,
        Code::InvalidParameter,
        Code::PayloadTooLarge,
        Code::UnsupportedMediaType,
        Code::Unauthorized,
        Code::Forbidden,
        Code::CsrfFailed,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::AppNotFound,
        Code::AgentNotFound,
        Code::JobNotFound,
        Code::TokenNotFound,
        Code::ValidationFailed,
        Code::RequirementsNotMet,
        Code::AgentNeverSeen,
        Code::NotCancelable,
        Code::NotRetryable,
        Code::IdempotencyKeyReused,
        Code::AlreadyExists,
        Code::StoreUnavailable,
        Code::Internal,
        Code::AgentBusy,
        Code::RequestTimeout,
        Code::TooManyRequests,
        Code::InstallationNotFound,
        Code::InstallationBusy,
        Code::ActionNotApplicable,
        Code::InstallationChanged,
        Code::VersionNotFound,
        Code::BackupNotFound,
        Code::RolloutNotFound,
        Code::RolloutRefused,
        Code::WebhookNotFound,
        Code::DeliveryNotFound,
        Code::ScheduleNotFound,
        Code::DependencyMissing,
        Code::DependencyInUse,
    ];

    /// The table: stable name and HTTP status of each code.
    pub const fn spec(self) -> (&'static str, u16) {
        match self {
            Code::InvalidJson => ("invalid_json", 400),
            Code::JsonTooDeep => ("json_too_deep", 400),
            Code::InvalidParameter => ("invalid_parameter", 400),
            Code::PayloadTooLarge => ("payload_too_large", 413),
            Code::UnsupportedMediaType => ("unsupported_media_type", 415),
            Code::Unauthorized => ("unauthorized", 401),
            Code::Forbidden => ("forbidden", 403),
            Code::CsrfFailed => ("csrf_failed", 403),
            Code::NotFound => ("not_found", 404),
            Code::MethodNotAllowed => ("method_not_allowed", 405),
            Code::AppNotFound => ("app_not_found", 404),
            Code::AgentNotFound => ("agent_not_found", 404),
            Code::JobNotFound => ("job_not_found", 404),
            Code::TokenNotFound => ("token_not_found", 404),
            Code::ValidationFailed => ("validation_failed", 422),
            Code::RequirementsNotMet => ("requirements_not_met", 409),
            Code::AgentNeverSeen => ("agent_never_seen", 409),
            Code::NotCancelable => ("not_cancelable", 409),
            Code::NotRetryable => ("not_retryable", 409),
            Code::IdempotencyKeyReused => ("idempotency_key_reused", 409),
            Code::AlreadyExists => ("already_exists", 409),
            Code::StoreUnavailable => ("store_unavailable", 503),
            Code::Internal => ("internal", 500),
            Code::AgentBusy => ("agent_busy", 409),
            Code::RequestTimeout => ("request_timeout", 408),
            Code::TooManyRequests => ("too_many_requests", 429),
            Code::InstallationNotFound => ("installation_not_found", 404),
            Code::InstallationBusy => ("installation_busy", 409),
            Code::ActionNotApplicable => ("action_not_applicable", 409),
            Code::InstallationChanged => ("installation_changed", 409),
            Code::VersionNotFound => ("version_not_found", 409),
            Code::BackupNotFound => ("backup_not_found", 404),
            Code::RolloutNotFound => ("rollout_not_found", 404),
            Code::RolloutRefused => ("rollout_refused", 409),
            Code::WebhookNotFound => ("webhook_not_found", 404),
            Code::DeliveryNotFound => ("delivery_not_found", 404),
            Code::ScheduleNotFound => ("schedule_not_found", 404),
            Code::DependencyMissing => ("dependency_missing", 409),
            Code::DependencyInUse => ("dependency_in_use", 409),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.spec().0
    }

    pub fn status(self) -> StatusCode {
        StatusCode::from_u16(self.spec().1).expect("the table holds valid statuses")
    }
}

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldProblem {
    /// The input or request field, e.g. `server_name` or `agent_id`.
    pub field: String,
    /// The rule id that failed (input rules `I…`, or `id`, `type`, `required`).
    pub rule: String,
    /// What is wrong, for people.
    pub message: String,
}

/// The JSON body of every error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code from the table in `docs/api.md`.
    #[schema(value_type = crate::http::openapi::schemas::ErrorCode, example = "validation_failed")]
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// Per-field problems (empty unless the code is about fields).
    pub fields: Vec<FieldProblem>,
}

/// An error the panel returns.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub fields: Vec<FieldProblem>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// A 422 with per-field problems.
    pub fn fields(fields: Vec<FieldProblem>) -> Self {
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        Self {
            code: Code::ValidationFailed,
            message: format!("invalid fields: {}", names.join(", ")),
            fields,
        }
    }

    /// A 422 about one request field.
    pub fn field(field: &str, rule: &str, message: impl Into<String>) -> Self {
        Self::fields(vec![FieldProblem {
            field: field.to_owned(),
            rule: rule.to_owned(),
            message: message.into(),
        }])
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.as_str(),
            message: self.message.clone(),
            fields: self.fields.clone(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        if self.code == Code::Internal || self.code == Code::StoreUnavailable {
            tracing::error!(code = self.code.as_str(), message = %self.message, "request failed");
        }
        let mut resp = HttpResponse::build(self.status_code());
        if self.code == Code::Unauthorized {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        resp.json(self.body())
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
        {
            ApiError::new(Code::StoreUnavailable, format!("Redis is unavailable: {e}"))
        } else {
            ApiError::new(Code::Internal, format!("Redis error: {e}"))
        }
    }
}

impl From<outfitter_contract::job::BadRecord> for ApiError {
    fn from(e: outfitter_contract::job::BadRecord) -> Self {
        ApiError::new(Code::Internal, e.to_string())
    }
}

impl From<crate::jobs::InvalidField> for FieldProblem {
    fn from(f: crate::jobs::InvalidField) -> Self {
        FieldProblem {
            field: f.field,
            rule: f.rule,
            message: f.message,
        }
    }
}

/// The boundary between the job domain and the API: each domain error has its code here.
impl From<crate::jobs::Error> for ApiError {
    fn from(e: crate::jobs::Error) -> Self {
        use crate::jobs::Error as E;
        let code = match e {
            E::Store(e) => return e.into(),
            E::Agent(e) => return e.into(),
            E::InvalidFields(fields) => {
                return ApiError::fields(fields.into_iter().map(Into::into).collect());
            }
            E::InvalidParameter(_) => Code::InvalidParameter,
            E::AppNotFound(_) => Code::AppNotFound,
            E::JobNotFound(_) => Code::JobNotFound,
            E::AgentNeverSeen(_) => Code::AgentNeverSeen,
            E::RequirementsNotMet(_) => Code::RequirementsNotMet,
            E::NotCancelable(_) => Code::NotCancelable,
            E::NotRetryable(_) => Code::NotRetryable,
            E::IdempotencyKeyReused => Code::IdempotencyKeyReused,
            E::Installation(e) => return (*e).into(),
            E::Internal(_) => Code::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

/// The boundary between the installation domain and the API.
impl From<crate::installations::Error> for ApiError {
    fn from(e: crate::installations::Error) -> Self {
        use crate::installations::Error as E;
        use outfitter_contract::installation::Refusal;
        let code = match e {
            E::Store(e) => return e.into(),
            E::Job(e) => return (*e).into(),
            E::InvalidParameter(_) => Code::InvalidParameter,
            E::NotFound(_) => Code::InstallationNotFound,
            E::Refused(Refusal::Busy(_)) => Code::InstallationBusy,
            E::Refused(Refusal::WrongState { .. }) | E::NotApplicable(_) => {
                Code::ActionNotApplicable
            }
            E::Stale { .. } => Code::InstallationChanged,
            E::VersionNotFound(_) => Code::VersionNotFound,
            E::BackupNotFound(_) => Code::BackupNotFound,
            E::RequirementMissing(_) => Code::DependencyMissing,
            E::RequiredByOthers(_) => Code::DependencyInUse,
            E::Internal(_) => Code::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

/// The boundary between the rollout domain and the API.
impl From<crate::rollouts::Error> for ApiError {
    fn from(e: crate::rollouts::Error) -> Self {
        use crate::rollouts::Error as E;
        let code = match e {
            E::Store(e) => return e.into(),
            E::Job(e) => return (*e).into(),
            E::Installation(e) => return (*e).into(),
            E::Invalid {
                field,
                rule,
                message,
            } => return ApiError::field(&field, rule, message),
            E::Unfit(unfit) => {
                return ApiError::fields(
                    unfit
                        .into_iter()
                        .map(|u| FieldProblem {
                            field: format!("agents.{}", u.agent_id),
                            rule: "fit".to_owned(),
                            message: format!(
                                "{}; leave such servers out with \"skip_unfit\": true",
                                u.reason
                            ),
                        })
                        .collect(),
                );
            }
            E::InvalidParameter(_) => Code::InvalidParameter,
            E::AppNotFound(_) => Code::AppNotFound,
            E::NotFound(_) => Code::RolloutNotFound,
            E::Refused(_) => Code::RolloutRefused,
            E::Contended | E::Internal(_) => Code::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

/// The boundary between the agent domain and the API.
impl From<crate::agents::Error> for ApiError {
    fn from(e: crate::agents::Error) -> Self {
        use crate::agents::Error as E;
        let code = match e {
            E::Store(e) => return e.into(),
            E::Job(e) => return (*e).into(),
            E::Labels(l) => {
                // `labels.<key>` as the request body spells it; the whole set is `labels`.
                let field = match l.field.as_str() {
                    "labels" => l.field.clone(),
                    key => format!("labels.{key}"),
                };
                return ApiError::field(&field, "label", l.message);
            }
            E::NotRegistered(_) => Code::AgentNotFound,
            E::Busy(_) => Code::AgentBusy,
            E::KeysExhausted(_) | E::Contended(_) => Code::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

/// The boundary between the webhook domain and the API.
impl From<crate::webhooks::Error> for ApiError {
    fn from(e: crate::webhooks::Error) -> Self {
        use crate::webhooks::Error as E;
        let code = match e {
            E::Store(e) => return e.into(),
            E::Invalid(fields) => {
                return ApiError::fields(
                    fields
                        .into_iter()
                        .map(|f| FieldProblem {
                            field: f.field.to_owned(),
                            rule: f.rule.to_owned(),
                            message: f.message,
                        })
                        .collect(),
                );
            }
            E::InvalidParameter(_) => Code::InvalidParameter,
            E::WebhookNotFound(_) => Code::WebhookNotFound,
            E::DeliveryNotFound(_) => Code::DeliveryNotFound,
            E::Internal(_) => Code::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

/// The boundary between the schedule domain and the API.
impl From<crate::schedules::Error> for ApiError {
    fn from(e: crate::schedules::Error) -> Self {
        use crate::schedules::Error as E;
        let code = match e {
            E::Store(e) => return e.into(),
            E::Job(e) => return (*e).into(),
            E::Installation(e) => return (*e).into(),
            E::Rollout(e) => {
                // Its fields are the schedule's `target.…`.
                let mut api = ApiError::from(*e);
                for f in &mut api.fields {
                    f.field = format!("target.{}", f.field);
                }
                return api;
            }
            E::InvalidFields(fields) => {
                return ApiError::fields(fields.into_iter().map(Into::into).collect());
            }
            E::InvalidParameter(_) => Code::InvalidParameter,
            E::NotFound(_) => Code::ScheduleNotFound,
            E::Internal(_) => Code::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

/// The boundary between the dashboard and the pages.
impl From<crate::dashboard::Error> for ApiError {
    fn from(e: crate::dashboard::Error) -> Self {
        use crate::dashboard::Error as E;
        match e {
            E::Store(e) => e.into(),
            E::Installations(e) => (*e).into(),
            E::Rollouts(e) => (*e).into(),
        }
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_statuses_are_errors() {
        let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Code::ALL.len());
        for c in Code::ALL {
            assert!(
                c.status().is_client_error() || c.status().is_server_error(),
                "{c:?}"
            );
        }
    }
}
