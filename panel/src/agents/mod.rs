//! Registered agents and what their heartbeats say.
//!
//! Registration lives in `outfitter:agents` (id → JSON). An agent is online while its
//! heartbeat key exists (the runner refreshes it every few seconds with a TTL). The panel
//! copies the latest heartbeat into the registration, so an offline agent still shows its
//! last known facts and when it was last seen.
//!
//! Submodules: [`keys`] turns an agent id into its keys (the registered key generation),
//! [`lifecycle`] rotates an agent's key and removes agents, [`attention`] decides when a
//! server needs a person, [`redis_user`] gives an agent its own Redis user, [`snapshot`]
//! keeps the statuses a second for the app page's picker.

pub mod attention;
pub mod error;
pub mod history;
pub mod keys;
pub mod lifecycle;
pub mod redis_user;
pub mod snapshot;

pub use error::{Error, Result};

use std::collections::HashMap;

use outfitter_contract::host::HostFacts;
use outfitter_contract::labels::Labels;
use outfitter_contract::redis_keys::{self, AgentRedisKeys};
use outfitter_redis::RedisConn;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::scripts;

/// What the panel keeps about a registered agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub id: String,
    /// Unix milliseconds.
    pub registered_at: i64,
    pub registered_by: String,
    /// The `ts` of the latest heartbeat the panel saw (unix ms).
    #[serde(default)]
    pub last_seen: Option<i64>,
    /// The latest heartbeat the panel saw.
    #[serde(default)]
    pub last_facts: Option<HostFacts>,
    /// Which generation of the agent's key is current (`PanelSecret::agent_key_gen`); 0 for
    /// registrations made before keys could be rotated.
    #[serde(default)]
    pub key_generation: u32,
    /// The server's labels (`env=prod`); rollouts pick servers by them.
    #[serde(default)]
    pub labels: Labels,
    /// Whether the panel made the agent its own Redis user ([`redis_user`]): its runner
    /// configuration then carries that user, and rotations and removal follow it.
    #[serde(default)]
    pub redis_user: bool,
}

/// What the panel keeps about a removed agent id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    /// The key generation the agent had when it was removed.
    pub key_generation: u32,
    /// Unix milliseconds.
    pub removed_at: i64,
    pub removed_by: String,
}

/// An agent as shown: registration plus live state. Times are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgentStatus {
    #[schema(example = "web-1")]
    pub id: String,
    /// Whether its heartbeat is live.
    pub online: bool,
    pub registered_at: i64,
    pub registered_by: String,
    /// Generation of the agent's key; it grows by one with each rotation.
    pub key_generation: u32,
    /// The server's labels, by key.
    #[schema(value_type = crate::http::openapi::schemas::LabelMap)]
    pub labels: Labels,
    pub last_seen: Option<i64>,
    /// Host facts: the live heartbeat when online, else the last one seen
    /// (`os_family`, `os_version`, `arch`, `cpus`, `ram_mb`, `disk_free_mb`, `load1`, …).
    #[schema(value_type = Option<Object>)]
    pub facts: Option<HostFacts>,
    /// Jobs waiting in its queue.
    pub queue_depth: u64,
    /// Jobs its runner has taken and not finished.
    pub processing: u64,
    /// Retries waiting for their time.
    pub scheduled: u64,
    /// What about the server needs a person now (disk low, offline, …); empty when nothing.
    pub attention: Vec<attention::Raised>,
}

