//! Installations: what is installed where, with which settings, and its lifecycle (change
//! settings, upgrade with automatic rollback, backup, restore, uninstall). Each action is a
//! job; the installation changes state only when that job ends ([`settle`]), from the job's
//! durable record, so a restart of panel, runner or Redis loses nothing. Nothing here knows
//! about HTTP.

pub mod actions;
pub mod error;
pub mod model;
pub mod secrets;
pub mod settle;
pub mod store;

pub use actions::{OnInstallation, Request};
pub use error::{Error, Result};
pub use model::{Backup, HistoryEntry, Installation, Pending};
