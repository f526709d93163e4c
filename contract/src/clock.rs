//! Wall-clock time as the protocol writes it: unix milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in unix milliseconds (0 if the clock reads before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
