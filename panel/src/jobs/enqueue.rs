//! Enqueueing a job: validate, seal the secrets for the agent, sign, and push in one script.

use std::collections::BTreeMap;
use std::time::Duration;

use outfitter_contract::envelope::{ENVELOPE_VERSION, Envelope};
use outfitter_contract::event::Event;
use outfitter_contract::ids;
use outfitter_contract::job::{JobRecord, JobState, REDACTED, field};
use outfitter_contract::manifest::{Bundle, Manifest};
use outfitter_contract::redis_keys::{self, AgentKeys};
use outfitter_contract::{requirements, seal};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::agents;
use crate::clock::now_ms;
use crate::error::{ApiError, ApiResult, Code, FieldProblem};
use crate::scripts;
use crate::state::AppState;

use super::store;

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_TTL_SECS: u64 = 86_400;
/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// What a caller asks for.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJob {
    #[schema(value_type = crate::http::openapi::schemas::AppId)]
    pub app_id: String,
    #[schema(value_type = crate::http::openapi::schemas::AgentId)]
    pub agent_id: String,
    /// Input values by name (see `GET /apps/{id}/schema`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
}

/// Who enqueues, for the record and the idempotency scope.
#[derive(Debug, Clone)]
pub struct Actor<'a> {
    pub name: &'a str,
}

/// The result: the job, and whether it was created by an earlier request with the same key.
#[derive(Debug)]
pub struct Enqueued {
    pub job: JobRecord,
    pub replayed: bool,
}

/// Checks an `Idempotency-Key` header value.
pub fn check_idempotency_key(key: &str) -> ApiResult<()> {
    let ok = !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            Code::InvalidParameter,
            format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters of A-Z a-z 0-9 . _ : -"
            ),
        ))
    }
}

fn id_problem(field: &str, e: ids::InvalidId) -> FieldProblem {
    FieldProblem {
        field: field.to_owned(),
        rule: "id".into(),
        message: e.to_string(),
    }
}

/// Checks the ids of a request and finds the app; 422 for malformed ids, 404 for unknown ones.
pub async fn resolve_target<'c>(
    state: &AppState,
    catalog: &'c crate::catalog_view::Offered,
    app_id: &str,
    agent_id: &str,
) -> ApiResult<&'c Bundle> {
    let mut problems = Vec::new();
    if let Err(e) = ids::validate_app_id(app_id) {
        problems.push(id_problem("app_id", e));
    }
    if let Err(e) = ids::validate_agent_id(agent_id) {
        problems.push(id_problem("agent_id", e));
    }
    if !problems.is_empty() {
        return Err(ApiError::fields(problems));
    }
    let bundle = catalog.get(app_id).ok_or_else(|| {
        ApiError::new(
            Code::AppNotFound,
            format!("no app {app_id:?} in the catalog"),
        )
    })?;
    let mut conn = state.redis.clone();
    if !agents::exists(&mut conn, agent_id).await? {
        return Err(ApiError::new(
            Code::AgentNotFound,
            format!(
                "no registered agent {agent_id:?} (register it with `outfitter-panel agent add {agent_id}`)"
            ),
        ));
    }
    Ok(bundle)
}

/// Refuses an agent that does not meet the app's requirements (live heartbeat, or the last
/// one seen when it is offline: the job then waits in its queue until it expires).
pub async fn check_requirements(
    state: &AppState,
    manifest: &Manifest,
    agent_id: &str,
) -> ApiResult<()> {
    let mut conn = state.redis.clone();
    let facts = match agents::heartbeat(&mut conn, agent_id).await? {
        Some(f) => f,
        None => agents::registration(&mut conn, agent_id)
            .await?
            .and_then(|r| r.last_facts)
            .ok_or_else(|| {
                ApiError::new(
                    Code::AgentNeverSeen,
                    format!(
                        "agent {agent_id:?} has never sent a heartbeat; start its runner first"
                    ),
                )
            })?,
    };
    requirements::check(&facts, manifest).map_err(|unmet| {
        ApiError::new(
            Code::RequirementsNotMet,
            format!("agent {agent_id:?} cannot run {}: it {unmet}", manifest.id),
        )
    })
}