/// Registers an agent with `labels` (checked by the caller); returns false if it was
/// registered already (nothing changes then). An id that was removed before starts one key
/// generation past the one it had, so the removed agent's key never becomes valid again.
pub async fn register(
    conn: &mut RedisConn,
    id: &str,
    labels: &Labels,
    by: &str,
    now_ms: i64,
) -> redis::RedisResult<bool> {
    let retired: Option<String> = conn.hget(redis_keys::RETIRED_AGENTS, id).await?;
    let key_generation = retired
        .and_then(|j| serde_json::from_str::<Retired>(&j).ok())
        .map_or(0, |r| r.key_generation.saturating_add(1));
    let reg = Registration {
        id: id.to_owned(),
        registered_at: now_ms,
        registered_by: by.to_owned(),
        last_seen: None,
        last_facts: None,
        key_generation,
        labels: labels.clone(),
        redis_user: false,
    };
    let added: bool = conn.hset_nx(redis_keys::AGENTS, id, to_json(&reg)).await?;
    if added {
        let _: i64 = conn.hdel(redis_keys::RETIRED_AGENTS, id).await?;
    }
    Ok(added)
}

fn to_json(reg: &Registration) -> String {
    serde_json::to_string(reg).expect("registrations serialize")
}

/// The registration of one agent exactly as stored (for [`replace_registration`]), and parsed.
pub async fn registration_raw(
    conn: &mut RedisConn,
    id: &str,
) -> redis::RedisResult<Option<(String, Registration)>> {
    let json: Option<String> = conn.hget(redis_keys::AGENTS, id).await?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok().map(|r| (j, r))))
}

/// Replaces (`Some`) or deletes (`None`) a registration if it still is `read` (the JSON
/// [`registration_raw`] returned). Returns false when it changed meanwhile: read it again.
pub async fn replace_registration(
    conn: &mut RedisConn,
    id: &str,
    read: &str,
    new: Option<&Registration>,
) -> redis::RedisResult<bool> {
    let written: i64 = scripts::REPLACE_FIELD
        .key(redis_keys::AGENTS)
        .arg(id)
        .arg(read)
        .arg(new.map(to_json).unwrap_or_default())
        .invoke_async(conn)
        .await?;
    Ok(written == 1)
}

