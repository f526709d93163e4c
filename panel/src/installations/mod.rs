//! Installations: what is installed where, with which settings, and its lifecycle (change
//! settings, upgrade with automatic rollback, backup, restore, uninstall). Each action is a
//! job; the installation changes state only when that job ends ([`settle`]), from the job's
//! durable record, so a restart of panel, runner or Redis loses nothing. Nothing here knows
//! about HTTP.

pub mod actions;
pub mod dependencies;
pub mod error;
pub mod model;
pub mod secrets;
pub mod settle;
pub mod store;

pub use actions::{OnInstallation, Request};
pub use error::{Error, Result};
pub use model::{Backup, HistoryEntry, Installation, Pending};

use outfitter_contract::manifest::Bundle;

/// The catalog's version of the app, when the catalog holds another build of it than the
/// one installed (`bundle` is the catalog's bundle of the installation's app).
pub fn upgrade_available(i: &Installation, bundle: Option<&Bundle>) -> Option<String> {
    bundle
        .filter(|b| b.digest != i.digest)
        .map(|b| b.manifest.version.clone())
}
