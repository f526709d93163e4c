//! A schedule's target: checked when the schedule is created (the app, the agent, the
//! installation exist; no secret is stored), and fired at each due time as the caller
//! `schedule:<id>` with the due time's idempotency key.

use outfitter_contract::ids;
use outfitter_contract::manifest::Manifest;
use outfitter_contract::redis_keys;
use redis::AsyncCommands;
use serde_json::{Map, Value};

use super::error::{Error, Result};
use super::model::{ScheduledAction, Target};
use crate::auth::{Caller, Role, Via};
use crate::installations::{self, Request, actions};
use crate::jobs::enqueue::{self, NewJob};
use crate::jobs::{self, InvalidField};
use crate::rollouts;
use crate::state::AppState;
use crate::{agents, jobs::store as job_store};

/// The caller a schedule's runs are made as: what the audit log and the job's `created_by`
/// show, and the owner of its idempotency keys.
pub fn caller(schedule_id: &str) -> Caller {
    Caller {
        name: format!("schedule:{schedule_id}"),
        role: Role::Operator,
        via: Via::Bearer,
        from: "schedule".into(),
    }
}

/// The idempotency key of one due time: every panel that runs it uses the same one, so all
/// of them get the same job.
pub fn idempotency_key(schedule_id: &str, due_ms: i64) -> String {
    format!("schedule:{schedule_id}:{}", due_ms.div_euclid(1000))
}

fn no_secrets(manifest: &Manifest, inputs: &Map<String, Value>) -> Result<()> {
    let secrets: Vec<InvalidField> = inputs
        .keys()
        .filter(|k| manifest.input(k).is_some_and(|i| i.is_sensitive()))
        .map(|k| InvalidField {
            field: format!("target.inputs.{k}"),
            rule: "secret".into(),
            message: format!(
                "{k} is a secret, and a schedule stores its inputs in the clear; install the app and schedule an action on the installation, which keeps its secrets sealed"
            ),
        })
        .collect();
    if secrets.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidFields(secrets))
    }
}

/// Checks a target when its schedule is created: `app_not_found`, `agent_not_found`,
/// `installation_not_found`, and per-field problems (ids, inputs, secrets, options that do
/// not belong to the action).
pub async fn check(state: &AppState, target: &Target) -> Result<()> {
    match target {
        Target::Job {
            app_id,
            agent_id,
            inputs,
            ..
        } => {
            let mut problems = Vec::new();
            if let Err(e) = ids::validate_app_id(app_id) {
                problems.push(InvalidField {
                    field: "target.app_id".into(),
                    rule: "id".into(),
                    message: e.to_string(),
                });
            }
            if let Err(e) = ids::validate_agent_id(agent_id) {
                problems.push(InvalidField {
                    field: "target.agent_id".into(),
                    rule: "id".into(),
                    message: e.to_string(),
                });
            }
            if !problems.is_empty() {
                return Err(Error::InvalidFields(problems));
            }
            let catalog = state.catalog.current();
            let bundle = catalog
                .get(app_id)
                .ok_or_else(|| jobs::Error::AppNotFound(app_id.clone()))?;
            let mut conn = state.redis.clone();
            if !agents::exists(&mut conn, agent_id).await? {
                return Err(agents::Error::NotRegistered(agent_id.clone()).into());
            }
            no_secrets(&bundle.manifest, inputs)?;
            bundle.validate_inputs(inputs).map_err(|errors| {
                Error::InvalidFields(
                    errors
                        .into_iter()
                        .map(|e| InvalidField {
                            field: format!("target.inputs.{}", e.field),
                            rule: e.rule.to_owned(),
                            message: e.message,
                        })
                        .collect(),
                )
            })?;
            Ok(())
        }
        Target::Installation {
            installation_id,
            action,
            inputs,
            purge,
        } => {
            if installations::store::check_id(installation_id).is_err() {
                return Err(Error::field(
                    "target.installation_id",
                    "id",
                    format!("{installation_id:?} is not an installation id"),
                ));
            }
            let with_inputs = matches!(
                action,
                ScheduledAction::Reconfigure | ScheduledAction::Upgrade
            );
            if !inputs.is_empty() && !with_inputs {
                return Err(Error::field(
                    "target.inputs",
                    "action",
                    format!(
                        "inputs go with reconfigure and upgrade, not {}",
                        action.as_str()
                    ),
                ));
            }
            if *purge && *action != ScheduledAction::Uninstall {
                return Err(Error::field(
                    "target.purge",
                    "action",
                    format!("purge goes with uninstall, not {}", action.as_str()),
                ));
            }
            let mut conn = state.redis.clone();
            let inst = installations::store::load(&mut conn, installation_id).await?;
            let catalog = state.catalog.current();
            if let Some(m) = actions::installed_manifest(&inst, catalog.get(&inst.app_id)) {
                no_secrets(m, inputs)?;
                let lacks = match action {
                    ScheduledAction::Backup => m.backup_script.is_none(),
                    ScheduledAction::Uninstall => m.uninstall_script.is_none(),
                    _ => false,
                };
                if lacks {
                    return Err(Error::field(
                        "target.action",
                        "script",
                        format!(
                            "{} {} has no {} script",
                            inst.app_id,
                            inst.version,
                            action.as_str()
                        ),
                    ));
                }
            }
            Ok(())
        }
        Target::Rollout(body) => {
            if body.dry_run {
                return Err(Error::field(
                    "target.dry_run",
                    "schedule",
                    "a schedule starts rollouts; leave dry_run out",
                ));
            }
            let (req, _) = body.clone().into_request()?;
            rollouts::plan::check_request(state, &req)?;
            if let Some(b) = state.catalog.current().get(&req.app_id) {
                no_secrets(&b.manifest, &req.inputs)?;
            }
            Ok(())
        }
    }
}

