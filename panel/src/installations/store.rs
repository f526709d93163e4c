//! Reading and writing installations in Redis. Each installation lives under its agent's hash
//! tag (record, history, the instance index); the id → agent index and the listing index are
//! panel-wide, like the jobs'.

use std::collections::HashMap;

use outfitter_contract::redis_keys::{self, AgentRedisKeys};
use outfitter_redis::RedisConn;
use redis::AsyncCommands;

use super::error::{Error, Result};
use super::model::{HistoryEntry, Installation};

/// Most installations one listing reads.
pub const MAX_LISTED: usize = 1_000;
/// Most history entries an installation page shows.
pub const MAX_HISTORY: isize = 200;

/// Checks an installation id from a path: the job id form (UUIDv7).
pub fn check_id(id: &str) -> Result<()> {
    outfitter_contract::ids::validate_job_id(id)
        .map_err(|e| Error::InvalidParameter(format!("installation id: {e}")))
}

fn instance_field(app_id: &str, instance: &str) -> String {
    format!("{app_id}/{instance}")
}

/// The installation of `instance` of `app_id` on `agent_id`, if there is one.
pub async fn find_instance(
    conn: &mut RedisConn,
    agent_id: &str,
    app_id: &str,
    instance: &str,
) -> Result<Option<Installation>> {
    let names = AgentRedisKeys::new(agent_id);
    let id: Option<String> = conn
        .hget(names.instances(), instance_field(app_id, instance))
        .await?;
    match id {
        // An index entry without a record (a crash between the two writes) counts as free.
        Some(id) => load_on(conn, agent_id, &id).await,
        None => Ok(None),
    }
}

/// One installation by id.
pub async fn load(conn: &mut RedisConn, id: &str) -> Result<Installation> {
    check_id(id)?;
    let agent: Option<String> = conn.hget(redis_keys::INSTALLATION_AGENT, id).await?;
    let agent = agent.ok_or_else(|| Error::NotFound(id.to_owned()))?;
    load_on(conn, &agent, id)
        .await?
        .ok_or_else(|| Error::NotFound(id.to_owned()))
}

async fn load_on(conn: &mut RedisConn, agent_id: &str, id: &str) -> Result<Option<Installation>> {
    let (data, rev): (Option<String>, Option<u64>) =
        read_record(agent_id, id).query_async(conn).await?;
    parse_record(id, data, rev)
}

/// The command that reads an installation's record: its JSON and its revision.
fn read_record(agent_id: &str, id: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(AgentRedisKeys::new(agent_id).installation(id))
        .arg("data")
        .arg("rev");
    cmd
}

fn parse_record(id: &str, data: Option<String>, rev: Option<u64>) -> Result<Option<Installation>> {
    let Some(data) = data else { return Ok(None) };
    let mut inst: Installation = serde_json::from_str(&data)
        .map_err(|e| Error::Internal(format!("installation {id} does not parse: {e}")))?;
    inst.rev = rev.unwrap_or(0);
    Ok(Some(inst))
}

/// Writes `inst` if the stored revision is still `inst.rev`, with an optional history entry;
/// returns the new revision, or `None` when someone else wrote first.
pub async fn write(
    conn: &mut RedisConn,
    inst: &Installation,
    history: Option<&HistoryEntry>,
) -> Result<Option<u64>> {
    let names = AgentRedisKeys::new(&inst.agent_id);
    let key = names.installation(&inst.id);
    let history_key = names.installation_history(&inst.id);
    Ok(crate::record::write(conn, &key, &history_key, inst.rev, inst, history).await?)
}

/// Writes a new installation, then claims its instance and indexes it; `None` when another
/// installation holds the instance (a concurrent install won: ours is taken back). The record
/// comes first, so an instance is only ever claimed by a record that exists: a claim whose
/// record is missing was left by hand and is taken over.
pub async fn create(
    conn: &mut RedisConn,
    inst: &Installation,
    history: &HistoryEntry,
) -> Result<Option<u64>> {
    let names = AgentRedisKeys::new(&inst.agent_id);
    let Some(rev) = write(conn, inst, Some(history)).await? else {
        return Ok(None);
    };
    let field = instance_field(&inst.app_id, &inst.instance);
    let claimed: bool = conn.hset_nx(names.instances(), &field, &inst.id).await?;
    if !claimed {
        let holder: Option<String> = conn.hget(names.instances(), &field).await?;
        let alive = match holder {
            Some(h) => load_on(conn, &inst.agent_id, &h).await?.is_some(),
            None => false,
        };
        if alive {
            let _: () = redis::pipe()
                .del(names.installation(&inst.id))
                .del(names.installation_history(&inst.id))
                .query_async(conn)
                .await?;
            return Ok(None);
        }
        let _: () = conn.hset(names.instances(), &field, &inst.id).await?;
    }
    let _: () = redis::pipe()
        .zadd(redis_keys::INSTALLATIONS_INDEX, &inst.id, inst.created_at)
        .hset(redis_keys::INSTALLATION_AGENT, &inst.id, &inst.agent_id)
        .hset(redis_keys::INSTALLATION_APP, &inst.id, &inst.app_id)
        .zadd(
            redis_keys::installations_of_app(&inst.app_id),
            &inst.id,
            inst.created_at,
        )
        .query_async(conn)
        .await?;
    Ok(Some(rev))
}

