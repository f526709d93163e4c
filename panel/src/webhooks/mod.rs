//! Signed webhooks: admins register a URL, a secret and the events it wants; every producer
//! (jobs, installations, rollouts) calls [`emit`], which queues one delivery per matching
//! webhook in Redis; each panel's delivery worker POSTs them, signed, with retries.
//!
//! Deliveries are keyed by (webhook id, event key), so announcing the same occurrence twice
//! (two panels, a retry after a crash) queues one delivery.

pub mod actions;
pub mod deliver;
pub mod emit;
pub mod error;
pub mod model;
pub mod sign;
pub mod store;
pub mod target;
pub mod watch;

pub use emit::{Event, emit};
pub use error::{Error, Result};
pub use model::{EventKind, EventPattern};
