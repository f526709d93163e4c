//! The checks a taken job passes before anything runs, in the order of docs/protocol.md:
//! size and shape → signature → agent → expiry → catalog and digest → sealed inputs →
//! inputs → lifecycle order, all without Redis; then one Redis step (`CLAIM_ATTEMPT`):
//! replay guard → cancel flag → `running`.

use std::sync::Arc;

use outfitter_contract::envelope::{Envelope, SignedJob};
use outfitter_contract::ids::validate_job_id;
use outfitter_contract::inputs::InputValues;
use outfitter_contract::job::JobState;
use outfitter_contract::manifest::Bundle;
use outfitter_contract::seal;
use serde_json::{Map, Value};

use super::{Shared, now_secs, store};

/// A job that passed every check.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub envelope: Envelope,
    pub bundle: Bundle,
    pub values: InputValues,
}

/// A refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The job id, when there is one to file the refusal under (unverified for forged jobs).
    pub job_hint: Option<String>,
    /// Whether the signature verified (a verified refusal may update the job record).
    pub verified: bool,
    /// `rejected` or `expired`.
    pub state: JobState,
    pub reason: String,
    /// The attempt the envelope named (0 when unknown).
    pub attempt: u32,
}

fn refuse(
    job_hint: Option<String>,
    verified: bool,
    state: JobState,
    attempt: u32,
    reason: impl Into<String>,
) -> Result<Accepted, Refusal> {
    Err(Refusal {
        job_hint,
        verified,
        state,
        reason: reason.into(),
        attempt,
    })
}

/// Runs every check that needs no Redis, in order; the first that fails refuses the job.
pub async fn check(shared: &Arc<Shared>, wire: &str) -> Result<Accepted, Refusal> {
    // Size and shape.
    let signed = match SignedJob::from_wire(wire) {
        Ok(s) => s,
        Err(e) => return refuse(None, false, JobState::Rejected, 0, e.to_string()),
    };
    // Signature (constant time, before the payload is parsed).
    let env = match signed.verify(&shared.keys.signing) {
        Ok(env) => env,
        Err(e) => {
            let hint = signed
                .unverified_ids()
                .map(|(job, _)| job)
                .filter(|j| validate_job_id(j).is_ok());
            return refuse(hint, false, JobState::Rejected, 0, e.to_string());
        }
    };
    if validate_job_id(&env.job_id).is_err() {
        return refuse(
            None,
            true,
            JobState::Rejected,
            env.attempt,
            "job id is not a canonical UUID",
        );
    }
    let hint = Some(env.job_id.clone());
    // The job is this agent's.
    if env.agent_id != shared.cfg.agent_id {
        return refuse(
            hint,
            false,
            JobState::Rejected,
            env.attempt,
            format!(
                "job is addressed to agent {:?}, this is agent {:?}",
                env.agent_id, shared.cfg.agent_id
            ),
        );
    }
    // Not expired.
    let now = now_secs();
    if env.expires_at < now {
        return refuse(
            hint,
            true,
            JobState::Expired,
            env.attempt,
            format!(
                "the job expired {}s before this server took it",
                now - env.expires_at
            ),
        );
    }
    // The app is in the local catalog with the same digest (reloaded once if not); an
    // installation's later actions may also run this runner's own copy of its version.
    let bundle = match shared
        .bundle_matching(
            &env.app_id,
            &env.bundle_digest,
            uses_installed_version(&env),
        )
        .await
    {
        Ok(b) => b,
        Err(reason) => return refuse(hint, true, JobState::Rejected, env.attempt, reason),
    };
    // Sealed inputs open with this agent's key, for this job.
    let mut submitted: Map<String, Value> = env.inputs.clone().into_iter().collect();
    if let Some(sealed) = &env.sealed_inputs {
        match seal::open(&shared.keys.sealing, &env.job_id, sealed) {
            Ok(secret) => submitted.extend(secret),
            Err(e) => {
                return refuse(hint, true, JobState::Rejected, env.attempt, e.to_string());
            }
        }
    }
    // Inputs validate against the local manifest (hidden inputs are dropped here).
    let values = match bundle.validate_inputs(&submitted) {
        Ok(v) => v,
        Err(errors) => {
            let list: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {} ({})", e.field, e.message, e.rule))
                .collect();
            return refuse(
                hint,
                true,
                JobState::Rejected,
                env.attempt,
                format!(
                    "inputs do not validate against this server's manifest: {}",
                    list.join("; ")
                ),
            );
        }
    };
    // A lifecycle order this bundle and this server's state can carry out.
    if let Some(reason) = crate::lifecycle::refusal(&shared.stores, &env, &bundle) {
        return refuse(hint, true, JobState::Rejected, env.attempt, reason);
    }
    Ok(Accepted {
        envelope: env,
        bundle,
        values,
    })
}

