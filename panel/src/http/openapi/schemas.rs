//! Schemas of identifiers, cursors and headers, built from the constants and tables the
//! validators use, so that the document cannot allow what the code refuses.

use outfitter_contract::job::JobState;
use outfitter_contract::{ids, labels};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::auth::tokens::TOKEN_NAME_PATTERN;
use crate::error::Code;
use crate::jobs::enqueue::idempotency;

/// `$` in JSON Schema (ECMA-262) and in the `regex` crate both mean the end of the text.
fn pattern(pattern: &str, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
}

/// The same pattern, or the empty string (a list filter left blank: no filter).
pub fn or_blank(p: &str) -> String {
    format!("^$|{p}")
}

/// The agent and app id rule of the contract.
fn id_schema(kind: &str, example: &str) -> Schema {
    pattern(
        ids::ID_PATTERN,
        &format!(
            "{kind} id: lowercase letters, digits and '-', at most {} characters",
            ids::ID_MAX_LEN
        ),
    )
    .min_length(Some(1))
    .max_length(Some(ids::ID_MAX_LEN))
    .examples([example])
    .into()
}

macro_rules! named_schema {
    ($(#[$doc:meta])* $name:ident => $body:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                RefOr::T($body)
            }
        }

        impl ToSchema for $name {}
    };
}

named_schema!(
    /// An app (bundle) id, as `ids::validate_app_id` checks it.
    AppId => id_schema("App", "nginx")
);

named_schema!(
    /// An agent (server) id, as `ids::validate_agent_id` checks it.
    AgentId => id_schema("Agent", "web-1")
);

named_schema!(
    /// A job id, as `ids::validate_job_id` checks it.
    JobId => pattern(ids::JOB_ID_PATTERN, "Job id: a UUID, lowercase, with hyphens")
        .examples(["0193a6c2-6a37-7cc1-9f55-2b8f0e1d4c3a"])
        .into()
);

named_schema!(
    /// A token name, as `tokens::validate_name` checks it.
    TokenName => pattern(
        TOKEN_NAME_PATTERN,
        "Token name: lowercase letters, digits, '.', '_' and '-', at most 63 characters",
    )
    .examples(["ci-bot"])
    .into()
);

named_schema!(
    /// A job state name, from `JobState::ALL`.
    JobStateName => ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(JobState::ALL.iter().map(|s| s.as_str())))
        .into()
);

named_schema!(
    /// An installation state name, from `InstallationState::ALL`.
    InstallationStateName => ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(outfitter_contract::installation::InstallationState::ALL.iter().map(|s| s.as_str())))
        .into()
);

named_schema!(
    /// A lifecycle action name, from `Action::ALL`.
    ActionName => ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(outfitter_contract::lifecycle::Action::ALL.iter().map(|s| s.as_str())))
        .into()
);

named_schema!(
    /// What a webhook subscribes to, as `EventPattern` parses it: an event, a family
    /// (`installation.*`) or `*`.
    EventPatternName => {
        use crate::webhooks::model::EventKind;
        let mut names: Vec<String> = vec!["*".to_owned()];
        for k in EventKind::ALL {
            let family = format!("{}.*", k.family());
            if !names.contains(&family) {
                names.push(family);
            }
        }
        names.extend(EventKind::ALL.iter().map(|k| k.as_str().to_owned()));
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names))
            .into()
    }
);

fn label_value() -> ObjectBuilder {
    pattern(labels::VALUE_PATTERN, "A label value")
}

named_schema!(
    /// A server's labels, as `labels::check_labels` checks them.
    LabelMap => ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("Labels by key: keys 1-63 of a-z 0-9 . _ / -, starting and ending with a letter or digit; values 0-63 of A-Z a-z 0-9 . _ -"))
        .property_names(Some(pattern(labels::KEY_PATTERN, "A label key")))
        .additional_properties(Some(label_value()))
        .max_properties(Some(labels::MAX_LABELS))
        .examples([serde_json::json!({"env": "prod", "region": "eu"})])
        .into()
);

