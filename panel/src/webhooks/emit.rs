//! The one door every producer calls: [`emit`] queues a delivery of an event for every
//! webhook that asked for it. A few Redis writes, never an HTTP call, so it never holds up
//! a job, a settle or a rollout.

use std::sync::LazyLock;

use outfitter_contract::redis_keys;
use outfitter_redis::RedisConn;
use tokio::sync::Notify;

use super::error::{Error, Result};
use super::model::EventKind;
use super::{sign, store};
use crate::clock::now_ms;
use crate::scripts;

/// Longest event key accepted.
pub const MAX_KEY_LEN: usize = 256;

/// Wakes this panel's delivery worker when a delivery was queued here (the worker also
/// polls, so deliveries queued by other panels are found too).
pub(super) static QUEUED: LazyLock<Notify> = LazyLock::new(Notify::new);

/// One occurrence of an event.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    /// Unique per occurrence, e.g. `job.failed:<job id>:<attempt>` or
    /// `rollout.halted:<rollout id>`: emitting the same key twice delivers once.
    pub key: String,
    /// The payload's `data` (never a secret).
    pub data: serde_json::Value,
}

impl Event {
    pub fn new(kind: EventKind, key: impl Into<String>, data: serde_json::Value) -> Self {
        Self {
            kind,
            key: key.into(),
            data,
        }
    }
}

/// Queues `event` for every webhook whose events match; idempotent by `event.key`.
pub async fn emit(conn: &mut RedisConn, event: &Event) -> Result<()> {
    if event.key.is_empty()
        || event.key.len() > MAX_KEY_LEN
        || event.key.chars().any(char::is_control)
    {
        return Err(Error::Internal(format!(
            "event key {:?} must be 1 to {MAX_KEY_LEN} characters without control characters",
            event.key
        )));
    }
    let hooks = store::list(conn).await?;
    let data = event.data.to_string();
    let now = now_ms();
    let mut queued = false;
    for hook in hooks.iter().filter(|h| h.wants(event.kind)) {
        let id = sign::delivery_id(&hook.id, &event.key);
        let created: i64 = scripts::WEBHOOK_EMIT
            .key(redis_keys::webhook_delivery(&id))
            .key(redis_keys::WEBHOOK_DUE)
            .key(redis_keys::webhook_deliveries(&hook.id))
            .arg(&id)
            .arg(&hook.id)
            .arg(event.kind.as_str())
            .arg(&event.key)
            .arg(&data)
            .arg(now)
            .arg(store::MAX_LOG)
            .arg(redis_keys::webhook_delivery(""))
            .invoke_async(conn)
            .await?;
        queued |= created == 1;
    }
    if queued {
        QUEUED.notify_one();
    }
    Ok(())
}
