//! The big job's stream: written as its runner would, and read back straight from Redis
//! (the baseline).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use outfitter_contract::clock::now_ms;
use outfitter_contract::event::{Event, EventBody, OutputStream};
use outfitter_contract::job::{JobState, write};
use outfitter_contract::redis_keys::AgentRedisKeys;
use outfitter_contract::scripts::EVENT_FIELD;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;

use crate::sim_runner::{APPEND_EVENTS, finish_succeeded, take_oldest};

use super::{AGENT, LAST_LINES, LINE_BYTES, PANEL_PAGE, WRITE_BATCH, WRITE_PIPELINE};

/// Output line `i`: `LINE_BYTES - 1` printable ASCII bytes (no `#` in front, so it is told
/// apart from the panel's own `# ` notes in the plain log).
pub(super) fn output_line(i: u64) -> String {
    let mut s = format!("{i:>10} bench big-log output: unpacking and configuring package files ");
    while s.len() < LINE_BYTES - 1 {
        s.push('.');
    }
    s.truncate(LINE_BYTES - 1);
    s
}

/// Takes the job off its agent's queue and records it as a runner whose script printed
/// `lines` lines and exited 0.
pub(super) async fn play_runner(
    conn: &mut MultiplexedConnection,
    job: &str,
    lines: u64,
) -> Result<()> {
    let names = AgentRedisKeys::new(AGENT);
    let (wire, env) = take_oldest(conn, &names).await?;
    ensure!(
        env.job_id == job,
        "the queue of {AGENT} held job {}, not {job}",
        env.job_id
    );
    let attempt = env.attempt;
    let (job_key, events_key, channel) = (
        names.job(job),
        names.job_events(job),
        names.job_channel(job),
    );

    // `running`, with its record fields; this call also loads the script for the EVALSHAs.
    let started_at = now_ms();
    let running = Event::state(started_at, attempt, JobState::Running, None, None);
    let fields = write::running(attempt, started_at);
    let mut inv = APPEND_EVENTS.prepare_invoke();
    inv.key(&job_key)
        .key(&events_key)
        .arg(&channel)
        .arg(running.to_unsequenced_json())
        .arg(fields.len());
    for (k, v) in &fields {
        inv.arg(*k).arg(v);
    }
    let _: Vec<u64> = inv.invoke_async(conn).await?;

    // The output: batches of the runner's size, several per round trip, in order.
    let hash = APPEND_EVENTS.get_hash().to_owned();
    let mut next = 0u64;
    while next < lines {
        let mut pipe = redis::pipe();
        for _ in 0..WRITE_PIPELINE {
            if next >= lines {
                break;
            }
            let end = (next + WRITE_BATCH as u64).min(lines);
            let cmd = pipe
                .cmd("EVALSHA")
                .arg(&hash)
                .arg(2)
                .arg(&job_key)
                .arg(&events_key)
                .arg(&channel);
            let ts = now_ms();
            for i in next..end {
                let e = Event::new(
                    ts,
                    attempt,
                    EventBody::Log {
                        stream: OutputStream::Stdout,
                        line: output_line(i),
                    },
                );
                cmd.arg(e.to_unsequenced_json()).arg(0);
            }
            cmd.ignore();
            next = end;
        }
        pipe.query_async::<()>(conn).await?;
    }

    // The result, as the runner applies it.
    let last_lines: Vec<String> = (lines.saturating_sub(LAST_LINES as u64)..lines)
        .map(output_line)
        .collect();
    finish_succeeded(conn, &names, job, &wire, attempt, &last_lines).await
}

/// Reads the job's stream straight from Redis in the panel's page size, decoding each entry
/// to its log text as the panel does; bytes of text and the time it took.
pub(super) async fn redis_read(
    conn: &mut MultiplexedConnection,
    job: &str,
) -> Result<(u64, Duration)> {
    let key = AgentRedisKeys::new(AGENT).job_events(job);
    let started = Instant::now();
    let (mut after, mut bytes) = (0u64, 0u64);
    loop {
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(&key)
            .arg(format!("(0-{after}"))
            .arg("+")
            .arg("COUNT")
            .arg(PANEL_PAGE)
            .query_async(conn)
            .await?;
        let n = reply.ids.len();
        for entry in &reply.ids {
            if let Some(seq) = entry.id.strip_prefix("0-").and_then(|s| s.parse().ok()) {
                after = seq;
            }
            let json: String = entry
                .get(EVENT_FIELD)
                .context("an entry without its event")?;
            let event: Event = serde_json::from_str(&json)?;
            if let EventBody::Log { line, .. } = event.body {
                bytes += line.len() as u64 + 1;
            }
        }
        if n < PANEL_PAGE {
            return Ok((bytes, started.elapsed()));
        }
    }
}
