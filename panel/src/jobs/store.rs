//! Reading jobs: one by id, and pages of the job list with filters.

use std::collections::HashMap;

use outfitter_contract::ids;
use outfitter_contract::job::{JobRecord, JobState};
use outfitter_contract::redis_keys::{self, AgentRedisKeys};
use outfitter_redis::RedisConn;
use redis::AsyncCommands;

use super::error::{Error, Result};

/// Most jobs one page may hold.
pub const MAX_PAGE: usize = 200;
/// Page size when none is asked for.
pub const DEFAULT_PAGE: usize = 50;
/// Most index entries one list request looks at; a sparse filter returns a cursor instead.
const MAX_SCANNED: usize = 5_000;
const BATCH: usize = 200;

/// Checks a job id from a path or a cursor.
pub fn check_job_id(id: &str) -> Result<()> {
    ids::validate_job_id(id).map_err(|e| Error::InvalidParameter(e.to_string()))
}

/// The agent a job belongs to.
pub async fn agent_of(conn: &mut RedisConn, job_id: &str) -> Result<String> {
    check_job_id(job_id)?;
    let agent: Option<String> = conn.hget(redis_keys::JOB_AGENT, job_id).await?;
    agent.ok_or_else(|| Error::JobNotFound(job_id.to_owned()))
}

/// One job.
pub async fn load(conn: &mut RedisConn, job_id: &str) -> Result<JobRecord> {
    let agent = agent_of(conn, job_id).await?;
    let fields: HashMap<String, String> = conn
        .hgetall(AgentRedisKeys::new(&agent).job(job_id))
        .await?;
    if fields.is_empty() {
        return Err(Error::JobNotFound(job_id.to_owned()));
    }
    Ok(JobRecord::from_fields(&fields)?)
}

/// Which jobs a list shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub state: Option<JobState>,
    pub app_id: Option<String>,
    pub agent_id: Option<String>,
}

impl Filter {
    fn matches(&self, r: &JobRecord) -> bool {
        self.state.is_none_or(|s| s == r.state)
            && self.app_id.as_deref().is_none_or(|a| a == r.app_id)
            && self.agent_id.as_deref().is_none_or(|a| a == r.agent_id)
    }
}

/// One page of jobs, newest first, and the cursor of the next page.
#[derive(Debug, Clone)]
pub struct Page {
    pub jobs: Vec<JobRecord>,
    /// Pass as `before` to get the next page; `None` at the end.
    pub next: Option<String>,
}

/// Jobs created before the job `before` (newest first) that match `filter`.
pub async fn list(
    conn: &mut RedisConn,
    filter: &Filter,
    before: Option<&str>,
    limit: usize,
) -> Result<Page> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut start: isize = match before {
        None => 0,
        Some(id) => {
            check_job_id(id)?;
            let rank: Option<isize> = conn.zrevrank(redis_keys::JOBS_INDEX, id).await?;
            rank.map(|r| r + 1).ok_or_else(|| {
                Error::JobNotFound(format!("cursor {id} is not a listed job (deleted?)"))
            })?
        }
    };
    let mut jobs = Vec::new();
    let mut scanned = 0usize;
    loop {
        let ids: Vec<String> = conn
            .zrevrange(redis_keys::JOBS_INDEX, start, start + BATCH as isize - 1)
            .await?;
        if ids.is_empty() {
            return Ok(Page { jobs, next: None });
        }
        let agents: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(redis_keys::JOB_AGENT)
            .arg(&ids)
            .query_async(conn)
            .await?;
        let mut pipe = redis::pipe();
        let mut wanted = Vec::new();
        for (id, agent) in ids.iter().zip(&agents) {
            let Some(agent) = agent else { continue };
            if filter.agent_id.as_deref().is_some_and(|a| a != agent) {
                continue;
            }
            pipe.hgetall(AgentRedisKeys::new(agent).job(id));
            wanted.push(id.clone());
        }
        let records: Vec<HashMap<String, String>> = if wanted.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(conn).await?
        };
        for (id, fields) in wanted.iter().zip(records) {
            let Ok(rec) = JobRecord::from_fields(&fields) else {
                continue;
            };
            if filter.matches(&rec) {
                jobs.push(rec);
                if jobs.len() == limit {
                    return Ok(Page {
                        jobs,
                        next: Some(id.clone()),
                    });
                }
            }
        }
        scanned += ids.len();
        start += ids.len() as isize;
        if ids.len() < BATCH {
            return Ok(Page { jobs, next: None });
        }
        if scanned >= MAX_SCANNED {
            // A sparse filter: hand back what we have and where to go on.
            return Ok(Page {
                jobs,
                next: ids.last().cloned(),
            });
        }
    }
}
