//! When a server needs a person: a full disk, memory nearly gone, a load far above its
//! cores for a while, or no heartbeat for a while. [`evaluate`] decides from an agent's status
//! which conditions hold (pure, tested below); [`check`] keeps what was decided in Redis
//! (`outfitter:attention`, one field per agent, written by compare-and-swap so several
//! panels agree) and emits one webhook event per raise and per recovery.
//!
//! Exactly once across a `kill -9`: a transition is first written into the agent's record
//! as a pending event, then emitted (idempotent by its key, which is made of the agent, the
//! condition and when it began), then cleared from the record. A panel that dies between the
//! steps leaves the event pending; the next round of any panel emits it again under the same
//! key, which delivers once.

use std::collections::{BTreeMap, HashMap};

use outfitter_contract::host::HostFacts;
use outfitter_contract::redis_keys;
use outfitter_redis::RedisConn;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::AgentStatus;
use crate::scripts;
use crate::webhooks::{self, EventKind};

/// Something about a server that needs a person.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// No heartbeat for the offline threshold.
    Offline,
    /// The fullest mount is above the disk threshold.
    DiskLow,
    /// Memory in use is above the memory threshold.
    MemoryLow,
    /// The one-minute load has been above cores × the load factor for the load duration.
    LoadHigh,
}

impl Condition {
    pub const ALL: [Condition; 4] = [
        Condition::Offline,
        Condition::DiskLow,
        Condition::MemoryLow,
        Condition::LoadHigh,
    ];

    /// Its name in records, metrics and webhook payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Offline => "offline",
            Condition::DiskLow => "disk_low",
            Condition::MemoryLow => "memory_low",
            Condition::LoadHigh => "load_high",
        }
    }

    /// The webhook event raised when it begins.
    pub fn event(self) -> EventKind {
        match self {
            Condition::Offline => EventKind::ServerOffline,
            Condition::DiskLow => EventKind::ServerDiskLow,
            Condition::MemoryLow => EventKind::ServerMemoryLow,
            Condition::LoadHigh => EventKind::ServerLoadHigh,
        }
    }
}

/// The thresholds (panel settings `attention_*`, with their defaults in `settings::default`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Disk used above this percentage of the fullest mount.
    pub disk_pct: f64,
    /// Memory in use above this percentage.
    pub memory_pct: f64,
    /// No heartbeat for this long.
    pub offline_ms: i64,
    /// Load above cores × this …
    pub load_per_cpu: f64,
    /// … for this long.
    pub load_ms: i64,
}

/// A condition that holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Raised {
    pub condition: Condition,
    /// When it began, unix ms (the heartbeat that showed it, or the last one seen).
    pub since: i64,
    /// What was seen, for people (`/var 93.2% used`).
    pub detail: String,
}

/// A webhook event decided and not yet known to be queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// `server.disk_low`, `server.recovered`, …
    pub event: String,
    pub key: String,
    pub data: serde_json::Value,
}

/// What the panels keep about one server's attention.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    #[serde(default)]
    pub raised: BTreeMap<Condition, Raised>,
    /// Since when the load has been above the threshold (raised once it lasts).
    #[serde(default)]
    pub load_above_since: Option<i64>,
    #[serde(default)]
    pub pending: Vec<Pending>,
}

impl Record {
    /// The raised conditions, in [`Condition::ALL`] order.
    pub fn conditions(&self) -> Vec<Raised> {
        self.raised.values().cloned().collect()
    }
}

/// The record after one look at `status` at `now`: conditions raised and cleared, each
/// change added to `pending`. While a server is offline its last facts are old, so the
/// conditions read from them keep their state until it is back.
pub fn evaluate(prev: &Record, status: &AgentStatus, t: &Thresholds, now: i64) -> Record {
    let mut next = prev.clone();
    let offline = (!status.online)
        .then_some(status.last_seen)
        .flatten()
        .filter(|seen| now - seen >= t.offline_ms)
        .map(|seen| {
            (
                seen,
                format!("no heartbeat since {}", crate::clock::format_utc(seen)),
            )
        });
    set(&mut next, &status.id, Condition::Offline, offline, now);

    if let (true, Some(facts)) = (status.online, &status.facts) {
        for (condition, seen) in readings(facts, t, &mut next.load_above_since) {
            set(&mut next, &status.id, condition, seen, now);
        }
    }
    next
}

/// The conditions a heartbeat's metrics speak for (none without metrics), each with when it
/// began and what was seen, or `None` when it does not hold.
fn readings(
    facts: &HostFacts,
    t: &Thresholds,
    load_above_since: &mut Option<i64>,
) -> Vec<(Condition, Option<(i64, String)>)> {
    let Some(m) = &facts.metrics else {
        return Vec::new();
    };
    let disk = m
        .fullest_disk()
        .filter(|(_, pct)| *pct > t.disk_pct)
        .map(|(d, pct)| (facts.ts, format!("{} {pct:.1}% used", d.mount)));
    let memory_pct = m.memory_used_pct();
    let memory =
        (memory_pct > t.memory_pct).then(|| (facts.ts, format!("memory {memory_pct:.1}% used")));
    let limit = facts.cpus.max(1) as f64 * t.load_per_cpu;
    let load1 = m.load.one;
    let load = if load1 > limit {
        let since = *load_above_since.get_or_insert(facts.ts);
        (facts.ts - since >= t.load_ms).then(|| {
            (
                since,
                format!(
                    "load {load1:.2} above {limit:.1} since {}",
                    crate::clock::format_utc(since)
                ),
            )
        })
    } else {
        *load_above_since = None;
        None
    };
    vec![
        (Condition::DiskLow, disk),
        (Condition::MemoryLow, memory),
        (Condition::LoadHigh, load),
    ]
}

