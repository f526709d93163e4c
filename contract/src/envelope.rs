//! The job envelope and its signature.
//!
//! The queue carries a [`SignedJob`]: the envelope serialized once into `payload`, and an
//! HMAC-SHA256 over exactly those bytes (with a domain prefix). The runner verifies the
//! signature in constant time *before* it parses the payload, so nothing unsigned is ever
//! interpreted.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::keys::Key;

/// Bumped when the envelope changes incompatibly.
pub const ENVELOPE_VERSION: u32 = 1;
/// Domain separation: these bytes precede the payload in the MAC.
const SIGNING_DOMAIN: &[u8] = b"outfitter-job-v1\n";
/// A signed job larger than this is refused before anything else.
pub const MAX_SIGNED_JOB_BYTES: usize = 256 * 1024;
/// The shortest time in the queue a re-signed attempt gets, whatever its predecessor had.
pub const MIN_QUEUE_TTL_SECS: i64 = 60;

/// What the panel asks one runner to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Always [`ENVELOPE_VERSION`]; [`SignedJob::verify`] refuses any other.
    pub v: u32,
    /// The job's id, a canonical UUIDv7 ([`crate::ids::new_job_id`]); the same for every
    /// attempt, and the associated data of its sealed inputs.
    pub job_id: String,
    /// The one agent allowed to run it; a runner refuses a job addressed to another agent.
    pub agent_id: String,
    /// The bundle to run, by manifest id.
    pub app_id: String,
    /// The manifest's `version` when the panel validated the inputs (shown; the digest is
    /// what binds).
    pub app_version: String,
    /// [`crate::manifest::bundle_digest`] of the bundle the panel validated against.
    pub bundle_digest: String,
    /// Validated inputs that are not sensitive.
    pub inputs: BTreeMap<String, serde_json::Value>,
    /// Sensitive inputs, sealed for this agent and job ([`crate::seal`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_inputs: Option<String>,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds; a job not started by then is `expired`.
    pub expires_at: i64,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The installation the job acts on and how; absent, the job installs the app as its
    /// single instance (the app id), as every job did before installations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<crate::lifecycle::LifecycleOrder>,
}

/// What travels through the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedJob {
    /// The envelope's JSON, exactly the bytes that were signed.
    pub payload: String,
    /// Lowercase hex HMAC-SHA256.
    pub sig: String,
}

/// Why a signed job was refused. The message is shown to people as the rejection reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The wire form exceeds [`MAX_SIGNED_JOB_BYTES`]; refused before it is parsed.
    #[error("signed job is larger than {MAX_SIGNED_JOB_BYTES} bytes")]
    TooLarge,
    /// The wire form is not `{payload, sig}` JSON; the text is serde_json's message.
    #[error("signed job is not valid JSON of the form {{payload, sig}}: {0}")]
    Malformed(String),
    /// The MAC does not match (or `sig` is not hex): forged, altered, or signed with another
    /// agent's key or key generation.
    #[error("signature does not verify with this agent's key")]
    BadSignature,
    /// Signed correctly, yet the payload is not an [`Envelope`] (a field missing or unknown);
    /// the text is serde_json's message.
    #[error("envelope payload is invalid: {0}")]
    BadPayload(String),
    /// Signed correctly, but for another [`ENVELOPE_VERSION`] than this program speaks.
    #[error("envelope version {0} is not supported (expected {ENVELOPE_VERSION})")]
    Version(u32),
}

fn mac(key: &Key, payload: &[u8]) -> Hmac<Sha256> {
    let mut m =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&key.0).expect("HMAC takes any key length");
    m.update(SIGNING_DOMAIN);
    m.update(payload);
    m
}

impl Envelope {
    /// The next attempt of the same job: `attempt + 1`, issued at `now` and valid until
    /// `now + ttl` (unix seconds). Every new attempt (the policy's retry, a person's, a re-run
    /// after recovery) is built here, so they share one expiry rule. A scheduled retry passes
    /// its due time as `now`: its time in the queue starts when it may first be taken.
    pub fn next_attempt(&self, now: i64, ttl: i64) -> Envelope {
        Envelope {
            attempt: self.attempt + 1,
            issued_at: now,
            expires_at: now + ttl,
            ..self.clone()
        }
    }

    /// How long this attempt was given in the queue, at least [`MIN_QUEUE_TTL_SECS`]: what
    /// the runner gives the attempts it re-signs.
    pub fn queue_ttl(&self) -> i64 {
        (self.expires_at - self.issued_at).max(MIN_QUEUE_TTL_SECS)
    }

