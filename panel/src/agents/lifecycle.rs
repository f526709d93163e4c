//! Changing a registered agent: rotating its key (one generation up) and removing it. The
//! command line and the API both call these, and each records itself in the audit log, so
//! the two surfaces cannot drift apart.

use std::collections::BTreeSet;

use outfitter_contract::envelope::SignedJob;
use outfitter_contract::ids::validate_job_id;
use outfitter_contract::job::{JobState, field};
use outfitter_contract::keys::PanelSecret;
use outfitter_contract::redis_keys::{self, AgentRedisKeys};
use outfitter_redis::RedisConn;
use redis::AsyncCommands;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{CAS_TRIES, Error, Result};
use super::keys::{GenerationKeys, not_registered};
use super::{Registration, Retired, registration_raw, replace_registration};
use crate::audit;
use crate::jobs::{self, control};

/// Entries read from a queue per round trip.
const PAGE: isize = 500;

/// Who acts, for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// Token name, or `cli:<user>`.
    pub who: &'a str,
    /// Peer address, or `local`.
    pub from: &'a str,
}

/// An agent's unfinished jobs, by the state of their records (job ids, oldest first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct WaitingJobs {
    /// In its queue, not taken by the runner yet.
    pub queued: Vec<String>,
    /// Automatic retries waiting for their time (signed by the runner).
    pub retrying: Vec<String>,
    /// Taken by the runner and not finished.
    pub running: Vec<String>,
}

impl WaitingJobs {
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.retrying.is_empty() && self.running.is_empty()
    }

    fn summary(&self) -> String {
        format!(
            "{} queued, {} retrying and {} running",
            self.queued.len(),
            self.retrying.len(),
            self.running.len()
        )
    }
}

/// Job ids named by the signed jobs in one list or sorted set (`zset` true), oldest first.
/// Ids are read unverified: they only say which records to look at, and only this agent's
/// records are looked at.
async fn job_ids_in(
    conn: &mut RedisConn,
    key: &str,
    zset: bool,
) -> redis::RedisResult<Vec<String>> {
    let mut ids = Vec::new();
    let mut start: isize = 0;
    loop {
        let wires: Vec<String> = if zset {
            conn.zrange(key, start, start + PAGE - 1).await?
        } else {
            // Lists are pushed on the left and consumed from the right: read right to left.
            conn.lrange(key, -(start + PAGE), -(start + 1)).await?
        };
        let n = wires.len();
        let page = wires.into_iter().filter_map(|w| {
            SignedJob::from_wire(&w)
                .ok()?
                .unverified_ids()
                .map(|(job, _)| job)
                .filter(|j| validate_job_id(j).is_ok())
        });
        if zset {
            ids.extend(page);
        } else {
            let mut page: Vec<String> = page.collect();
            page.reverse();
            ids.extend(page);
        }
        if n < PAGE as usize {
            return Ok(ids);
        }
        start += PAGE;
    }
}

/// The unfinished jobs of an agent: every job its queue, its scheduled retries and its
/// processing list name, classified by the state of its record.
pub async fn waiting_jobs(conn: &mut RedisConn, agent_id: &str) -> redis::RedisResult<WaitingJobs> {
    let k = AgentRedisKeys::new(agent_id);
    let mut ids = job_ids_in(conn, &k.processing(), false).await?;
    ids.extend(job_ids_in(conn, &k.queue(), false).await?);
    ids.extend(job_ids_in(conn, &k.scheduled(), true).await?);
    let mut seen = BTreeSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    let mut out = WaitingJobs::default();
    for chunk in ids.chunks(PAGE as usize) {
        let mut pipe = redis::pipe();
        for id in chunk {
            pipe.hget(k.job(id), field::STATE);
        }
        let states: Vec<Option<String>> = pipe.query_async(conn).await?;
        for (id, state) in chunk.iter().zip(states) {
            match state.as_deref().and_then(|s| s.parse::<JobState>().ok()) {
                Some(JobState::Queued) => out.queued.push(id.clone()),
                Some(JobState::Retrying) => out.retrying.push(id.clone()),
                Some(JobState::Running) => out.running.push(id.clone()),
                _ => {}
            }
        }
    }
    Ok(out)
}

/// What a key rotation did.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The new current keys.
    pub keys: GenerationKeys,
    /// The agent's unfinished jobs at the moment of the rotation.
    pub waiting: WaitingJobs,
}

impl Rotation {
    /// What happens now, for the operator: the exact consequences for the agent's jobs.
    pub fn notice(&self) -> String {
        let id = &self.keys.agent_id;
        let w = &self.waiting;
        let mut out = format!(
            "Agent {id} now has key generation {}. Install the new configuration on its server and \
             restart outfitter-runner. From now on the panel signs every new job and every retry \
             with the new key; a runner still on the old key rejects those as forged.\n",
            self.keys.generation
        );
        if !w.queued.is_empty() {
            out += &format!(
                "{} queued job(s) were signed with the old key. Once the runner has the new key it \
                 rejects each as forged (state `rejected`, reason \"signature does not verify with \
                 this agent's key\"). Retry them (POST /api/v1/jobs/<id>/retry, or Retry on the \
                 job's page): a retry is signed, and its secrets sealed, with the new key. Jobs: {}\n",
                w.queued.len(),
                w.queued.join(" ")
            );
        }
        if !w.retrying.is_empty() {
            out += &format!(
                "{} automatic retry(ies) wait, signed by the runner with the old key. Once the \
                 runner has the new key it rejects each as forged when it falls due (state \
                 `rejected`); retry them then, and the retry is signed with the new key: {}\n",
                w.retrying.len(),
                w.retrying.join(" ")
            );
        }
        if !w.running.is_empty() {
            out += &format!(
                "{} running job(s) were checked when the runner took them; the rotation does not \
                 stop them: {}\n",
                w.running.len(),
                w.running.join(" ")
            );
        }
        out
    }
}

