//! The error responses operations declare, each naming the codes of the table in
//! `crate::error` it can carry; every one has an [`ErrorBody`](crate::error::ErrorBody).

use utoipa::ToResponse;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

use crate::error::Code;

/// A response with the error body, described by what it means and the codes it carries.
fn error(what: &str, codes: &[Code]) -> ResponseBuilder {
    let names: Vec<String> = codes.iter().map(|c| format!("`{}`", c.as_str())).collect();
    ResponseBuilder::new()
        .description(format!("{what} (code {})", names.join(", ")))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
}

macro_rules! error_response {
    ($(#[$doc:meta])* $name:ident, $what:literal, [$($code:ident),+ $(,)?]) => {
        $(#[$doc])*
        pub struct $name;

        impl<'r> ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), error($what, &[$(Code::$code),+]).build().into())
            }
        }
    };
}

error_response!(
    BadRequest,
    "A path, query or header parameter or the body is malformed",
    [InvalidParameter, InvalidJson, JsonTooDeep]
);
error_response!(
    Forbidden,
    "The caller's role does not allow this, or a browser session sent no CSRF token",
    [Forbidden, CsrfFailed]
);
error_response!(
    AppNotFound,
    "No app with that id in the catalog",
    [AppNotFound]
);
error_response!(
    AgentNotFound,
    "No registered agent with that id",
    [AgentNotFound]
);
error_response!(JobNotFound, "No job with that id", [JobNotFound]);
error_response!(TokenNotFound, "No token with that name", [TokenNotFound]);
error_response!(
    TargetNotFound,
    "The app is not in the catalog, or the agent is not registered",
    [AppNotFound, AgentNotFound]
);
error_response!(
    NotQueued,
    "The agent cannot take this job now, or the Idempotency-Key was used for another request",
    [RequirementsNotMet, AgentNeverSeen, IdempotencyKeyReused]
);
error_response!(
    NotCancelable,
    "The job's state cannot be canceled",
    [NotCancelable]
);
error_response!(
    NotRetryable,
    "The job's state cannot be retried",
    [NotRetryable]
);
error_response!(
    AlreadyExists,
    "Something with that name exists already",
    [AlreadyExists]
);
error_response!(
    AgentBusy,
    "The agent has unfinished jobs (remove it with force=true)",
    [AgentBusy]
);
error_response!(
    InstallationNotFound,
    "No installation with that id",
    [InstallationNotFound]
);
error_response!(
    ActionRefused,
    "The action does not apply now: another job of the installation runs, its state or bundle does not allow it, the form was stale, or the version is not in the catalog",
    [
        InstallationBusy,
        ActionNotApplicable,
        InstallationChanged,
        VersionNotFound,
        RequirementsNotMet,
        AgentNeverSeen
    ]
);
error_response!(
    RolloutNotFound,
    "No rollout with that id",
    [RolloutNotFound]
);
error_response!(
    RolloutRefused,
    "The rollout's state does not allow this (pause a finished rollout, retry one with no failed server)",
    [RolloutRefused]
);
error_response!(
    WebhookNotFound,
    "No webhook with that id",
    [WebhookNotFound]
);
error_response!(
    DeliveryNotFound,
    "No webhook with that id, or no delivery with that id of this webhook",
    [WebhookNotFound, DeliveryNotFound]
);
error_response!(
    ScheduleNotFound,
    "No schedule with that id",
    [ScheduleNotFound]
);
error_response!(
    ScheduleTargetNotFound,
    "The target's app, agent or installation does not exist",
    [AppNotFound, AgentNotFound, InstallationNotFound]
);
error_response!(
    PayloadTooLarge,
    "The body is larger than max_body_bytes",
    [PayloadTooLarge]
);
error_response!(
    UnsupportedMediaType,
    "The body is not sent as application/json",
    [UnsupportedMediaType]
);
error_response!(
    ValidationFailed,
    "Fields failed validation; `fields` names each with its rule",
    [ValidationFailed]
);
error_response!(
    StoreUnavailable,
    "Redis does not answer",
    [StoreUnavailable]
);

/// 429: too many failed sign-ins or invalid tokens from this address, with `Retry-After`.
pub struct TooManyRequests;

impl<'r> ToResponse<'r> for TooManyRequests {
    fn response() -> (&'r str, RefOr<Response>) {
        let retry = HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
            .description(Some("Seconds until the address may try again"))
            .build();
        (
            "TooManyRequests",
            error(
                "Too many failed sign-ins or invalid tokens from this client address",
                &[Code::TooManyRequests],
            )
            .header("Retry-After", retry)
            .build()
            .into(),
        )
    }
}

/// 401, with the challenge header the panel sends.
pub struct Unauthorized;

impl<'r> ToResponse<'r> for Unauthorized {
    fn response() -> (&'r str, RefOr<Response>) {
        let challenge = HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some("`Bearer`"))
            .build();
        (
            "Unauthorized",
            error(
                "No bearer token, or one that is not valid",
                &[Code::Unauthorized],
            )
            .header("WWW-Authenticate", challenge)
            .build()
            .into(),
        )
    }
}
