//! The OpenAPI document, generated from the handlers' annotations (`/openapi.json`), and the
//! methods each path serves (the `Allow` header of a 405), read from that same document.

pub mod responses;
mod schedule_target;
pub mod schemas;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{PathItem, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use super::api;
use schedule_target::ScheduleTarget;

#[derive(OpenApi)]
#[openapi(
    info(title = "Outfitter panel API", description = "Catalog, jobs, installations, rollouts, schedules, live progress, agents, webhooks. See docs/api.md."),
    paths(
        api::apps::list, api::apps::get, api::apps::schema,
        api::jobs::create, api::jobs::list, api::jobs::get, api::jobs::stream, api::jobs::log,
        api::jobs::cancel, api::jobs::retry,
        api::installations::list, api::installations::get, api::installations::reconfigure,
        api::installations::upgrade, api::installations::uninstall, api::installations::backup,
        api::installations::restore,
        api::rollouts::create, api::rollouts::list, api::rollouts::get, api::rollouts::pause,
        api::rollouts::resume, api::rollouts::abort, api::rollouts::retry,
        api::schedules::create, api::schedules::list, api::schedules::get,
        api::schedules::pause, api::schedules::resume, api::schedules::delete,
        api::agents::list, api::agents::get, api::agents::create,
        api::agents::rotate, api::agents::remove, api::agents::set_labels, api::agents::metrics,
        api::admin::me, api::admin::list_tokens, api::admin::create_token, api::admin::delete_token,
        api::admin::audit_log, api::admin::catalog, api::admin::reload_catalog,
        api::webhooks::create, api::webhooks::list, api::webhooks::get, api::webhooks::delete,
        api::webhooks::deliveries, api::webhooks::redeliver,
        api::system::healthz, api::system::metrics, api::system::openapi,
    ),
    components(
        schemas(
            crate::error::ErrorBody, crate::error::FieldProblem, schemas::ErrorCode,
            schemas::AppId, schemas::AgentId, schemas::JobId, schemas::TokenName,
            schemas::JobStateName, schemas::SseEvent, schemas::InstallationStateName,
            schemas::ActionName,
        ),
        responses(
            responses::BadRequest, responses::Unauthorized, responses::Forbidden,
            responses::AppNotFound, responses::AgentNotFound, responses::JobNotFound,
            responses::TokenNotFound, responses::TargetNotFound, responses::NotQueued,
            responses::NotCancelable, responses::NotRetryable, responses::AlreadyExists,
            responses::AgentBusy, responses::PayloadTooLarge, responses::UnsupportedMediaType,
            responses::ValidationFailed, responses::StoreUnavailable, responses::TooManyRequests,
            responses::InstallationNotFound, responses::ActionRefused,
            responses::RolloutNotFound, responses::RolloutRefused,
            responses::WebhookNotFound, responses::DeliveryNotFound,
            responses::ScheduleNotFound, responses::ScheduleTargetNotFound,
        ),
    ),
    modifiers(&BearerAuth, &CallerErrors, &Links, &ScheduleTarget),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every operation of a path item, with its method in upper case.
fn operations_mut(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("GET", &mut item.get),
        ("PUT", &mut item.put),
        ("POST", &mut item.post),
        ("DELETE", &mut item.delete),
        ("OPTIONS", &mut item.options),
        ("HEAD", &mut item.head),
        ("PATCH", &mut item.patch),
        ("TRACE", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
    .collect()
}

/// What every secured operation can answer before its handler runs: the `Caller` extractor
/// refuses a missing or unknown token (401), an address that failed too often (429), and
/// looks the token up in Redis (503).
struct CallerErrors;

impl Modify for CallerErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for (_, op) in operations_mut(item) {
                if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    let r = &mut op.responses.responses;
                    r.entry("401".into())
                        .or_insert_with(|| Ref::from_response_name("Unauthorized").into());
                    r.entry("429".into())
                        .or_insert_with(|| Ref::from_response_name("TooManyRequests").into());
                    r.entry("503".into())
                        .or_insert_with(|| Ref::from_response_name("StoreUnavailable").into());
                }
            }
        }
    }
}