fn exhausted(agent_id: &str) -> Error {
    Error::KeysExhausted(agent_id.to_owned())
}

fn contended(agent_id: &str) -> Error {
    Error::Contended(agent_id.to_owned())
}

/// Gives an agent a new key (the next generation) and returns it. Jobs already signed keep
/// the old signature (see [`Rotation::notice`]).
pub async fn rotate(
    conn: &mut RedisConn,
    secret: &PanelSecret,
    agent_id: &str,
    actor: Actor<'_>,
) -> Result<Rotation> {
    for _ in 0..CAS_TRIES {
        let (json, reg) = registration_raw(conn, agent_id)
            .await?
            .ok_or_else(|| not_registered(agent_id))?;
        let next = reg
            .key_generation
            .checked_add(1)
            .ok_or_else(|| exhausted(agent_id))?;
        let redis_user = reg.redis_user;
        let updated = Registration {
            key_generation: next,
            ..reg
        };
        if !replace_registration(conn, agent_id, &json, Some(&updated)).await? {
            continue;
        }
        let keys = GenerationKeys::derive(secret, agent_id, next).with_redis_user(redis_user);
        if redis_user {
            // The old password stops working now: the runner needs its new configuration.
            super::redis_user::apply(conn, &keys).await?;
        }
        let waiting = waiting_jobs(conn, agent_id).await?;
        let detail = format!("key generation {next}; at rotation: {}", waiting.summary());
        audit::record(
            conn,
            actor.who,
            "agent.rotate",
            agent_id,
            actor.from,
            &detail,
        )
        .await;
        return Ok(Rotation { keys, waiting });
    }
    Err(contended(agent_id))
}

/// What a removal did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Removal {
    #[schema(example = "web-1")]
    pub agent_id: String,
    /// The key generation it had; registering the id again starts past it.
    pub key_generation: u32,
    /// Jobs that were waiting and now are `canceled` (only with force).
    pub canceled: Vec<String>,
    /// Jobs its runner had taken: they run on and report as usual.
    pub still_running: Vec<String>,
}

/// Unregisters an agent. With unfinished jobs it refuses (`agent_busy`) unless `force`; with
/// `force`, jobs still waiting (queued or automatic retries) end `canceled` with a reason and
/// running ones are left to finish. Job history stays; the runner is not stopped (that is
/// done on its server).
pub async fn remove(
    conn: &mut RedisConn,
    agent_id: &str,
    force: bool,
    now_ms: i64,
    actor: Actor<'_>,
) -> Result<Removal> {
    let mut removed = None;
    for _ in 0..CAS_TRIES {
        let (json, reg) = registration_raw(conn, agent_id)
            .await?
            .ok_or_else(|| not_registered(agent_id))?;
        let waiting = waiting_jobs(conn, agent_id).await?;
        if !force && !waiting.is_empty() {
            return Err(Error::Busy(format!(
                "agent {agent_id} has {} job(s); let them finish or cancel them, or remove it \
                     with force (`agent remove --force`, `DELETE /api/v1/agents/{agent_id}?force=true`): \
                     waiting jobs are then canceled and running ones finish",
                waiting.summary()
            )));
        }
        // Remember the generation first: a crash between the two steps leaves the agent
        // registered, never a removed id whose next registration would reuse a key.
        let retired = Retired {
            key_generation: reg.key_generation,
            removed_at: now_ms,
            removed_by: actor.who.to_owned(),
        };
        let retired_json = serde_json::to_string(&retired).expect("retirements serialize");
        let _: i64 = conn
            .hset(redis_keys::RETIRED_AGENTS, agent_id, retired_json)
            .await?;
        if replace_registration(conn, agent_id, &json, None).await? {
            removed = Some((reg.key_generation, reg.redis_user, waiting));
            break;
        }
    }
    let (key_generation, redis_user, waiting) = removed.ok_or_else(|| contended(agent_id))?;
    if redis_user {
        // Its runner's own Redis user goes at once: that server reaches nothing any more.
        super::redis_user::delete(conn, agent_id).await?;
    }
    // Its metrics history goes with it (a runner still beating would write a bounded new one).
    let history = outfitter_contract::metrics_history::keys(&AgentRedisKeys::new(agent_id));
    let _: i64 = conn.del(&history).await?;
    // So do its attention conditions: a removed server needs nobody.
    let _: i64 = conn.hdel(redis_keys::ATTENTION, agent_id).await?;
    let reason = format!(
        "canceled before it started: agent {agent_id} was removed by {}",
        actor.who
    );
    let mut canceled = Vec::new();
    let mut still_running = waiting.running;
    for job in waiting.queued.into_iter().chain(waiting.retrying) {
        match control::cancel_waiting(conn, &job, &reason).await {
            Ok(true) => canceled.push(job),
            Ok(false) => still_running.push(job),
            // Finished or gone meanwhile: nothing left to cancel.
            Err(jobs::Error::NotCancelable(_) | jobs::Error::JobNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let detail = format!(
        "{}key generation {key_generation}; canceled {} waiting job(s); {} still running",
        if force { "force; " } else { "" },
        canceled.len(),
        still_running.len()
    );
    audit::record(
        conn,
        actor.who,
        "agent.remove",
        agent_id,
        actor.from,
        &detail,
    )
    .await;
    Ok(Removal {
        agent_id: agent_id.to_owned(),
        key_generation,
        canceled,
        still_running,
    })
}