/// Input values with every sensitive one replaced by [`REDACTED`].
pub fn redacted(manifest: &Manifest, values: &Map<String, Value>) -> Map<String, Value> {
    values
        .iter()
        .map(|(k, v)| {
            let secret = manifest.input(k).is_some_and(|i| i.is_sensitive());
            (
                k.clone(),
                if secret {
                    Value::String(REDACTED.into())
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

/// What an idempotent replay must match: the target and the non-secret inputs.
fn fingerprint(req: &NewJob, manifest: &Manifest) -> String {
    let canonical = serde_json::json!({
        "app_id": req.app_id,
        "agent_id": req.agent_id,
        "inputs": redacted(manifest, &req.inputs),
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

#[derive(Serialize, Deserialize)]
struct IdempotencyEntry {
    job_id: String,
    fingerprint: String,
}

/// Validates, seals, signs and enqueues a job.
pub async fn enqueue(
    state: &AppState,
    req: &NewJob,
    actor: Actor<'_>,
    idempotency_key: Option<&str>,
) -> ApiResult<Enqueued> {
    if let Some(k) = idempotency_key {
        check_idempotency_key(k)?;
    }
    let catalog = state.catalog.current();
    let bundle = resolve_target(state, &catalog, &req.app_id, &req.agent_id).await?;
    let manifest = &bundle.manifest;
    let mut conn = state.redis.clone();

    let idem = idempotency_key.map(|k| {
        (
            redis_keys::idempotency(actor.name, k),
            fingerprint(req, manifest),
        )
    });
    if let Some((key, fp)) = &idem
        && let Some(existing) = replay(state, key, fp).await?
    {
        return Ok(existing);
    }

    check_requirements(state, manifest, &req.agent_id).await?;
    let values = bundle.validate_inputs(&req.inputs).map_err(|errors| {
        ApiError::fields(
            errors
                .into_iter()
                .map(|e| FieldProblem {
                    field: e.field,
                    rule: e.rule.to_owned(),
                    message: e.message,
                })
                .collect(),
        )
    })?;

    let job_id = ids::new_job_id();
    if let Some((key, fp)) = &idem {
        let entry = serde_json::to_string(&IdempotencyEntry {
            job_id: job_id.clone(),
            fingerprint: fp.clone(),
        })
        .expect("serializes");
        let reserved: bool = redis::cmd("SET")
            .arg(key)
            .arg(entry)
            .arg("NX")
            .arg("EX")
            .arg(IDEMPOTENCY_TTL_SECS)
            .query_async::<Option<String>>(&mut conn)
            .await?
            .is_some();
        if !reserved && let Some(existing) = replay(state, key, fp).await? {
            return Ok(existing);
        }
    }

    let result = push(state, bundle, &req.agent_id, &job_id, values.0, actor).await;
    if result.is_err()
        && let Some((key, _)) = &idem
    {
        let _: Result<(), _> = conn.del(key).await;
    }
    result.map(|job| Enqueued {
        job,
        replayed: false,
    })
}

/// The job an earlier request with this key created, if any.
async fn replay(state: &AppState, key: &str, fp: &str) -> ApiResult<Option<Enqueued>> {
    let mut conn = state.redis.clone();
    let Some(json): Option<String> = conn.get(key).await? else {
        return Ok(None);
    };
    let entry: IdempotencyEntry = serde_json::from_str(&json)
        .map_err(|e| ApiError::new(Code::Internal, format!("idempotency entry is corrupt: {e}")))?;
    if entry.fingerprint != fp {
        return Err(ApiError::new(
            Code::IdempotencyKeyReused,
            "this Idempotency-Key was used for a different request",
        ));
    }
    // The first request may still be between reserving the key and writing the job.
    for _ in 0..40 {
        match store::load(&mut conn, &entry.job_id).await {
            Ok(job) => {
                return Ok(Some(Enqueued {
                    job,
                    replayed: true,
                }));
            }
            Err(e) if e.code == Code::JobNotFound => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::new(
        Code::IdempotencyKeyReused,
        "a request with this Idempotency-Key is still being processed; try again",
    ))
}

/// Seals, signs and writes the job.
async fn push(
    state: &AppState,
    bundle: &Bundle,
    agent_id: &str,
    job_id: &str,
    values: BTreeMap<String, Value>,
    actor: Actor<'_>,
) -> ApiResult<JobRecord> {
    let manifest = &bundle.manifest;
    let (secret, plain): (BTreeMap<_, _>, BTreeMap<_, _>) = values
        .into_iter()
        .partition(|(k, _)| manifest.input(k).is_some_and(|i| i.is_sensitive()));
    let keys = {
        let mut conn = state.redis.clone();
        crate::agents::keys::load(&mut conn, &state.secret, agent_id)
            .await?
            .working
    };
    let sealed_inputs = if secret.is_empty() {
        None
    } else {
        Some(
            seal::seal(&keys.sealing, job_id, &secret)
                .map_err(|e| ApiError::new(Code::Internal, e.to_string()))?,
        )
    };
    let now = now_ms();
    let issued_at = now / 1000;
    let envelope = Envelope {
        v: ENVELOPE_VERSION,
        job_id: job_id.to_owned(),
        agent_id: agent_id.to_owned(),
        app_id: manifest.id.clone(),
        app_version: manifest.version.clone(),
        bundle_digest: bundle.digest.clone(),
        inputs: plain.clone(),
        sealed_inputs,
        issued_at,
        expires_at: issued_at + state.settings.queue_ttl_secs as i64,
        attempt: 1,
    };
    let wire = envelope.sign(&keys.signing).to_wire();

    let mut shown: Map<String, Value> = plain.into_iter().collect();
    for name in secret.keys() {
        shown.insert(name.clone(), Value::String(REDACTED.into()));
    }
    let inputs_json = Value::Object(shown.clone()).to_string();
    let max_attempts = manifest.effective_retry().max_attempts;
    let record: Vec<(&str, String)> = vec![
        (field::ID, job_id.to_owned()),
        (field::APP_ID, manifest.id.clone()),
        (field::APP_VERSION, manifest.version.clone()),
        (field::AGENT_ID, agent_id.to_owned()),
        (field::STATE, JobState::Queued.as_str().to_owned()),
        (field::ATTEMPTS, "0".into()),
        (field::MAX_ATTEMPTS, max_attempts.to_string()),
        (field::PROGRESS, "0".into()),
        (field::CREATED_AT, now.to_string()),
        (field::INPUTS, inputs_json),
        (field::SIGNED, wire.clone()),
        (field::CREATED_BY, actor.name.to_owned()),
        (field::CANCEL_REQUESTED, "0".into()),
    ];

    // Index first: a crash between the two steps leaves an index entry without a record
    // (skipped by listings), never a queued job that cannot be found by its id.
    let mut conn = state.redis.clone();
    let _: () = redis::pipe()
        .zadd(redis_keys::JOBS_INDEX, job_id, now)
        .hset(redis_keys::JOB_AGENT, job_id, agent_id)
        .query_async(&mut conn)
        .await?;

    let keys = AgentKeys::new(agent_id);
    let event = Event::state(now, 1, JobState::Queued, None, None);
    let mut inv = scripts::ENQUEUE.prepare_invoke();
    inv.key(keys.job(job_id))
        .key(keys.job_events(job_id))
        .key(keys.queue())
        .arg(keys.job_channel(job_id))
        .arg(event.to_unsequenced_json())
        .arg(&wire)
        .arg(field::SEQ);
    for (k, v) in &record {
        inv.arg(*k).arg(v);
    }
    if let Err(e) = inv.invoke_async::<u64>(&mut conn).await {
        let _: Result<(), _> = redis::pipe()
            .zrem(redis_keys::JOBS_INDEX, job_id)
            .hdel(redis_keys::JOB_AGENT, job_id)
            .query_async(&mut conn)
            .await;
        return Err(e.into());
    }
    state.metrics.job_created(&manifest.id);
    Ok(JobRecord {
        id: job_id.to_owned(),
        app_id: manifest.id.clone(),
        app_version: manifest.version.clone(),
        agent_id: agent_id.to_owned(),
        state: JobState::Queued,
        attempts: 0,
        max_attempts,
        exit_code: None,
        progress: 0,
        progress_message: None,
        created_at: now,
        started_at: None,
        finished_at: None,
        next_attempt_at: None,
        reason: None,
        inputs: Value::Object(shown),
        created_by: Some(actor.name.to_owned()),
        cancel_requested: false,
        last_lines: Vec::new(),
        survivors: Vec::new(),
    })
}