    /// Signs the envelope with an agent's signing key.
    pub fn sign(&self, signing_key: &Key) -> SignedJob {
        let payload = serde_json::to_string(self).expect("envelopes always serialize");
        let sig = hex::encode(mac(signing_key, payload.as_bytes()).finalize().into_bytes());
        SignedJob { payload, sig }
    }
}

impl SignedJob {
    /// The wire form pushed onto a queue.
    pub fn to_wire(&self) -> String {
        serde_json::to_string(self).expect("signed jobs always serialize")
    }

    /// Parses the wire form, without trusting anything in it yet.
    pub fn from_wire(wire: &str) -> Result<Self, EnvelopeError> {
        if wire.len() > MAX_SIGNED_JOB_BYTES {
            return Err(EnvelopeError::TooLarge);
        }
        serde_json::from_str(wire).map_err(|e| EnvelopeError::Malformed(e.to_string()))
    }

    /// Verifies the signature in constant time, then parses the payload.
    pub fn verify(&self, signing_key: &Key) -> Result<Envelope, EnvelopeError> {
        let sig = hex::decode(&self.sig).map_err(|_| EnvelopeError::BadSignature)?;
        mac(signing_key, self.payload.as_bytes())
            .verify_slice(&sig)
            .map_err(|_| EnvelopeError::BadSignature)?;
        let env: Envelope = serde_json::from_str(&self.payload)
            .map_err(|e| EnvelopeError::BadPayload(e.to_string()))?;
        if env.v != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(env.v));
        }
        Ok(env)
    }

    /// Reads the job id and agent id of a payload without verifying it: only for filing a
    /// rejection under the right job. Never act on anything else from an unverified job.
    pub fn unverified_ids(&self) -> Option<(String, String)> {
        #[derive(Deserialize)]
        struct Ids {
            job_id: String,
            agent_id: String,
        }
        let ids: Ids = serde_json::from_str(&self.payload).ok()?;
        Some((ids.job_id, ids.agent_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Envelope {
        Envelope {
            v: ENVELOPE_VERSION,
            job_id: "j1".into(),
            agent_id: "local".into(),
            app_id: "nginx".into(),
            app_version: "1.0.0".into(),
            bundle_digest: "ab".repeat(32),
            inputs: BTreeMap::from([("server_name".into(), serde_json::json!("example.com"))]),
            sealed_inputs: None,
            issued_at: 100,
            expires_at: 200,
            attempt: 1,
            lifecycle: None,
        }
    }

    #[test]
    fn signed_job_verifies_with_the_same_key() {
        let k = Key([3; 32]);
        let wire = env().sign(&k).to_wire();
        assert_eq!(
            SignedJob::from_wire(&wire).unwrap().verify(&k).unwrap(),
            env()
        );
    }

    #[test]
    fn forged_or_tampered_job_is_refused() {
        let k = Key([3; 32]);
        let signed = env().sign(&k);
        assert_eq!(
            signed.verify(&Key([4; 32])),
            Err(EnvelopeError::BadSignature)
        );
        let mut tampered = signed.clone();
        tampered.payload = tampered.payload.replace("example.com", "evil.com");
        assert_eq!(tampered.verify(&k), Err(EnvelopeError::BadSignature));
        let mut bad_hex = signed;
        bad_hex.sig = "zz".into();
        assert_eq!(bad_hex.verify(&k), Err(EnvelopeError::BadSignature));
    }

    #[test]
    fn next_attempt_counts_up_and_expires_a_ttl_after_it_is_issued() {
        let next = env().next_attempt(1_000, 300);
        assert_eq!(
            (next.attempt, next.issued_at, next.expires_at),
            (2, 1_000, 1_300)
        );
        assert_eq!(
            next,
            Envelope {
                attempt: 2,
                issued_at: 1_000,
                expires_at: 1_300,
                ..env()
            },
            "nothing else changes"
        );
        assert_eq!(env().queue_ttl(), 100);
        let short = Envelope {
            expires_at: 110,
            ..env()
        };
        assert_eq!(short.queue_ttl(), MIN_QUEUE_TTL_SECS);
    }

    #[test]
    fn malformed_and_huge_wire_is_refused() {
        assert!(matches!(
            SignedJob::from_wire("{"),
            Err(EnvelopeError::Malformed(_))
        ));
        assert!(matches!(
            SignedJob::from_wire(r#"{"payload":"x","sig":"y","extra":1}"#),
            Err(EnvelopeError::Malformed(_))
        ));
        let huge = "x".repeat(MAX_SIGNED_JOB_BYTES + 1);
        assert_eq!(SignedJob::from_wire(&huge), Err(EnvelopeError::TooLarge));
    }
}
