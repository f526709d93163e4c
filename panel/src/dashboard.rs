//! How the fleet is doing, in numbers: what the dashboard (the page after sign-in) shows.
//! Everything is read from Redis at the time of the request, so every panel shows the same.

use std::collections::{BTreeMap, BTreeSet};

use outfitter_contract::clock::now_ms;
use outfitter_contract::installation::InstallationState;
use outfitter_contract::job::{JobState, field};
use outfitter_contract::redis_keys::{self, AgentRedisKeys};
use outfitter_redis::RedisConn;

use crate::agents;
use crate::installations::{self, store::Filter};
use crate::rollouts;
use crate::state::AppState;

/// What can keep the dashboard from being read: the store, or a record it cannot read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] redis::RedisError),
    #[error(transparent)]
    Installations(Box<installations::Error>),
    #[error(transparent)]
    Rollouts(Box<rollouts::Error>),
}

impl From<installations::Error> for Error {
    fn from(e: installations::Error) -> Self {
        Error::Installations(Box::new(e))
    }
}

impl From<rollouts::Error> for Error {
    fn from(e: rollouts::Error) -> Self {
        Error::Rollouts(Box::new(e))
    }
}

/// The window of "recent" failures.
pub const WINDOW_MS: i64 = 24 * 3_600_000;
/// Jobs read for the window at most; a busier day shows its newest jobs and says so.
pub const MAX_JOBS_READ: usize = 10_000;

/// The dashboard's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub servers: Servers,
    /// Jobs waiting in the servers' queues.
    pub queued: u64,
    /// Jobs runners have taken and not finished.
    pub running: u64,
    /// Retries waiting for their time.
    pub retrying: u64,
    /// Installations whose app has a newer version in the catalog.
    pub upgrades: Vec<Upgrade>,
    /// Failed jobs of the window by app and state, most first.
    pub failures: Vec<Failures>,
    /// Jobs created in the window (as read).
    pub jobs_in_window: u64,
    /// More jobs were created in the window than [`MAX_JOBS_READ`].
    pub window_truncated: bool,
    /// Rollouts the panels are driving now, newest first.
    pub rollouts: Vec<RolloutLine>,
}

/// Servers by what they need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Servers {
    pub total: u64,
    pub online: u64,
    pub offline: u64,
    /// See [`needs_attention`].
    pub attention: BTreeSet<String>,
}

/// How many jobs of one app ended in one failed state in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failures {
    pub app_id: String,
    pub state: JobState,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub installation_id: String,
    pub app_id: String,
    pub agent_id: String,
    pub version: String,
    pub available: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutLine {
    pub id: String,
    pub app_id: String,
    pub work: &'static str,
    pub state: &'static str,
    /// Servers whose part is over (succeeded, failed, skipped).
    pub done: usize,
    pub total: usize,
    pub failed: usize,
}

/// A job state that is a failure the user should see (not a cancel, not a retry on its way).
pub fn is_failure(s: JobState) -> bool {
    matches!(
        s,
        JobState::Failed
            | JobState::NeedsAttention
            | JobState::TimedOut
            | JobState::Rejected
            | JobState::Expired
            | JobState::Interrupted
    )
}

/// A server needs attention when one of the attention conditions is raised for it (disk,
/// memory, load, offline: [`agents::attention`]), when it is offline with jobs waiting for
/// it, or when one of its jobs in the window ended in `needs_attention` (its script asked
/// for a person).
pub fn needs_attention(a: &agents::AgentStatus, asked_for_a_person: &BTreeSet<String>) -> bool {
    !a.attention.is_empty()
        || (!a.online && a.queue_depth + a.processing > 0)
        || asked_for_a_person.contains(&a.id)
}