/// Which installations a listing shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub agent_id: Option<String>,
    pub app_id: Option<String>,
    pub state: Option<outfitter_contract::installation::InstallationState>,
}

impl Filter {
    pub fn matches(&self, i: &Installation) -> bool {
        self.agent_id.as_deref().is_none_or(|a| a == i.agent_id)
            && self.app_id.as_deref().is_none_or(|a| a == i.app_id)
            && self.state.is_none_or(|s| s == i.state)
    }
}

/// Installations, newest first, at most [`MAX_LISTED`] looked at (unfiltered by state: the
/// caller settles them first, which may change it).
pub async fn list(conn: &mut RedisConn, filter: &Filter) -> Result<Vec<Installation>> {
    let of_app = match filter.app_id.as_deref() {
        Some(app_id) => ids_of_app(conn, app_id).await?,
        None => None,
    };
    let ids = match of_app {
        Some(ids) => ids,
        None => newest_ids(conn, redis_keys::INSTALLATIONS_INDEX).await?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let (agents, apps) = agents_and_apps(conn, &ids).await?;
    let wanted: Vec<(&String, String)> = ids
        .iter()
        .zip(agents.into_iter().zip(apps))
        .filter(|(_, (_, app))| {
            // No entry: made before the index; its record tells below.
            filter.app_id.is_none() || app.is_none() || *app == filter.app_id
        })
        .filter_map(|(id, (agent, _))| Some((id, agent?)))
        .filter(|(_, agent)| filter.agent_id.as_deref().is_none_or(|a| a == agent))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    // The records that are left, in one pipelined round trip.
    let mut pipe = redis::pipe();
    for (id, agent) in &wanted {
        pipe.add_command(read_record(agent, id));
    }
    let records: Vec<(Option<String>, Option<u64>)> = pipe.query_async(conn).await?;
    let mut out = Vec::new();
    for ((id, _), (data, rev)) in wanted.iter().zip(records) {
        if let Some(inst) = parse_record(id, data, rev)?
            && filter.app_id.as_deref().is_none_or(|a| a == inst.app_id)
        {
            out.push(inst);
        }
    }
    Ok(out)
}

/// The id → agent and id → app index entries of `ids` (`None` where an installation predates
/// the entry), in one round trip.
async fn agents_and_apps<S: redis::ToRedisArgs + Sync>(
    conn: &mut RedisConn,
    ids: &[S],
) -> Result<(Vec<Option<String>>, Vec<Option<String>>)> {
    Ok(redis::pipe()
        .cmd("HMGET")
        .arg(redis_keys::INSTALLATION_AGENT)
        .arg(ids)
        .cmd("HMGET")
        .arg(redis_keys::INSTALLATION_APP)
        .arg(ids)
        .query_async(conn)
        .await?)
}

async fn newest_ids(conn: &mut RedisConn, index: &str) -> Result<Vec<String>> {
    Ok(conn.zrevrange(index, 0, MAX_LISTED as isize - 1).await?)
}

/// The ids in the app's own index, newest first; `None` while installations made before that
/// index may still be missing from it ([`index_by_app`] has not finished yet).
async fn ids_of_app(conn: &mut RedisConn, app_id: &str) -> Result<Option<Vec<String>>> {
    let (ready, ids): (bool, Vec<String>) = redis::pipe()
        .exists(redis_keys::INSTALLATIONS_BY_APP_READY)
        .zrevrange(
            redis_keys::installations_of_app(app_id),
            0,
            MAX_LISTED as isize - 1,
        )
        .query_async(conn)
        .await?;
    Ok(ready.then_some(ids))
}

/// Installations read from the panel-wide index per round trip of [`index_by_app`].
const BACKFILL_CHUNK: usize = 500;

/// Puts every installation made before the per-app index into its app's set, once (then
/// marks the index complete). Installations made meanwhile index themselves, and a second
/// run adds nothing twice. Returns how many were looked at.
pub async fn index_by_app(conn: &mut RedisConn) -> Result<usize> {
    let ready: bool = conn.exists(redis_keys::INSTALLATIONS_BY_APP_READY).await?;
    if ready {
        return Ok(0);
    }
    let all: Vec<(String, i64)> = conn
        .zrange_withscores(redis_keys::INSTALLATIONS_INDEX, 0, -1)
        .await?;
    for chunk in all.chunks(BACKFILL_CHUNK) {
        index_chunk(conn, chunk).await?;
    }
    let _: () = conn.set(redis_keys::INSTALLATIONS_BY_APP_READY, 1).await?;
    Ok(all.len())
}

/// [`index_by_app`] for some (id, creation time) of the panel-wide index.
async fn index_chunk(conn: &mut RedisConn, chunk: &[(String, i64)]) -> Result<()> {
    let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
    let (agents, apps) = agents_and_apps(conn, &ids).await?;
    // Older still, without an app entry either: the record names the app.
    let unnamed: Vec<(&str, String)> = ids
        .iter()
        .zip(agents.into_iter().zip(&apps))
        .filter(|(_, (_, app))| app.is_none())
        .filter_map(|(id, (agent, _))| Some((*id, agent?)))
        .collect();
    let mut read = redis::pipe();
    for (id, agent) in &unnamed {
        read.add_command(read_record(agent, id));
    }
    let records: Vec<(Option<String>, Option<u64>)> = if unnamed.is_empty() {
        Vec::new()
    } else {
        read.query_async(conn).await?
    };
    let mut named: HashMap<&str, String> = HashMap::new();
    for ((id, _), (data, rev)) in unnamed.iter().zip(records) {
        if let Some(inst) = parse_record(id, data, rev)? {
            named.insert(id, inst.app_id);
        }
    }
    let mut write = redis::pipe();
    for ((id, created), app) in chunk.iter().zip(apps) {
        if let Some(app) = app.or_else(|| named.remove(id.as_str())) {
            write
                .zadd(redis_keys::installations_of_app(&app), id, *created)
                .ignore();
        }
    }
    let _: () = write.query_async(conn).await?;
    Ok(())
}

/// [`index_by_app`] at a panel's start, tried again until Redis answers.
pub async fn run_index_by_app(mut conn: RedisConn) {
    loop {
        match index_by_app(&mut conn).await {
            Ok(0) => return,
            Ok(n) => {
                tracing::info!(installations = n, "indexed the installations by app");
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "indexing the installations by app failed; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
        }
    }
}

/// The history of an installation, newest first.
pub async fn history(conn: &mut RedisConn, inst: &Installation) -> Result<Vec<HistoryEntry>> {
    let key = AgentRedisKeys::new(&inst.agent_id).installation_history(&inst.id);
    let raw: Vec<String> = conn.lrange(key, -MAX_HISTORY, -1).await?;
    Ok(raw
        .iter()
        .rev()
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect())
}

/// The raw fields of a job's record that settling reads; empty when the job does not exist.
pub async fn job_fields(
    conn: &mut RedisConn,
    agent_id: &str,
    job_id: &str,
) -> Result<HashMap<String, String>> {
    Ok(conn
        .hgetall(AgentRedisKeys::new(agent_id).job(job_id))
        .await?)
}

/// [`job_fields`] of several jobs (agent id, job id), in one pipelined round trip.
pub async fn jobs_fields(
    conn: &mut RedisConn,
    jobs: &[(&str, &str)],
) -> Result<Vec<HashMap<String, String>>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for (agent_id, job_id) in jobs {
        pipe.hgetall(AgentRedisKeys::new(agent_id).job(job_id));
    }
    Ok(pipe.query_async(conn).await?)
}

/// Notes an installation whose job the settler must look at.
pub async fn mark_pending(conn: &mut RedisConn, id: &str) -> Result<()> {
    let _: () = conn.sadd(redis_keys::INSTALLATIONS_PENDING, id).await?;
    Ok(())
}

/// The installations with a job not yet settled.
pub async fn pending_ids(conn: &mut RedisConn) -> Result<Vec<String>> {
    Ok(conn.smembers(redis_keys::INSTALLATIONS_PENDING).await?)
}

/// Takes an installation off the settler's set.
pub async fn unmark_pending(conn: &mut RedisConn, id: &str) -> Result<()> {
    let _: () = conn.srem(redis_keys::INSTALLATIONS_PENDING, id).await?;
    Ok(())
}