named_schema!(
    /// A label selector, as `LabelSelector::check` checks it.
    LabelSelectorMap => ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("Requirements that must all hold: a value (equals) or a list of values (one of)"))
        .property_names(Some(pattern(labels::KEY_PATTERN, "A label key")))
        .additional_properties(Some(Schema::OneOf(
            utoipa::openapi::schema::OneOfBuilder::new()
                .item(label_value())
                .item(
                    utoipa::openapi::schema::ArrayBuilder::new()
                        .items(label_value())
                        .min_items(Some(1))
                        .max_items(Some(labels::MAX_IN_VALUES))
                        .unique_items(true),
                )
                .build(),
        )))
        .min_properties(Some(1))
        .max_properties(Some(labels::MAX_LABELS))
        .examples([serde_json::json!({"env": "prod", "region": ["eu", "us"]})])
        .into()
);

named_schema!(
    /// Servers by id: at least one, each once.
    AgentIdList => utoipa::openapi::schema::ArrayBuilder::new()
        .items(RefOr::T(id_schema("Agent", "web-1")))
        .min_items(Some(1))
        .max_items(Some(crate::rollouts::plan::MAX_TARGETS))
        .unique_items(true)
        .into()
);

named_schema!(
    /// Every error code of the table in `crate::error`.
    ErrorCode => ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("Stable error code (the table in docs/api.md)"))
        .enum_values(Some(Code::ALL.iter().map(|c| c.as_str())))
        .into()
);

named_schema!(
    /// One server-sent event of a job's stream, as an SSE parser reads it.
    SseEvent => ObjectBuilder::new()
        .description(Some("One server-sent event: `id` is the event's seq, `data` the event JSON (schemas/event.schema.json)"))
        .property("id", pattern("^[0-9]{1,19}$", "The event's seq; send it back as Last-Event-ID"))
        .property("event", ObjectBuilder::new().schema_type(Type::String))
        .property("data", ObjectBuilder::new().schema_type(Type::String).description(Some("The event, as JSON")))
        .into()
);

/// The `Idempotency-Key` header, as `enqueue::idempotency::check_key` checks it.
pub fn idempotency_key() -> Schema {
    pattern(
        &format!("^[A-Za-z0-9._:-]{{1,{}}}$", idempotency::MAX_KEY_LEN),
        "Same key and body within 24 h return the same job",
    )
    .max_length(Some(idempotency::MAX_KEY_LEN))
    .into()
}

/// An audit cursor, as `audit::valid_cursor` checks it (a Redis stream id: two numbers
/// that fit a u64), or blank.
pub fn audit_cursor() -> Schema {
    pattern(
        &or_blank("^[0-9]{1,19}-[0-9]{1,19}$"),
        "The `id` of the last entry of the previous page",
    )
    .into()
}

/// An event sequence number, as `jobs::last_event_id` checks it.
pub fn event_seq() -> Schema {
    pattern(
        crate::http::api::jobs::EVENT_SEQ_PATTERN,
        "Resume after this event sequence number (blank: from the start)",
    )
    .into()
}

/// A job state filter: a state name or blank.
pub fn job_state_filter() -> Schema {
    let mut names = vec![""];
    names.extend(JobState::ALL.iter().map(|s| s.as_str()));
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("Only jobs in this state (blank: any)"))
        .enum_values(Some(names))
        .into()
}

/// An app id filter: an app id or blank.
pub fn app_id_filter() -> Schema {
    pattern(
        &or_blank(ids::ID_PATTERN),
        "Only jobs of this app (blank: any)",
    )
    .max_length(Some(ids::ID_MAX_LEN))
    .into()
}

/// An agent id filter: an agent id or blank.
pub fn agent_id_filter() -> Schema {
    pattern(
        &or_blank(ids::ID_PATTERN),
        "Only jobs on this agent (blank: any)",
    )
    .max_length(Some(ids::ID_MAX_LEN))
    .into()
}

/// A job list cursor: a job id or blank.
pub fn job_cursor() -> Schema {
    pattern(
        &or_blank(ids::JOB_ID_PATTERN),
        "Cursor: the `next` of the previous page",
    )
    .into()
}

/// An installation state filter: a state name or blank.
pub fn installation_state_filter() -> Schema {
    let mut names = vec![""];
    names.extend(
        outfitter_contract::installation::InstallationState::ALL
            .iter()
            .map(|s| s.as_str()),
    );
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("Only installations in this state (blank: any)"))
        .enum_values(Some(names))
        .into()
}

/// A page size. Any count is taken and clamped into the operation's range, so the schema
/// admits what the code admits (an unsigned integer).
pub fn page_size(description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
        .minimum(Some(0))
        .maximum(Some(usize::MAX as u64))
        .description(Some(description))
        .into()
}