pub async fn summary(state: &AppState) -> Result<Summary, Error> {
    let mut conn = state.redis.clone();
    let now = now_ms();
    let servers = agents::list(&mut conn).await?;
    let window = recent_jobs(&mut conn, now - WINDOW_MS).await?;

    let mut failures: BTreeMap<(String, &'static str), (JobState, u64)> = BTreeMap::new();
    let mut asked: BTreeSet<String> = BTreeSet::new();
    for (agent, app, s) in &window.jobs {
        if is_failure(*s) {
            failures
                .entry((app.clone(), s.as_str()))
                .or_insert((*s, 0))
                .1 += 1;
        }
        if *s == JobState::NeedsAttention {
            asked.insert(agent.clone());
        }
    }
    let mut failures: Vec<Failures> = failures
        .into_iter()
        .map(|((app_id, _), (state, count))| Failures {
            app_id,
            state,
            count,
        })
        .collect();
    failures.sort_by_key(|f| std::cmp::Reverse(f.count));

    let mut sum = Summary {
        failures,
        jobs_in_window: window.jobs.len() as u64,
        window_truncated: window.truncated,
        ..Summary::default()
    };
    for a in &servers {
        sum.servers.total += 1;
        if a.online {
            sum.servers.online += 1;
        } else {
            sum.servers.offline += 1;
        }
        if needs_attention(a, &asked) {
            sum.servers.attention.insert(a.id.clone());
        }
        sum.queued += a.queue_depth;
        sum.running += a.processing;
        sum.retrying += a.scheduled;
    }

    let catalog = state.catalog.current();
    for i in installations::settle::list(&mut conn, &Filter::default()).await? {
        if i.state != InstallationState::Installed {
            continue;
        }
        if let Some(available) = installations::upgrade_available(&i, catalog.get(&i.app_id)) {
            sum.upgrades.push(Upgrade {
                installation_id: i.id,
                app_id: i.app_id,
                agent_id: i.agent_id,
                version: i.version,
                available,
            });
        }
    }

    for id in rollouts::store::active_ids(&mut conn).await? {
        // One gone between the two reads is simply not in progress any more.
        let Ok(r) = rollouts::store::load(&mut conn, &id).await else {
            continue;
        };
        let counts = r.counts();
        let n = |k: &str| counts.get(k).copied().unwrap_or(0);
        sum.rollouts.push(RolloutLine {
            done: n("succeeded") + n("failed") + n("skipped"),
            failed: n("failed"),
            total: r.targets.len(),
            state: r.state.as_str(),
            work: r.work.as_str(),
            app_id: r.app_id.clone(),
            id: r.id.clone(),
        });
    }
    sum.rollouts.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(sum)
}

struct Window {
    /// (agent, app, state) of each job created since the window's start.
    jobs: Vec<(String, String, JobState)>,
    truncated: bool,
}

/// The jobs created since `since`, newest first, three fields each, a page of ids at a time.
async fn recent_jobs(conn: &mut RedisConn, since: i64) -> redis::RedisResult<Window> {
    const PAGE: usize = 500;
    let mut out = Window {
        jobs: Vec::new(),
        truncated: false,
    };
    let mut offset = 0usize;
    loop {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(redis_keys::JOBS_INDEX)
            .arg("+inf")
            .arg(since)
            .arg("BYSCORE")
            .arg("REV")
            .arg("LIMIT")
            .arg(offset)
            .arg(PAGE)
            .query_async(conn)
            .await?;
        if ids.is_empty() {
            return Ok(out);
        }
        let owners: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(redis_keys::JOB_AGENT)
            .arg(&ids)
            .query_async(conn)
            .await?;
        let mut pipe = redis::pipe();
        let mut agents_of = Vec::new();
        for (id, agent) in ids.iter().zip(owners) {
            let Some(agent) = agent else { continue };
            pipe.cmd("HMGET")
                .arg(AgentRedisKeys::new(&agent).job(id))
                .arg(field::APP_ID)
                .arg(field::STATE);
            agents_of.push(agent);
        }
        let fields: Vec<(Option<String>, Option<String>)> = if agents_of.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(conn).await?
        };
        for (agent, (app, s)) in agents_of.into_iter().zip(fields) {
            let (Some(app), Some(Ok(s))) = (app, s.map(|s| s.parse::<JobState>())) else {
                continue;
            };
            out.jobs.push((agent, app, s));
        }
        offset += ids.len();
        if ids.len() < PAGE {
            return Ok(out);
        }
        if offset >= MAX_JOBS_READ {
            out.truncated = true;
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_the_states_a_person_must_look_at() {
        let failing: Vec<JobState> = JobState::ALL
            .into_iter()
            .filter(|s| is_failure(*s))
            .collect();
        assert_eq!(
            failing,
            [
                JobState::Failed,
                JobState::NeedsAttention,
                JobState::TimedOut,
                JobState::Interrupted,
                JobState::Rejected,
                JobState::Expired
            ]
        );
    }
}
