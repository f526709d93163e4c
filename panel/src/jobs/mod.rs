//! Jobs as the panel sees them: enqueue, read, list, cancel, retry, and their events.
//! Nothing here knows about HTTP; handlers call these functions and map [`Error`] to the
//! API's codes.

pub mod control;
pub mod enqueue;
pub mod error;
pub mod events;
pub mod query;
pub mod store;

pub use error::{Error, InvalidField, Result};
pub use query::JobQuery;
