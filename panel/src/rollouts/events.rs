//! What a rollout tells the world when it reaches a state: the audit log, and the webhooks
//! subscribed to `rollout.<state>`.

use super::model::{Rollout, RolloutState};
use crate::audit;
use crate::state::AppState;

/// Called once by whoever wrote the change (the compare-and-swap winner).
pub async fn state_reached(state: &AppState, r: &Rollout, reached: RolloutState) {
    let mut conn = state.redis.clone();
    let counts = r.counts();
    let detail = counts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let action = format!("rollout.{}", reached.as_str());
    audit::record(&mut conn, "panel", &action, &r.id, "rollout", &detail).await;
}