/// Raises `condition` when `seen` holds and it is not raised, clears it when it does not
/// and it is; each change becomes a pending event.
fn set(
    record: &mut Record,
    agent: &str,
    condition: Condition,
    seen: Option<(i64, String)>,
    now: i64,
) {
    match (record.raised.get(&condition).cloned(), seen) {
        (None, Some((since, detail))) => {
            let raised = Raised {
                condition,
                since,
                detail,
            };
            record.pending.push(Pending {
                event: condition.event().as_str().to_owned(),
                key: format!("{}:{agent}:{since}", condition.event().as_str()),
                data: serde_json::json!({
                    "agent_id": agent,
                    "condition": condition.as_str(),
                    "since": since,
                    "detail": raised.detail,
                }),
            });
            record.raised.insert(condition, raised);
        }
        (Some(was), None) => {
            let kind = EventKind::ServerRecovered.as_str();
            record.pending.push(Pending {
                event: kind.to_owned(),
                key: format!("{kind}:{agent}:{}:{}", condition.as_str(), was.since),
                data: serde_json::json!({
                    "agent_id": agent,
                    "condition": condition.as_str(),
                    "since": was.since,
                    "detail": was.detail,
                    "recovered_at": now,
                }),
            });
            record.raised.remove(&condition);
        }
        _ => {}
    }
}

/// What can keep a round of [`check`] from finishing.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Store(#[from] redis::RedisError),
    #[error(transparent)]
    Webhook(#[from] webhooks::Error),
}

/// Every agent's record as stored (the raw JSON for compare-and-swap) and parsed; an
/// unreadable record counts as empty and is overwritten by the next change.
pub async fn records(
    conn: &mut RedisConn,
) -> redis::RedisResult<HashMap<String, (String, Record)>> {
    let all: HashMap<String, String> = conn.hgetall(redis_keys::ATTENTION).await?;
    Ok(all
        .into_iter()
        .map(|(id, json)| {
            let record = serde_json::from_str(&json).unwrap_or_else(|e| {
                tracing::warn!(agent = %id, error = %e, "attention record unreadable, starting over");
                Record::default()
            });
            (id, (json, record))
        })
        .collect())
}

/// One round over every agent: evaluates, stores the changes, emits the pending events.
pub async fn check(
    conn: &mut RedisConn,
    statuses: &[AgentStatus],
    t: &Thresholds,
    now: i64,
) -> Result<(), CheckError> {
    let mut stored = records(conn).await?;
    for status in statuses {
        let (read, prev) = stored.remove(&status.id).unwrap_or_default();
        let next = evaluate(&prev, status, t, now);
        let mut read = read;
        if next != prev {
            if !replace(conn, &status.id, &read, &next).await? {
                // Another panel wrote it meanwhile; it carries the change, or the next round does.
                continue;
            }
            read = to_json(&next);
        }
        if !next.pending.is_empty() {
            for p in &next.pending {
                emit(conn, p).await?;
            }
            let sent = Record {
                pending: Vec::new(),
                ..next.clone()
            };
            // Lost to another panel: the events stay pending and are emitted again, once.
            replace(conn, &status.id, &read, &sent).await?;
        }
    }
    // Records of agents removed meanwhile (their removal deletes them too; this covers a race).
    for (id, (read, _)) in stored {
        replace(conn, &id, &read, &Record::default()).await?;
    }
    Ok(())
}

async fn emit(conn: &mut RedisConn, p: &Pending) -> Result<(), CheckError> {
    let Ok(kind) = p.event.parse::<EventKind>() else {
        tracing::warn!(event = %p.event, "pending attention event of no known kind dropped");
        return Ok(());
    };
    let event = webhooks::Event::new(kind, p.key.clone(), p.data.clone());
    webhooks::emit(conn, &event).await?;
    tracing::info!(event = %p.event, key = %p.key, "server attention changed");
    Ok(())
}

fn to_json(r: &Record) -> String {
    serde_json::to_string(r).expect("attention records serialize")
}

async fn replace(
    conn: &mut RedisConn,
    agent: &str,
    read: &str,
    next: &Record,
) -> redis::RedisResult<bool> {
    let empty = next == &Record::default();
    let written: i64 = scripts::REPLACE_FIELD
        .key(redis_keys::ATTENTION)
        .arg(agent)
        .arg(read)
        .arg(if empty { String::new() } else { to_json(next) })
        .invoke_async(conn)
        .await?;
    Ok(written == 1)
}

#[cfg(test)]
#[path = "attention_tests.rs"]
mod tests;
