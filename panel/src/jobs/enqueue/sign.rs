//! Sealing the sensitive inputs for the agent and signing the envelope with its key.

use std::collections::BTreeMap;

use outfitter_contract::envelope::{ENVELOPE_VERSION, Envelope};
use outfitter_contract::job::write;
use outfitter_contract::manifest::Manifest;
use outfitter_contract::seal;
use serde_json::{Map, Value};

use super::request::is_sensitive;
use crate::agents;
use crate::jobs::error::{Error, Result};
use crate::state::AppState;

/// A job ready to write.
pub struct Signed {
    /// The envelope of the first attempt.
    pub envelope: Envelope,
    /// The signed envelope, wire form (what the queue carries).
    pub wire: String,
    /// The inputs as the record shows them: plain values, sensitive ones [`REDACTED`].
    pub shown: Map<String, Value>,
}

/// Seals the sensitive `values` under the agent's current key and signs the envelope;
/// `now_ms` is the issue time.
#[allow(clippy::too_many_arguments)]
pub async fn seal_and_sign(
    state: &AppState,
    manifest: &Manifest,
    digest: &str,
    agent_id: &str,
    job_id: &str,
    values: BTreeMap<String, Value>,
    lifecycle: outfitter_contract::lifecycle::LifecycleOrder,
    now_ms: i64,
) -> Result<Signed> {
    let (secret, plain): (BTreeMap<_, _>, BTreeMap<_, _>) = values
        .into_iter()
        .partition(|(k, _)| is_sensitive(manifest, k));
    let keys = {
        let mut conn = state.redis.clone();
        agents::keys::load(&mut conn, &state.secret, agent_id)
            .await?
            .working
    };
    let sealed_inputs = if secret.is_empty() {
        None
    } else {
        Some(
            seal::seal(&keys.sealing, job_id, &secret)
                .map_err(|e| Error::Internal(e.to_string()))?,
        )
    };
    let issued_at = now_ms / 1000;
    let envelope = Envelope {
        v: ENVELOPE_VERSION,
        job_id: job_id.to_owned(),
        agent_id: agent_id.to_owned(),
        app_id: manifest.id.clone(),
        app_version: manifest.version.clone(),
        bundle_digest: digest.to_owned(),
        inputs: plain.clone(),
        sealed_inputs,
        issued_at,
        expires_at: issued_at + state.settings.queue_ttl_secs as i64,
        attempt: 1,
        lifecycle: Some(lifecycle),
    };
    let shown = write::shown_inputs(&plain, secret.keys().map(String::as_str));
    Ok(Signed {
        wire: envelope.sign(&keys.signing).to_wire(),
        envelope,
        shown,
    })
}
