//! Planning a rollout before anything starts: which servers the selection picks, which of
//! them cannot take the work (offline, requirements, not installed, the action does not
//! apply) and why, and the batches the rest run in.

use std::collections::BTreeSet;

use outfitter_contract::labels::LabelSelector;
use serde_json::{Map, Value};

use super::error::{Error, Result};
use super::model::{Selection, Strategy, Target, TargetState, Unfit, Work};
use crate::agents::{self, AgentStatus};
use crate::state::AppState;
use crate::{installations, jobs};

/// Most servers one rollout takes on.
pub const MAX_TARGETS: usize = 10_000;
/// Largest batch.
pub const MAX_BATCH: u32 = 1_000;
/// Longest pause between batches: a day.
pub const MAX_PAUSE_SECONDS: u32 = 86_400;

/// What a person asks for.
#[derive(Debug, Clone)]
pub struct NewRollout {
    pub app_id: String,
    pub instance: Option<String>,
    pub work: Work,
    pub inputs: Map<String, Value>,
    pub purge: bool,
    pub selection: Selection,
    pub strategy: Strategy,
    /// Leave the servers that cannot take the work out (reported as `unfit`) instead of
    /// refusing the whole rollout.
    pub skip_unfit: bool,
}

/// The servers, in batches, and those left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub unfit: Vec<Unfit>,
}

/// What can be checked of a request before the servers are looked at (a schedule checks
/// this when it is made): the strategy, the app, the selector's shape.
pub fn check_request(state: &AppState, req: &NewRollout) -> Result<()> {
    check_strategy(&req.strategy)?;
    let catalog = state.catalog.current();
    if catalog.get(&req.app_id).is_none() && matches!(req.work, Work::Install | Work::Upgrade) {
        return Err(Error::AppNotFound(req.app_id.clone()));
    }
    match &req.selection {
        Selection::Agents(ids) if ids.is_empty() => Err(Error::invalid(
            "agents",
            "required",
            "list at least one server",
        )),
        Selection::Agents(_) => Ok(()),
        Selection::Labels(sel) => sel.check().map_err(|e| label_problem(&e)),
    }
}

fn label_problem(e: &outfitter_contract::labels::LabelError) -> Error {
    let field = match e.field.as_str() {
        "selector" => "selector".to_owned(),
        key => format!("selector.labels.{key}"),
    };
    Error::invalid(field, "label", e.message.clone())
}

/// Checks the request and plans it against the servers as they are now.
pub async fn plan(state: &AppState, req: &NewRollout) -> Result<Plan> {
    check_request(state, req)?;
    let catalog = state.catalog.current();
    let bundle = catalog.get(&req.app_id);
    if let (Work::Install, Some(b)) = (req.work, bundle) {
        // The same values go to every server: a wrong one is refused once, now.
        b.validate_inputs(&req.inputs).map_err(|errors| {
            jobs::Error::InvalidFields(
                errors
                    .into_iter()
                    .map(|e| jobs::InvalidField {
                        field: e.field,
                        rule: e.rule.to_owned(),
                        message: e.message,
                    })
                    .collect(),
            )
        })?;
    }
    let mut conn = state.redis.clone();
    let all = agents::list(&mut conn).await?;
    let picked = select(&all, &req.selection)?;
    if picked.len() > MAX_TARGETS {
        return Err(Error::invalid(
            "selector",
            "size",
            format!(
                "{} servers picked; a rollout takes at most {MAX_TARGETS}",
                picked.len()
            ),
        ));
    }
    let mut fit = Vec::new();
    let mut unfit = Vec::new();
    for agent in picked {
        match fitness(state, &mut conn, req, agent).await? {
            Ok(installation_id) => fit.push((agent.id.clone(), installation_id)),
            Err(reason) => unfit.push(Unfit {
                agent_id: agent.id.clone(),
                reason,
            }),
        }
    }
    if !unfit.is_empty() && !req.skip_unfit {
        return Err(Error::Unfit(unfit));
    }
    if fit.is_empty() {
        return Err(Error::invalid(
            "selector",
            "fit",
            "no picked server can take this rollout",
        ));
    }
    Ok(Plan {
        targets: batches(fit, &req.strategy),
        unfit,
    })
}

fn check_strategy(s: &Strategy) -> Result<()> {
    if s.batch_size == 0 || s.batch_size > MAX_BATCH {
        return Err(Error::invalid(
            "batch_size",
            "range",
            format!("batch_size is 1 to {MAX_BATCH}"),
        ));
    }
    if let Some(c) = s.canary
        && (c == 0 || c > MAX_BATCH)
    {
        return Err(Error::invalid(
            "canary",
            "range",
            format!("canary is 1 to {MAX_BATCH} servers, or left out"),
        ));
    }
    if s.max_failures as usize > MAX_TARGETS {
        return Err(Error::invalid(
            "max_failures",
            "range",
            format!("max_failures is 0 to {MAX_TARGETS}"),
        ));
    }
    if s.pause_seconds > MAX_PAUSE_SECONDS {
        return Err(Error::invalid(
            "pause_seconds",
            "range",
            format!("pause_seconds is 0 to {MAX_PAUSE_SECONDS}"),
        ));
    }
    Ok(())
}

