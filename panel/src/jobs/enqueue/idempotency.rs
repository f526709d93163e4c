//! `Idempotency-Key`: a retried request gets the job the first one created.
//!
//! The key (per token) names the job id it was reserved for and a fingerprint of the
//! request. The job itself is written later by the enqueue script, which refuses a job id
//! that exists. So a request that finds the key reserved but no job yet *takes the
//! reservation over* and writes that job id itself: whichever writer comes second is told the
//! job exists and returns it. A panel killed between reserving and writing leaves nothing
//! stuck, and nobody has to wait for anybody.

use outfitter_contract::manifest::Manifest;
use outfitter_contract::redis_keys;
use outfitter_redis::RedisConn;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::request::{NewJob, redacted};
use crate::jobs::error::{Error, Result};
use crate::jobs::store;
use outfitter_contract::job::JobRecord;

/// How long an `Idempotency-Key` is remembered.
pub const TTL_SECS: u64 = 86_400;
/// Longest accepted `Idempotency-Key`.
pub const MAX_KEY_LEN: usize = 128;
/// Rounds of reserve-or-read before giving up (each is lost only to a key that expired or
/// was reserved in between).
const TRIES: usize = 3;

/// Checks an `Idempotency-Key` header value.
pub fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} characters of A-Z a-z 0-9 . _ : -"
        )))
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    job_id: String,
    fingerprint: String,
}

/// What a key says now.
pub enum Seen {
    /// Never used (or expired).
    Fresh,
    /// The job an earlier request created.
    Job(Box<JobRecord>),
    /// Reserved for this job id, which is not written (yet, or ever: its panel died).
    Unwritten(String),
}

/// Whose job id a request writes.
pub enum Claim {
    /// An earlier request's job: return it.
    Replay(Box<JobRecord>),
    /// Write the job with this id (reserved by this request, or taken over from one that
    /// did not finish).
    Write(String),
}

/// One request's key and fingerprint.
pub struct Idempotency {
    key: String,
    fingerprint: String,
}

impl Idempotency {
    /// A `key` (checked by [`check_key`]) of `token`. The fingerprint is what a replay must
    /// match: the target and the non-secret inputs.
    pub fn new(token: &str, key: &str, req: &NewJob, manifest: &Manifest) -> Self {
        let canonical = serde_json::json!({
            "app_id": req.app_id,
            "agent_id": req.agent_id,
            "inputs": redacted(manifest, &req.inputs),
            "instance": req.instance,
        });
        Self {
            key: redis_keys::idempotency(token, key),
            fingerprint: hex::encode(Sha256::digest(canonical.to_string().as_bytes())),
        }
    }

    /// What the key says; `idempotency_key_reused` if it was used for another request.
    pub async fn seen(&self, conn: &mut RedisConn) -> Result<Seen> {
        let Some(json): Option<String> = conn.get(&self.key).await? else {
            return Ok(Seen::Fresh);
        };
        let entry: Entry = serde_json::from_str(&json)
            .map_err(|e| Error::Internal(format!("idempotency entry is corrupt: {e}")))?;
        if entry.fingerprint != self.fingerprint {
            return Err(Error::IdempotencyKeyReused);
        }
        match store::load(conn, &entry.job_id).await {
            Ok(job) => Ok(Seen::Job(Box::new(job))),
            Err(Error::JobNotFound(_)) => Ok(Seen::Unwritten(entry.job_id)),
            Err(e) => Err(e),
        }
    }

    /// Reserves the key for `fresh`, or finds whose it is.
    pub async fn claim(&self, conn: &mut RedisConn, fresh: String) -> Result<Claim> {
        for _ in 0..TRIES {
            match self.seen(conn).await? {
                Seen::Job(job) => return Ok(Claim::Replay(job)),
                Seen::Unwritten(job_id) => return Ok(Claim::Write(job_id)),
                Seen::Fresh => {
                    if self.reserve(conn, &fresh).await? {
                        return Ok(Claim::Write(fresh));
                    }
                }
            }
        }
        Err(Error::Internal(format!(
            "Idempotency-Key {} changed {TRIES} times while it was being reserved",
            self.key
        )))
    }

    async fn reserve(&self, conn: &mut RedisConn, job_id: &str) -> Result<bool> {
        let entry = serde_json::to_string(&Entry {
            job_id: job_id.to_owned(),
            fingerprint: self.fingerprint.clone(),
        })
        .map_err(|e| Error::Internal(e.to_string()))?;
        let set: Option<String> = redis::cmd("SET")
            .arg(&self.key)
            .arg(entry)
            .arg("NX")
            .arg("EX")
            .arg(TTL_SECS)
            .query_async(conn)
            .await?;
        Ok(set.is_some())
    }
}
