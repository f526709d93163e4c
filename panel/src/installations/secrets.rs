//! The secrets an installation keeps between its jobs: sealed with the panel's installation
//! key and bound to the installation id, so a change of settings can leave a secret field
//! empty and keep the stored value, and an upgrade can carry it over.

use std::collections::BTreeMap;

use outfitter_contract::seal;
use serde_json::Value;

use super::error::{Error, Result};
use crate::state::AppState;

/// Seals the secret values of installation `id`; `None` when there are none.
pub fn seal_for(
    state: &AppState,
    id: &str,
    secrets: &BTreeMap<String, Value>,
) -> Result<Option<String>> {
    if secrets.is_empty() {
        return Ok(None);
    }
    seal::seal(&state.secret.installation_key(), id, secrets)
        .map(Some)
        .map_err(|e| Error::Internal(format!("cannot seal the installation's secrets: {e}")))
}

/// Opens what [`seal_for`] sealed.
pub fn open(state: &AppState, id: &str, sealed: Option<&str>) -> Result<BTreeMap<String, Value>> {
    match sealed {
        None => Ok(BTreeMap::new()),
        Some(s) => seal::open(&state.secret.installation_key(), id, s)
            .map_err(|e| Error::Internal(format!("cannot open the installation's secrets: {e}"))),
    }
}
