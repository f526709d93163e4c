//! A job's events as stored: the replayable stream (entry id `0-<seq>`, field `e`).

use outfitter_contract::event::{Event, EventBody, OutputStream};
use outfitter_contract::redis_keys::AgentRedisKeys;
use outfitter_contract::scripts::EVENT_FIELD;
use outfitter_redis::RedisConn;
use redis::streams::StreamRangeReply;

/// Entries read per round trip.
pub const PAGE: usize = 500;

/// One stored event: its sequence number and its JSON exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub json: String,
}

/// Events with `seq > after`, at most `count`, in order.
pub async fn read_after(
    conn: &mut RedisConn,
    agent_id: &str,
    job_id: &str,
    after: u64,
    count: usize,
) -> redis::RedisResult<Vec<StoredEvent>> {
    let key = AgentRedisKeys::new(agent_id).job_events(job_id);
    let reply: StreamRangeReply = redis::cmd("XRANGE")
        .arg(key)
        .arg(format!("(0-{after}"))
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    Ok(stored(reply))
}

/// The entries of a range reply as stored events (an entry of another shape is skipped).
fn stored(reply: StreamRangeReply) -> Vec<StoredEvent> {
    reply
        .ids
        .into_iter()
        .filter_map(|entry| {
            let seq = entry.id.strip_prefix("0-")?.parse().ok()?;
            let json: String = entry.get(EVENT_FIELD)?;
            Some(StoredEvent { seq, json })
        })
        .collect()
}

/// Every event after `after`, page by page.
pub async fn read_all_after(
    conn: &mut RedisConn,
    agent_id: &str,
    job_id: &str,
    mut after: u64,
) -> redis::RedisResult<Vec<StoredEvent>> {
    let mut out = Vec::new();
    loop {
        let page = read_after(conn, agent_id, job_id, after, PAGE).await?;
        let full = page.len() == PAGE;
        if let Some(last) = page.last() {
            after = last.seq;
        }
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// The plain-text log as a stream of chunks, one page of events each: a log of any size is
/// served in the memory of one page.
pub fn log_text(
    conn: RedisConn,
    agent_id: String,
    job_id: String,
) -> impl futures_util::Stream<Item = redis::RedisResult<bytes::Bytes>> {
    futures_util::stream::try_unfold((conn, Some(0u64)), move |(mut conn, after)| {
        let (agent_id, job_id) = (agent_id.clone(), job_id.clone());
        async move {
            let Some(after) = after else { return Ok(None) };
            let page = read_after(&mut conn, &agent_id, &job_id, after, PAGE).await?;
            let next = (page.len() == PAGE)
                .then(|| page.last().map(|e| e.seq))
                .flatten();
            let mut text = String::new();
            for line in page.iter().filter_map(|e| log_line(&e.json)) {
                text.push_str(&line);
                text.push('\n');
            }
            Ok(Some((bytes::Bytes::from(text), (conn, next))))
        }
    })
}

/// The last `count` events (or fewer), in order: what the job page shows of a long log.
pub async fn read_tail(
    conn: &mut RedisConn,
    agent_id: &str,
    job_id: &str,
    count: usize,
) -> redis::RedisResult<Vec<StoredEvent>> {
    let key = AgentRedisKeys::new(agent_id).job_events(job_id);
    let reply: StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(count)
        .query_async(conn)
        .await?;
    let mut out = stored(reply);
    out.reverse();
    Ok(out)
}

/// The plain-text log: one line per output line, runner notes prefixed with `# `.
pub fn log_line(json: &str) -> Option<String> {
    let event: Event = serde_json::from_str(json).ok()?;
    match event.body {
        EventBody::Log {
            stream: OutputStream::Runner,
            line,
        } => Some(format!("# {line}")),
        EventBody::Log { line, .. } => Some(line),
        EventBody::State {
            state,
            exit_code,
            reason,
        } => {
            let mut s = format!("# attempt {}: {state}", event.attempt);
            if let Some(code) = exit_code {
                s.push_str(&format!(" (exit code {code})"));
            }
            if let Some(reason) = reason {
                s.push_str(&format!(": {reason}"));
            }
            Some(s)
        }
        EventBody::Progress { .. } => None,
    }
}
