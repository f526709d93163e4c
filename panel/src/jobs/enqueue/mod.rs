//! Enqueueing a job: check the target and the `Idempotency-Key`, validate the inputs, seal
//! the secrets for the agent, sign, and write in one script. Each step has its file:
//! [`request`], [`target`], [`idempotency`], [`sign`], [`write`].

pub mod idempotency;
pub mod request;
pub mod sign;
pub mod target;
pub mod write;

pub use request::{Enqueued, NewJob, Pinned, redacted};

use outfitter_contract::ids;

use self::idempotency::{Claim, Idempotency, Seen};
use self::write::Written;
use crate::auth::Caller;
use crate::clock::now_ms;
use crate::jobs::error::{Error, InvalidField, Result};
use crate::jobs::store;
use crate::state::AppState;
use crate::{audit, installations};

/// Validates, seals, signs and enqueues a job on behalf of `caller`, and records it in the
/// audit log. With an `idempotency_key`, a request seen before returns the first job.
pub async fn enqueue(
    state: &AppState,
    req: &NewJob,
    caller: &Caller,
    idempotency_key: Option<&str>,
) -> Result<Enqueued> {
    if let Some(k) = idempotency_key {
        idempotency::check_key(k)?;
    }
    let catalog = state.catalog.current();
    let (bundle, manifest, digest) = match &req.pinned {
        Some(p) => {
            target::check_ids(&req.app_id, &req.agent_id)?;
            target::check_agent(state, &req.agent_id).await?;
            (None, &p.manifest, p.digest.as_str())
        }
        None => {
            let b = target::resolve(state, &catalog, &req.app_id, &req.agent_id).await?;
            (Some(b), &b.manifest, b.digest.as_str())
        }
    };
    let mut conn = state.redis.clone();
    let idem = idempotency_key.map(|k| Idempotency::new(&caller.name, k, req, manifest));
    // A replay returns the first job before anything else is judged: the agent may be
    // offline by now.
    if let Some(i) = &idem
        && let Seen::Job(job) = i.seen(&mut conn).await?
    {
        return Ok(replayed(*job));
    }

    target::check_requirements(state, manifest, &req.agent_id).await?;
    let values = match bundle {
        Some(b) => b.validate_inputs(&req.inputs),
        None => outfitter_contract::inputs::validate_inputs(manifest, &req.inputs),
    }
    .map_err(|errors| {
        Error::InvalidFields(
            errors
                .into_iter()
                .map(|e| InvalidField {
                    field: e.field,
                    rule: e.rule.to_owned(),
                    message: e.message,
                })
                .collect(),
        )
    })?;

    let job_id = match &idem {
        None => ids::new_job_id(),
        Some(i) => match i.claim(&mut conn, ids::new_job_id()).await? {
            Claim::Replay(job) => return Ok(replayed(*job)),
            Claim::Write(job_id) => job_id,
        },
    };
    let now = now_ms();
    let order = installations::actions::begin(
        state, &mut conn, manifest, digest, req, &values.0, &job_id, caller, now,
    )
    .await?;
    let signed = sign::seal_and_sign(
        state,
        manifest,
        digest,
        &req.agent_id,
        &job_id,
        values.0,
        order,
        now,
    )
    .await?;
    let job = match write::write(
        state,
        manifest,
        &req.agent_id,
        &job_id,
        signed,
        &caller.name,
        now,
    )
    .await?
    {
        Written::Created(job) => *job,
        Written::Exists => return Ok(replayed(store::load(&mut conn, &job_id).await?)),
    };
    state.metrics.job_created(&manifest.id);
    audit::record(
        &mut conn,
        &caller.name,
        "job.create",
        &job.id,
        &caller.from,
        &match &job.lifecycle {
            Some(l) => format!(
                "app={} agent={} installation={} action={}",
                job.app_id, job.agent_id, l.installation_id, l.action
            ),
            None => format!("app={} agent={}", job.app_id, job.agent_id),
        },
    )
    .await;
    Ok(Enqueued {
        job,
        replayed: false,
    })
}

fn replayed(job: outfitter_contract::job::JobRecord) -> Enqueued {
    Enqueued {
        job,
        replayed: true,
    }
}