/// The registered servers the selection picks, sorted by id.
fn select<'a>(all: &'a [AgentStatus], selection: &Selection) -> Result<Vec<&'a AgentStatus>> {
    match selection {
        Selection::Agents(ids) => {
            if ids.is_empty() {
                return Err(Error::invalid(
                    "agents",
                    "required",
                    "list at least one server",
                ));
            }
            let mut seen = BTreeSet::new();
            let mut picked = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                let field = format!("agents[{i}]");
                outfitter_contract::ids::validate_agent_id(id)
                    .map_err(|e| Error::invalid(&field, "id", e.to_string()))?;
                if !seen.insert(id.as_str()) {
                    return Err(Error::invalid(
                        &field,
                        "unique",
                        format!("{id} is listed twice"),
                    ));
                }
                let agent = all.iter().find(|a| &a.id == id).ok_or_else(|| {
                    Error::invalid(&field, "registered", format!("no registered agent {id:?}"))
                })?;
                picked.push(agent);
            }
            picked.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(picked)
        }
        Selection::Labels(sel) => select_by_labels(all, sel),
    }
}

fn select_by_labels<'a>(
    all: &'a [AgentStatus],
    sel: &LabelSelector,
) -> Result<Vec<&'a AgentStatus>> {
    sel.check().map_err(|e| label_problem(&e))?;
    if let Some(key) = sel
        .0
        .keys()
        .find(|k| !all.iter().any(|a| a.labels.contains_key(*k)))
    {
        return Err(Error::invalid(
            format!("selector.labels.{key}"),
            "known",
            format!("no registered server has a label {key:?}"),
        ));
    }
    let picked: Vec<&AgentStatus> = all.iter().filter(|a| sel.matches(&a.labels)).collect();
    if picked.is_empty() {
        return Err(Error::invalid(
            "selector",
            "matches",
            format!("{sel} matches none of the {} registered servers", all.len()),
        ));
    }
    Ok(picked)
}

/// Whether one server can take the work: `Ok` with the installation acted on (for actions),
/// or `Err` with why not.
async fn fitness(
    state: &AppState,
    conn: &mut outfitter_redis::RedisConn,
    req: &NewRollout,
    agent: &AgentStatus,
) -> Result<Result<Option<String>, String>> {
    let catalog = state.catalog.current();
    let bundle = catalog.get(&req.app_id);
    let Some(action) = req.work.action() else {
        let manifest = &bundle.expect("plan() checked the app").manifest;
        let standing = installations::dependencies::standing_by_agent(conn, manifest).await?;
        let fit = agents::fits(manifest, std::slice::from_ref(agent), &standing);
        return Ok(match fit[0].reason.clone() {
            Some(reason) => Err(reason),
            None => Ok(None),
        });
    };
    if !agent.online {
        return Ok(Err("offline".to_owned()));
    }
    let instance = req.instance.as_deref().unwrap_or(&req.app_id);
    let found = installations::store::find_instance(conn, &agent.id, &req.app_id, instance).await?;
    let Some(inst) = found else {
        return Ok(Err(format!(
            "{instance} of {} is not installed here",
            req.app_id
        )));
    };
    let inst = installations::settle::settle(conn, inst).await?;
    Ok(
        match installations::actions::applies(&inst, bundle, action) {
            Ok(()) => {
                if action == outfitter_contract::lifecycle::Action::Upgrade
                    && let (Some(facts), Some(b)) = (&agent.facts, bundle)
                    && let Err(u) = outfitter_contract::requirements::check(facts, &b.manifest)
                {
                    Err(u.to_string())
                } else {
                    Ok(Some(inst.id))
                }
            }
            Err(e) => Err(e.to_string()),
        },
    )
}

/// The servers in batches: the canary alone first, when asked for, then `batch_size` at a
/// time, in the order of their ids.
fn batches(fit: Vec<(String, Option<String>)>, s: &Strategy) -> Vec<Target> {
    let canary = s.canary.unwrap_or(0) as usize;
    fit.into_iter()
        .enumerate()
        .map(|(i, (agent_id, installation_id))| {
            let batch = if i < canary {
                0
            } else {
                let first = u32::from(canary > 0);
                first + ((i - canary) / s.batch_size as usize) as u32
            };
            Target {
                agent_id,
                batch,
                state: TargetState::Pending,
                job_id: None,
                attempt: 1,
                installation_id,
                reason: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(batch_size: u32, canary: Option<u32>) -> Strategy {
        Strategy {
            batch_size,
            canary,
            max_failures: 0,
            pause_seconds: 0,
        }
    }

    fn ids(n: usize) -> Vec<(String, Option<String>)> {
        (0..n).map(|i| (format!("a{i}"), None)).collect()
    }

    #[test]
    fn batches_follow_the_size_and_the_canary() {
        let b: Vec<u32> = batches(ids(5), &strategy(2, None))
            .iter()
            .map(|t| t.batch)
            .collect();
        assert_eq!(b, [0, 0, 1, 1, 2]);
        let b: Vec<u32> = batches(ids(5), &strategy(2, Some(1)))
            .iter()
            .map(|t| t.batch)
            .collect();
        assert_eq!(b, [0, 1, 1, 2, 2]);
    }

    #[test]
    fn strategies_out_of_range_are_refused_by_field() {
        for (s, field) in [
            (strategy(0, None), "batch_size"),
            (strategy(1_001, None), "batch_size"),
            (strategy(1, Some(0)), "canary"),
        ] {
            match check_strategy(&s) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{other:?}"),
            }
        }
        let mut s = strategy(1, None);
        s.pause_seconds = MAX_PAUSE_SECONDS + 1;
        assert!(check_strategy(&s).is_err());
    }
}