/// What one due time started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    Job(String),
    Rollout(String),
}

impl Fired {
    pub fn job_id(&self) -> Option<String> {
        match self {
            Fired::Job(id) => Some(id.clone()),
            Fired::Rollout(_) => None,
        }
    }

    pub fn rollout_id(&self) -> Option<String> {
        match self {
            Fired::Rollout(id) => Some(id.clone()),
            Fired::Job(_) => None,
        }
    }
}

/// Queues the job (or starts the rollout) of one due time and returns it (the same for every
/// call with the same schedule and due time), or why nothing started, in words for the run
/// history.
pub async fn fire(
    state: &AppState,
    schedule_id: &str,
    target: &Target,
    due_ms: i64,
) -> Result<Fired, String> {
    let who = caller(schedule_id);
    let key = idempotency_key(schedule_id, due_ms);
    match target {
        Target::Rollout(body) => {
            let (req, _) = body.clone().into_request().map_err(|e| e.to_string())?;
            rollouts::create_once(state, req, &who, &key)
                .await
                .map(|r| Fired::Rollout(r.id))
                .map_err(|e| e.to_string())
        }
        Target::Job {
            app_id,
            agent_id,
            inputs,
            instance,
        } => {
            let job = NewJob {
                app_id: app_id.clone(),
                agent_id: agent_id.clone(),
                inputs: inputs.clone(),
                instance: instance.clone(),
                on: None,
                pinned: None,
            };
            enqueue::enqueue(state, &job, &who, Some(&key))
                .await
                .map(|done| Fired::Job(done.job.id))
                .map_err(|e| e.to_string())
        }
        Target::Installation {
            installation_id,
            action,
            inputs,
            purge,
        } => {
            // The installation refuses a second action while the first is pending, before the
            // idempotency key is looked at: so a panel that finds the due time's job queued
            // already (its panel died before advancing) reads the key itself.
            if let Some(job) = queued_already(state, &who, &key, true).await {
                return Ok(Fired::Job(job));
            }
            let req = match action {
                ScheduledAction::Backup => Request::Backup,
                ScheduledAction::Upgrade => Request::Upgrade {
                    version: None,
                    inputs: inputs.clone(),
                },
                ScheduledAction::Reconfigure => Request::Reconfigure {
                    inputs: inputs.clone(),
                },
                ScheduledAction::Uninstall => Request::Uninstall {
                    purge: *purge,
                    force: false,
                },
            };
            match actions::request(state, installation_id, req, None, &who, Some(&key)).await {
                Ok(done) => Ok(Fired::Job(done.job.id)),
                // Another panel may have taken this very due time a moment ago.
                Err(e) => match queued_already(state, &who, &key, false).await {
                    Some(job) => Ok(Fired::Job(job)),
                    None => Err(e.to_string()),
                },
            }
        }
    }
}

/// The job an idempotency key was taken for, if any (`written`: only if that job exists).
async fn queued_already(
    state: &AppState,
    who: &Caller,
    key: &str,
    written: bool,
) -> Option<String> {
    let mut conn = state.redis.clone();
    let entry: Option<String> = conn
        .get(redis_keys::idempotency(&who.name, key))
        .await
        .ok()?;
    let job_id = serde_json::from_str::<Value>(&entry?)
        .ok()?
        .get("job_id")?
        .as_str()?
        .to_owned();
    if written && job_store::load(&mut conn, &job_id).await.is_err() {
        return None;
    }
    Some(job_id)
}