/// How a created resource leads to the operations on it (OpenAPI links, which clients and
/// stateful testers follow): (operation, status, link name, target operation, target
/// parameter, where the value is in the response).
const LINKS: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "create_job",
        "202",
        "GetJob",
        "get_job",
        "id",
        "$response.body#/id",
    ),
    (
        "create_job",
        "202",
        "JobEvents",
        "job_events",
        "id",
        "$response.body#/id",
    ),
    (
        "create_job",
        "202",
        "JobLog",
        "job_log",
        "id",
        "$response.body#/id",
    ),
    (
        "create_job",
        "202",
        "CancelJob",
        "cancel_job",
        "id",
        "$response.body#/id",
    ),
    (
        "create_job",
        "202",
        "RetryJob",
        "retry_job",
        "id",
        "$response.body#/id",
    ),
    (
        "retry_job",
        "202",
        "GetJob",
        "get_job",
        "id",
        "$response.body#/id",
    ),
    (
        "cancel_job",
        "202",
        "RetryJob",
        "retry_job",
        "id",
        "$response.body#/job/id",
    ),
    (
        "create_agent",
        "201",
        "GetAgent",
        "get_agent",
        "id",
        "$response.body#/agent/id",
    ),
    (
        "create_agent",
        "201",
        "RotateAgent",
        "rotate_agent",
        "id",
        "$response.body#/agent/id",
    ),
    (
        "create_agent",
        "201",
        "RemoveAgent",
        "remove_agent",
        "id",
        "$response.body#/agent/id",
    ),
    (
        "create_webhook",
        "201",
        "GetWebhook",
        "get_webhook",
        "id",
        "$response.body#/id",
    ),
    (
        "create_webhook",
        "201",
        "WebhookDeliveries",
        "list_webhook_deliveries",
        "id",
        "$response.body#/id",
    ),
    (
        "create_webhook",
        "201",
        "DeleteWebhook",
        "delete_webhook",
        "id",
        "$response.body#/id",
    ),
    (
        "create_token",
        "201",
        "DeleteToken",
        "delete_token",
        "name",
        "$response.body#/record/name",
    ),
    (
        "create_schedule",
        "201",
        "GetSchedule",
        "get_schedule",
        "id",
        "$response.body#/id",
    ),
    (
        "create_schedule",
        "201",
        "PauseSchedule",
        "pause_schedule",
        "id",
        "$response.body#/id",
    ),
    (
        "create_schedule",
        "201",
        "DeleteSchedule",
        "delete_schedule",
        "id",
        "$response.body#/id",
    ),
];

struct Links;

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for (_, op) in operations_mut(item) {
                let id = op.operation_id.clone().unwrap_or_default();
                for &(_, status, name, target, param, value) in LINKS.iter().filter(|l| l.0 == id) {
                    if let Some(RefOr::T(resp)) = op.responses.responses.get_mut(status) {
                        resp.links.insert(
                            name.into(),
                            LinkBuilder::new()
                                .operation_id(target)
                                .parameter(param, value)
                                .build()
                                .into(),
                        );
                    }
                }
            }
        }
    }
}

/// Path template (as the router matches it) → the methods it serves, e.g. `GET, POST`.
static ALLOWED: LazyLock<BTreeMap<String, String>> = LazyLock::new(|| {
    let mut doc = ApiDoc::openapi();
    doc.paths
        .paths
        .iter_mut()
        .map(|(path, item)| {
            let methods: Vec<&str> = operations_mut(item).into_iter().map(|(m, _)| m).collect();
            (path.clone(), methods.join(", "))
        })
        .collect()
});

/// The `Allow` header for a path template of the document, if the document has it.
pub fn allowed_methods(path_template: &str) -> Option<&'static str> {
    ALLOWED.get(path_template).map(String::as_str)
}
