//! The target of a job: well-formed ids, an app in the catalog, a registered agent that
//! meets the app's requirements.

use outfitter_contract::ids;
use outfitter_contract::manifest::{Bundle, Manifest};
use outfitter_contract::requirements;

use crate::agents;
use crate::catalog_view::Offered;
use crate::jobs::error::{Error, InvalidField, Result};
use crate::state::AppState;

fn id_problem(field: &str, e: &ids::InvalidId) -> InvalidField {
    InvalidField {
        field: field.to_owned(),
        rule: "id".into(),
        message: e.to_string(),
    }
}

/// Checks the ids of a request and finds the app; malformed ids first, then unknown ones.
pub async fn resolve<'c>(
    state: &AppState,
    catalog: &'c Offered,
    app_id: &str,
    agent_id: &str,
) -> Result<&'c Bundle> {
    check_ids(app_id, agent_id)?;
    let bundle = catalog
        .get(app_id)
        .ok_or_else(|| Error::AppNotFound(app_id.to_owned()))?;
    check_agent(state, agent_id).await?;
    Ok(bundle)
}

/// Checks a request's agent: registered.
pub async fn check_agent(state: &AppState, agent_id: &str) -> Result<()> {
    let mut conn = state.redis.clone();
    if !agents::exists(&mut conn, agent_id).await? {
        return Err(agents::Error::NotRegistered(agent_id.to_owned()).into());
    }
    Ok(())
}

/// Checks the shape of a request's ids.
pub fn check_ids(app_id: &str, agent_id: &str) -> Result<()> {
    let mut problems = Vec::new();
    if let Err(e) = ids::validate_app_id(app_id) {
        problems.push(id_problem("app_id", &e));
    }
    if let Err(e) = ids::validate_agent_id(agent_id) {
        problems.push(id_problem("agent_id", &e));
    }
    if !problems.is_empty() {
        return Err(Error::InvalidFields(problems));
    }
    Ok(())
}

/// Refuses an agent that does not meet the app's requirements (live heartbeat, or the last
/// one seen when it is offline: the job then waits in its queue until it expires).
pub async fn check_requirements(
    state: &AppState,
    manifest: &Manifest,
    agent_id: &str,
) -> Result<()> {
    let mut conn = state.redis.clone();
    let facts = match agents::heartbeat(&mut conn, agent_id).await? {
        Some(f) => f,
        None => agents::registration(&mut conn, agent_id)
            .await?
            .and_then(|r| r.last_facts)
            .ok_or_else(|| Error::AgentNeverSeen(agent_id.to_owned()))?,
    };
    requirements::check(&facts, manifest).map_err(|unmet| {
        Error::RequirementsNotMet(format!(
            "agent {agent_id:?} cannot run {}: it {unmet}",
            manifest.id
        ))
    })
}