/// The registration of one agent.
pub async fn registration(
    conn: &mut RedisConn,
    id: &str,
) -> redis::RedisResult<Option<Registration>> {
    let json: Option<String> = conn.hget(redis_keys::AGENTS, id).await?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

/// Whether an agent is registered.
pub async fn exists(conn: &mut RedisConn, id: &str) -> redis::RedisResult<bool> {
    conn.hexists(redis_keys::AGENTS, id).await
}

/// The live heartbeat of one agent, if it is online.
pub async fn heartbeat(conn: &mut RedisConn, id: &str) -> redis::RedisResult<Option<HostFacts>> {
    let json: Option<String> = conn.get(AgentRedisKeys::new(id).heartbeat()).await?;
    Ok(json.and_then(|j| read_heartbeat(id, &j).ok().map(|(facts, _)| facts)))
}

/// A heartbeat as the panel uses it: parsed, its metrics clamped to what can be shown (NaN,
/// negative and huge values, thousands of interfaces, over-long names), with a line for
/// each change made. Every reader goes through here, so no page sees an unclamped value.
pub fn read_heartbeat(id: &str, json: &str) -> Result<(HostFacts, Vec<String>), String> {
    let mut facts: HostFacts = serde_json::from_str(json)
        .map_err(|e| format!("heartbeat of agent {id:?} is not valid host facts: {e}"))?;
    let changes = facts
        .metrics
        .as_mut()
        .map(|m| m.clamp())
        .unwrap_or_default();
    Ok((facts, changes))
}

/// A status as read, with the problems of its heartbeat (unreadable, or values clamped).
struct Read {
    status: AgentStatus,
    problems: Vec<String>,
}

/// Status of the given registrations, in one round trip.
async fn statuses(
    conn: &mut RedisConn,
    regs: Vec<Registration>,
) -> redis::RedisResult<Vec<AgentStatus>> {
    Ok(read_statuses(conn, regs)
        .await?
        .into_iter()
        .map(|r| r.status)
        .collect())
}

async fn read_statuses(
    conn: &mut RedisConn,
    regs: Vec<Registration>,
) -> redis::RedisResult<Vec<Read>> {
    let mut pipe = redis::pipe();
    for r in &regs {
        let k = AgentRedisKeys::new(&r.id);
        pipe.get(k.heartbeat())
            .llen(k.queue())
            .llen(k.processing())
            .zcard(k.scheduled())
            .hget(redis_keys::ATTENTION, &r.id);
    }
    type Row = (Option<String>, u64, u64, u64, Option<String>);
    let raw: Vec<Row> = if regs.is_empty() {
        Vec::new()
    } else {
        let flat: Vec<redis::Value> = pipe.query_async(conn).await?;
        flat.chunks(5)
            .map(|c| {
                (
                    redis::from_redis_value(c[0].clone()).unwrap_or(None),
                    redis::from_redis_value(c[1].clone()).unwrap_or(0),
                    redis::from_redis_value(c[2].clone()).unwrap_or(0),
                    redis::from_redis_value(c[3].clone()).unwrap_or(0),
                    redis::from_redis_value(c[4].clone()).unwrap_or(None),
                )
            })
            .collect()
    };
    Ok(regs
        .into_iter()
        .zip(raw)
        .map(|(r, (hb, queue_depth, processing, scheduled, attention))| {
            let mut problems = Vec::new();
            let live = hb.and_then(|j| match read_heartbeat(&r.id, &j) {
                Ok((facts, changes)) => {
                    problems = changes;
                    Some(facts)
                }
                Err(e) => {
                    problems.push(e);
                    None
                }
            });
            let attention = attention
                .and_then(|j| serde_json::from_str::<attention::Record>(&j).ok())
                .map(|rec| rec.conditions())
                .unwrap_or_default();
            let online = live.is_some();
            let last_seen = live.as_ref().map(|f| f.ts).or(r.last_seen);
            let status = AgentStatus {
                id: r.id,
                online,
                registered_at: r.registered_at,
                registered_by: r.registered_by,
                key_generation: r.key_generation,
                labels: r.labels,
                last_seen,
                facts: live.or(r.last_facts),
                queue_depth,
                processing,
                scheduled,
                attention,
            };
            Read { status, problems }
        })
        .collect())
}

/// Every registered agent with its status, sorted by id.
pub async fn list(conn: &mut RedisConn) -> redis::RedisResult<Vec<AgentStatus>> {
    let all: HashMap<String, String> = conn.hgetall(redis_keys::AGENTS).await?;
    let mut regs: Vec<Registration> = all
        .values()
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect();
    regs.sort_by(|a, b| a.id.cmp(&b.id));
    statuses(conn, regs).await
}

/// Every registered agent's id, sorted: what a filter offers, without reading statuses.
pub async fn ids(conn: &mut RedisConn) -> redis::RedisResult<Vec<String>> {
    let mut ids: Vec<String> = conn.hkeys(redis_keys::AGENTS).await?;
    ids.sort_unstable();
    Ok(ids)
}

/// One agent's status.
pub async fn status(conn: &mut RedisConn, id: &str) -> redis::RedisResult<Option<AgentStatus>> {
    match registration(conn, id).await? {
        Some(r) => Ok(statuses(conn, vec![r]).await?.pop()),
        None => Ok(None),
    }
}

/// Copies fresh heartbeats into the registrations (so offline agents keep a "last seen"),
/// and logs what was wrong with each new one. Returns the statuses it read. A registration
/// rotated or removed meanwhile is left as it is now (compare-and-swap); the next round
/// copies the heartbeat.
pub async fn record_heartbeats(conn: &mut RedisConn) -> redis::RedisResult<Vec<AgentStatus>> {
    let all: HashMap<String, String> = conn.hgetall(redis_keys::AGENTS).await?;
    let read: HashMap<String, (String, Registration)> = all
        .into_values()
        .filter_map(|j| {
            let r: Registration = serde_json::from_str(&j).ok()?;
            Some((r.id.clone(), (j, r)))
        })
        .collect();
    let regs: Vec<Registration> = read.values().map(|(_, r)| r.clone()).collect();
    let fresh = read_statuses(conn, regs).await?;
    for Read {
        status: s,
        problems,
    } in &fresh
    {
        let Some((json, reg)) = read.get(&s.id) else {
            continue;
        };
        let new = s.online && reg.last_seen < s.last_seen;
        // Logged once per new heartbeat (an unreadable one: every round, as it stays).
        if new || !s.online {
            for p in problems {
                tracing::warn!(agent = %s.id, "heartbeat refused or clamped: {p}");
            }
        }
        if !new {
            continue;
        }
        let updated = Registration {
            last_seen: s.last_seen,
            last_facts: s.facts.clone(),
            ..reg.clone()
        };
        replace_registration(conn, &s.id, json, Some(&updated)).await?;
    }
    Ok(fresh.into_iter().map(|r| r.status).collect())
}

/// Replaces an agent's labels, by compare-and-swap against the heartbeat recorder and other
/// writers, and records it in the audit log.
pub async fn set_labels(
    conn: &mut RedisConn,
    id: &str,
    labels: &Labels,
    actor: lifecycle::Actor<'_>,
) -> Result<()> {
    outfitter_contract::labels::check_labels(labels)?;
    for _ in 0..error::CAS_TRIES {
        let Some((json, reg)) = registration_raw(conn, id).await? else {
            return Err(keys::not_registered(id));
        };
        let updated = Registration {
            labels: labels.clone(),
            ..reg
        };
        if replace_registration(conn, id, &json, Some(&updated)).await? {
            let detail = outfitter_contract::labels::labels_text(labels);
            crate::audit::record(conn, actor.who, "agent.label", id, actor.from, &detail).await;
            return Ok(());
        }
    }
    Err(Error::Contended(id.to_owned()))
}

/// Whether one agent can take jobs of one app, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AgentFit {
    pub id: String,
    pub online: bool,
    /// Online and meeting every requirement.
    pub eligible: bool,
    /// Why not, for people.
    pub reason: Option<String>,
}

