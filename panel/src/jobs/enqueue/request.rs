//! What a caller asks for, and what it is shown back (sensitive inputs masked).

use outfitter_contract::job::{JobRecord, REDACTED};
use outfitter_contract::manifest::Manifest;
use serde_json::{Map, Value};

/// A job to enqueue: the target and the submitted input values by name.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub app_id: String,
    pub agent_id: String,
    pub inputs: Map<String, Value>,
    /// The instance to install, for apps that allow several; `None` is the app id.
    pub instance: Option<String>,
    /// An action on an existing installation; `None` installs (or, when the instance is
    /// installed already, changes its settings).
    pub on: Option<crate::installations::OnInstallation>,
    /// The version to run when it is not the catalog's: an installation's own, after the
    /// catalog moved on (its runner keeps a copy of that bundle by digest).
    pub pinned: Option<Pinned>,
}

/// A bundle version by its manifest and digest.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub manifest: Manifest,
    pub digest: String,
}

/// The result: the job, and whether an earlier request with the same key created it.
#[derive(Debug)]
pub struct Enqueued {
    pub job: JobRecord,
    pub replayed: bool,
}

/// Whether an input is sensitive (sealed for the agent, never shown).
pub(super) fn is_sensitive(manifest: &Manifest, name: &str) -> bool {
    manifest.input(name).is_some_and(|i| i.is_sensitive())
}

/// Input values with every sensitive one replaced by [`REDACTED`].
pub fn redacted(manifest: &Manifest, values: &Map<String, Value>) -> Map<String, Value> {
    values
        .iter()
        .map(|(k, v)| {
            let shown = if is_sensitive(manifest, k) {
                Value::String(REDACTED.into())
            } else {
                v.clone()
            };
            (k.clone(), shown)
        })
        .collect()
}
