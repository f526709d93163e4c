//! Reading a server's metrics history (written by its runner with each heartbeat,
//! `contract::metrics_history`): the points of one range, oldest first, every value clamped
//! on the way out (`Sample::from_stream`), so a hostile entry cannot reach a page.

use outfitter_contract::host_metrics::Sample;
use outfitter_contract::metrics_history::Range;
use outfitter_contract::redis_keys::AgentRedisKeys;
use outfitter_redis::RedisConn;
use redis::streams::StreamRangeReply;

/// One point of a chart: when (unix ms) and what.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Point {
    /// Start of the point (unix ms).
    pub ts: i64,
    /// `cpu_pct`, `load1`, `memory_pct`, `swap_pct`, `disk_pct` (the fullest mount), and
    /// `disk_read_bps`, `disk_write_bps`, `net_rx_bps`, `net_tx_bps` (bytes per second over
    /// every disk or interface).
    #[schema(value_type = Object)]
    pub sample: Sample,
}

/// The points of `range` that are still kept at `now` (unix ms), oldest first; at most the
/// tier's cap, in one round trip.
pub async fn points(
    conn: &mut RedisConn,
    agent_id: &str,
    range: Range,
    now: i64,
) -> redis::RedisResult<Vec<Point>> {
    let tier = range.tier();
    let key = range.stream(&AgentRedisKeys::new(agent_id));
    let from = (now - tier.keep_ms).max(0);
    let reply: StreamRangeReply = redis::cmd("XRANGE")
        .arg(&key)
        .arg(from)
        .arg("+")
        .arg("COUNT")
        .arg(tier.cap)
        .query_async(conn)
        .await?;
    Ok(reply
        .ids
        .iter()
        .filter_map(|entry| {
            let ts = entry.id.split('-').next()?.parse::<i64>().ok()?;
            let fields: Vec<(String, String)> = entry
                .map
                .iter()
                .filter_map(|(k, v)| {
                    redis::from_redis_value::<String>(v.clone())
                        .ok()
                        .map(|v| (k.clone(), v))
                })
                .collect();
            let sample = Sample::from_stream(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            Some(Point { ts, sample })
        })
        .collect())
}
