//! The panel's Lua scripts, each loaded once and called by `EVALSHA` (redis-rs reloads it on
//! `NOSCRIPT`). The job scripts are the contract's (`contract/lua/`); `replace_field` is the
//! panel's own (`panel/lua/`). Each file's header names its KEYS and ARGV.

use std::sync::LazyLock;

use outfitter_contract::scripts as contract;
use redis::{Script, ScriptInvocation};

/// Record + first event + queue push, in one step.
pub static ENQUEUE: LazyLock<Script> = LazyLock::new(|| Script::new(contract::ENQUEUE));
/// Mark canceled; end it here if still queued, else ask the runner.
pub static CANCEL: LazyLock<Script> = LazyLock::new(|| Script::new(contract::CANCEL));
/// New attempt of a finished job.
pub static RETRY: LazyLock<Script> = LazyLock::new(|| Script::new(contract::RETRY));
/// Compare-and-swap of one hash field (agent registrations).
pub static REPLACE_FIELD: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/replace_field.lua")));
/// Compare-and-swap of a record with a revision (installations, rollouts), with its history
/// entry.
pub static RECORD_WRITE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/record_write.lua")));
/// Queue one webhook delivery unless it exists (`panel/lua/webhook_emit.lua`).
pub static WEBHOOK_EMIT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/webhook_emit.lua")));
/// Claim a due webhook delivery with a lease.
pub static WEBHOOK_CLAIM: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/webhook_claim.lua")));
/// Record the end of a webhook delivery's attempt.
pub static WEBHOOK_FINISH: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/webhook_finish.lua")));
/// Queue a webhook delivery again now.
pub static WEBHOOK_REDELIVER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/webhook_redeliver.lua")));
/// Compare-and-swap of a schedule's next due time, with the run it records.
pub static SCHEDULE_ADVANCE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/schedule_advance.lua")));
/// Pause or resume of a schedule that exists.
pub static SCHEDULE_STATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/schedule_state.lua")));
/// The contract's event append, for the panel's own events.
pub static APPEND_EVENT: LazyLock<Script> = LazyLock::new(|| Script::new(contract::APPEND_EVENT));

/// An invocation of `script` with the KEYS and ARGV of a contract [`contract::Call`].
pub fn invocation<'s>(script: &'s Script, call: &contract::Call) -> ScriptInvocation<'s> {
    let mut inv = script.prepare_invoke();
    for k in &call.keys {
        inv.key(k);
    }
    for a in &call.args {
        inv.arg(a);
    }
    inv
}
