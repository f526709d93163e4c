//! Messages on an agent's control channel.

use serde::{Deserialize, Serialize};

/// A request from the panel to a runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlMessage {
    /// Kill the job's process tree; the job ends `canceled`.
    Cancel {
        /// The job to cancel; a runner not running it ignores the message.
        job_id: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_message_has_a_stable_shape() {
        let m = ControlMessage::Cancel { job_id: "j".into() };
        let s = serde_json::to_string(&m).unwrap();
        assert_eq!(s, r#"{"type":"cancel","job_id":"j"}"#);
        assert_eq!(serde_json::from_str::<ControlMessage>(&s).unwrap(), m);
    }
}