/// What the one Redis step of the checks found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This attempt was started before: refused as a replay.
    Replay,
    /// Claimed, but the record says `cancel_requested=1`: end `canceled` without running.
    Canceled,
    /// Claimed and `running`; the sequence number the job's next event gets, when known.
    Running { next_seq: Option<u64> },
}

/// The replay guard, the cancel flag and the `running` write of an accepted job, in one
/// round trip (`CLAIM_ATTEMPT`), at unix ms `started_at`. `repeated`: an earlier call with
/// the same `started_at` failed without an answer (its claim is then recognised as this
/// runner's own). `Err` is a Redis failure: the caller retries once Redis is back.
pub async fn claim(
    shared: &Shared,
    acc: &Accepted,
    started_at: i64,
    repeated: bool,
) -> Result<Claim, deadpool_redis::redis::RedisError> {
    let env = &acc.envelope;
    let mut conn = shared.redis().await?;
    let claimed = store::claim_attempt(&mut conn, &shared.names, env, started_at, repeated).await?;
    Ok(match claimed {
        store::Claimed::Before => Claim::Replay,
        store::Claimed::CancelAsked => Claim::Canceled,
        store::Claimed::Running(seq) => Claim::Running {
            next_seq: seq.map(|s| s + 1),
        },
    })
}

/// The refusal of an attempt that was started before.
pub fn replay(env: &Envelope) -> Refusal {
    Refusal {
        job_hint: Some(env.job_id.clone()),
        verified: true,
        state: JobState::Rejected,
        reason: format!(
            "replay: attempt {} of this job was already started",
            env.attempt
        ),
        attempt: env.attempt,
    }
}

/// Whether a refusal may update the job record: only while the job waits to run (`queued` or
/// `retrying`), and, for a verified job, only when the refused wire is the record's current
/// one (an old attempt replayed must not overwrite a newer one). A job that fails
/// verification touches its record while it is still `queued`, or while it is `retrying`
/// and the refused wire is exactly the retry the record holds: a retry scheduled under an
/// agent key that has since been rotated then ends `rejected` (and a person can retry it)
/// instead of waiting forever.
pub fn refusal_touches_record(
    refusal: &Refusal,
    wire: &str,
    state: Option<JobState>,
    signed: Option<&str>,
) -> bool {
    let current = signed == Some(wire);
    match state {
        Some(JobState::Queued) => !refusal.verified || current,
        Some(JobState::Retrying) => current,
        _ => false,
    }
}

/// Whether a job acts on an installed version that the catalog may have moved past
/// (uninstall, backup, restore, change of settings), so the runner's bundle store may serve
/// it. Installs and upgrades always run the catalog's bundle.
fn uses_installed_version(env: &outfitter_contract::envelope::Envelope) -> bool {
    use outfitter_contract::lifecycle::Action;
    env.lifecycle
        .as_ref()
        .is_some_and(|l| !matches!(l.action, Action::Install | Action::Upgrade))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(verified: bool) -> Refusal {
        Refusal {
            job_hint: Some("j".into()),
            verified,
            state: JobState::Rejected,
            reason: "r".into(),
            attempt: 1,
        }
    }

    #[test]
    fn forged_job_touches_only_a_queued_record() {
        let r = refusal(false);
        assert!(refusal_touches_record(
            &r,
            "w",
            Some(JobState::Queued),
            Some("other")
        ));
        assert!(!refusal_touches_record(
            &r,
            "w",
            Some(JobState::Succeeded),
            Some("w")
        ));
        assert!(!refusal_touches_record(&r, "w", None, None));
    }

    #[test]
    fn retry_signed_under_a_rotated_key_ends_its_record() {
        let r = refusal(false);
        assert!(refusal_touches_record(
            &r,
            "w",
            Some(JobState::Retrying),
            Some("w")
        ));
        assert!(!refusal_touches_record(
            &r,
            "planted",
            Some(JobState::Retrying),
            Some("w")
        ));
    }

    #[test]
    fn verified_refusal_touches_only_the_current_attempt() {
        let r = refusal(true);
        assert!(refusal_touches_record(
            &r,
            "w",
            Some(JobState::Retrying),
            Some("w")
        ));
        assert!(!refusal_touches_record(
            &r,
            "old",
            Some(JobState::Queued),
            Some("w")
        ));
        assert!(!refusal_touches_record(
            &r,
            "w",
            Some(JobState::Running),
            Some("w")
        ));
    }
}
