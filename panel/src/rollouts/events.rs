//! What a rollout tells the world when it ends (halted, succeeded, aborted): the webhooks
//! subscribed to `rollout.<state>`, and the audit log.

use serde_json::json;

use super::error::{Error, Result};
use super::model::{Rollout, RolloutState, TargetState};
use crate::audit;
use crate::state::AppState;
use crate::webhooks::{self, Event, EventKind};

/// Emits the end of `r` (its current, final state). Safe to repeat: the event key is the
/// end's (`rollout.<state>:<id>:<finished_at>`), so a repeat is the same delivery.
pub async fn announce(state: &AppState, r: &Rollout) -> Result<()> {
    let kind = match r.state {
        RolloutState::Halted => EventKind::RolloutHalted,
        RolloutState::Succeeded => EventKind::RolloutSucceeded,
        RolloutState::Aborted => EventKind::RolloutAborted,
        RolloutState::Running | RolloutState::Paused => return Ok(()),
    };
    let failed: Vec<&str> = r
        .targets
        .iter()
        .filter(|t| t.state == TargetState::Failed)
        .map(|t| t.agent_id.as_str())
        .collect();
    let event = Event {
        kind,
        key: format!(
            "{}:{}:{}",
            kind.as_str(),
            r.id,
            r.finished_at.unwrap_or(r.updated_at)
        ),
        data: json!({
            "rollout_id": r.id,
            "app_id": r.app_id,
            "action": r.work.as_str(),
            "state": r.state.as_str(),
            "counts": r.counts(),
            "failed_agents": failed,
            "created_by": r.created_by,
            "finished_at": r.finished_at,
        }),
    };
    let mut conn = state.redis.clone();
    webhooks::emit(&mut conn, &event)
        .await
        .map_err(|e| Error::Internal(format!("announcing the rollout's end: {e}")))?;
    let detail = r
        .counts()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let action = format!("rollout.{}", r.state.as_str());
    audit::record(&mut conn, "panel", &action, &r.id, "rollout", &detail).await;
    Ok(())
}
