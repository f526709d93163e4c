//! The audit log: every state-changing action (who, what, on what, when, from where), in
//! the Redis stream `outfitter:audit`, readable by admins. Entries older than the retention
//! are trimmed by the retention sweep.

use outfitter_contract::redis_keys;
use outfitter_redis::RedisConn;
use redis::streams::StreamRangeReply;
use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::now_ms;

/// Upper bound on audit entries kept regardless of age (approximate trim).
const MAX_ENTRIES: usize = 1_000_000;

/// One action, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Stream id; pass as `before` to page backwards.
    pub id: String,
    /// Unix milliseconds.
    pub ts: i64,
    /// The token name (`cli:<user>` for the command line).
    pub who: String,
    /// e.g. `job.create`, `job.cancel`, `job.retry`, `agent.add`, `agent.config`,
    /// `agent.rotate`, `agent.remove`, `token.add`, `token.delete`, `schedule.create`,
    /// `schedule.pause`, `schedule.resume`, `schedule.delete`, `session.login`,
    /// `session.login_failed` (who: `anonymous`), `session.logout`.
    pub action: String,
    /// What it acted on (job id, agent id, token name).
    pub target: String,
    /// Peer address, or `local` for the command line.
    pub from: String,
    /// Extra facts (e.g. the app of a job); never a secret.
    pub detail: String,
}

/// Records one action. Failures are logged, not returned: the action already happened.
pub async fn record(
    conn: &mut RedisConn,
    who: &str,
    action: &str,
    target: &str,
    from: &str,
    detail: &str,
) {
    let ts = now_ms();
    let res: redis::RedisResult<String> = redis::cmd("XADD")
        .arg(redis_keys::AUDIT)
        .arg("MAXLEN")
        .arg("~")
        .arg(MAX_ENTRIES)
        .arg("*")
        .arg("ts")
        .arg(ts)
        .arg("who")
        .arg(who)
        .arg("action")
        .arg(action)
        .arg("target")
        .arg(target)
        .arg("from")
        .arg(from)
        .arg("detail")
        .arg(detail)
        .query_async(conn)
        .await;
    if let Err(e) = res {
        tracing::error!(error = %e, who, action, target, "audit entry could not be written");
    }
}

/// Checks a `before` cursor: a stream id `<ms>-<n>`.
pub fn valid_cursor(id: &str) -> bool {
    let mut parts = id.splitn(2, '-');
    let ok = |p: Option<&str>| {
        // 19 digits always fit the u64 Redis wants; 20 may not (a 500 from Redis).
        p.is_some_and(|p| !p.is_empty() && p.len() <= 19 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    ok(parts.next()) && ok(parts.next())
}

/// The newest entries (before `before`, exclusive), newest first.
pub async fn list(
    conn: &mut RedisConn,
    before: Option<&str>,
    limit: usize,
) -> redis::RedisResult<Vec<AuditEntry>> {
    // Nothing is older than 0-0, and Redis refuses the exclusive range before it.
    if before.is_some_and(|b| b.split('-').all(|p| p.bytes().all(|c| c == b'0'))) {
        return Ok(Vec::new());
    }
    let end = before
        .map(|b| format!("({b}"))
        .unwrap_or_else(|| "+".into());
    let reply: StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(redis_keys::AUDIT)
        .arg(end)
        .arg("-")
        .arg("COUNT")
        .arg(limit)
        .query_async(conn)
        .await?;
    Ok(reply
        .ids
        .into_iter()
        .map(|e| {
            let get = |k: &str| e.get::<String>(k).unwrap_or_default();
            AuditEntry {
                ts: get("ts").parse().unwrap_or(0),
                who: get("who"),
                action: get("action"),
                target: get("target"),
                from: get("from"),
                detail: get("detail"),
                id: e.id,
            }
        })
        .collect())
}

/// Removes entries older than `cutoff_ms`. Exact, not `~`: an approximate trim removes only
/// whole stream nodes (100 entries), so a small audit log would never be trimmed.
pub async fn trim_before(conn: &mut RedisConn, cutoff_ms: i64) -> redis::RedisResult<u64> {
    redis::cmd("XTRIM")
        .arg(redis_keys::AUDIT)
        .arg("MINID")
        .arg(format!("{cutoff_ms}-0"))
        .query_async(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_stream_ids() {
        assert!(valid_cursor("1700000000000-0"));
        assert!(!valid_cursor("1700000000000"));
        assert!(!valid_cursor("a-b"));
        assert!(!valid_cursor("1-2-3"));
        assert!(!valid_cursor("+"));
    }
}
