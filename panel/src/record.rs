//! Records with a revision (installations, rollouts): one hash (`data` as JSON, `rev`)
//! written by compare-and-swap (`panel/lua/record_write.lua`), with a history list beside it.

use outfitter_redis::RedisConn;
use serde::Serialize;

use crate::scripts;

/// Writes `data` at `key` if the stored revision is still `rev` (0 for a new record), and
/// appends `history` to `history_key` in the same step; returns the new revision, or `None`
/// when someone else wrote first.
pub async fn write<T: Serialize, H: Serialize>(
    conn: &mut RedisConn,
    key: &str,
    history_key: &str,
    rev: u64,
    data: &T,
    history: Option<&H>,
) -> redis::RedisResult<Option<u64>> {
    let data = serde_json::to_string(data).expect("records serialize");
    let entry = history
        .map(|h| serde_json::to_string(h).expect("history entries serialize"))
        .unwrap_or_default();
    let rev: u64 = scripts::RECORD_WRITE
        .key(key)
        .key(history_key)
        .arg(rev)
        .arg(data)
        .arg(entry)
        .invoke_async(conn)
        .await?;
    Ok((rev > 0).then_some(rev))
}
