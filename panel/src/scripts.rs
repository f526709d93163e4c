//! The panel's Lua scripts (in `panel/lua/`, each with a header naming its KEYS and ARGV).

use std::sync::LazyLock;

use redis::Script;

/// Record + first event + queue push, in one step.
pub static ENQUEUE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/enqueue.lua")));
/// Mark canceled; end it here if still queued, else ask the runner.
pub static CANCEL: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/cancel.lua")));
/// New attempt of a finished job.
pub static RETRY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/retry.lua")));
/// Compare-and-swap of one hash field (agent registrations).
pub static REPLACE_FIELD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/replace_field.lua")));
/// The contract's event append, for the panel's own events.
pub static APPEND_EVENT: LazyLock<Script> =
    LazyLock::new(|| Script::new(outfitter_contract::scripts::APPEND_EVENT));