/// How each agent fits an app: online ones are checked against the requirements of the
/// host and against the apps the manifest `requires` (`standing`: the apps standing on each
/// server, from `installations::dependencies::standing_by_agent`); offline ones are not
/// offered.
pub fn fits(
    manifest: &outfitter_contract::manifest::Manifest,
    agents: &[AgentStatus],
    standing: &HashMap<String, std::collections::BTreeSet<String>>,
) -> Vec<AgentFit> {
    let none = std::collections::BTreeSet::new();
    agents
        .iter()
        .map(|a| {
            let here: std::collections::BTreeSet<&str> = standing
                .get(&a.id)
                .unwrap_or(&none)
                .iter()
                .map(String::as_str)
                .collect();
            let missing = outfitter_contract::dependencies::missing(manifest, &here);
            let reason = match (&a.facts, a.online) {
                (_, false) => Some("offline".to_owned()),
                (None, true) => Some("no host facts yet".to_owned()),
                (Some(facts), true) => outfitter_contract::requirements::check(facts, manifest)
                    .err()
                    .map(|u| u.to_string())
                    .or_else(|| {
                        (!missing.is_empty())
                            .then(|| format!("needs {} installed first", missing.join(" and ")))
                    }),
            };
            AgentFit {
                id: a.id.clone(),
                online: a.online,
                eligible: reason.is_none(),
                reason,
            }
        })
        .collect()
}

/// The runner's configuration for one agent (TOML): what `agent add` prints.
pub fn runner_config(
    agent_id: &str,
    agent_key_hex: &str,
    redis_url: &str,
    cluster: bool,
) -> String {
    let mut t = toml::Table::new();
    t.insert("agent_id".into(), toml::Value::String(agent_id.to_owned()));
    t.insert(
        "agent_key".into(),
        toml::Value::String(agent_key_hex.to_owned()),
    );
    t.insert(
        "redis_url".into(),
        toml::Value::String(redis_url.to_owned()),
    );
    if cluster {
        t.insert("redis_cluster".into(), toml::Value::Boolean(true));
    }
    toml::to_string(&t).expect("a table of strings and a boolean serializes")
}
