//! A rollout request as the API, the page and a schedule take it.

use outfitter_contract::labels::LabelSelector;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::error::{Error, Result};
use super::model::{Selection, Strategy, Work};
use super::plan::NewRollout;

/// Servers picked by their labels.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectorBody {
    /// Every requirement must hold: `"env": "prod"` (equals) or `"region": ["eu", "us"]`
    /// (one of).
    #[schema(value_type = crate::http::openapi::schemas::LabelSelectorMap)]
    pub labels: LabelSelector,
}

/// `POST /api/v1/rollouts`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRolloutBody {
    #[schema(example = "nginx")]
    pub app_id: String,
    /// What to do on each server (default `install`; the others act on the installation
    /// of `instance` there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Work>,
    /// The instance, for apps that allow several (default: the app id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Input values, the same for every server (`reconfigure`, `upgrade`: only those to
    /// change or add).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
    /// `uninstall`: remove the app's data too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub purge: bool,
    /// The servers by id; or give `selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::http::openapi::schemas::AgentIdList>)]
    pub agents: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<SelectorBody>,
    /// Servers at once (default 1).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole_number::optional"
    )]
    #[schema(minimum = 1, maximum = 1000)]
    pub batch_size: Option<u32>,
    /// A first batch of this many servers that goes alone.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole_number::optional"
    )]
    #[schema(minimum = 1, maximum = 1000)]
    pub canary: Option<u32>,
    /// Failed servers tolerated; one more halts the rollout (default 0).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole_number::optional"
    )]
    #[schema(maximum = 10000)]
    pub max_failures: Option<u32>,
    /// Seconds between the end of a batch and the start of the next (default 0).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole_number::optional"
    )]
    #[schema(maximum = 86400)]
    pub pause_seconds: Option<u32>,
    /// Leave out the servers that cannot take it (offline, requirements, not installed)
    /// instead of refusing the rollout; they are listed in `unfit`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_unfit: bool,
    /// Only plan: answer 200 with the batches and the unfit servers; nothing starts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

impl NewRolloutBody {
    /// The domain's request, and whether only a plan is asked for.
    pub fn into_request(self) -> Result<(NewRollout, bool)> {
        let selection = match (self.agents, self.selector) {
            (Some(a), None) => Selection::Agents(a),
            (None, Some(s)) => Selection::Labels(s.labels),
            _ => {
                return Err(Error::invalid(
                    "selector",
                    "one_of",
                    "give either `agents` (ids) or `selector` (labels)",
                ));
            }
        };
        Ok((
            NewRollout {
                app_id: self.app_id,
                instance: self.instance,
                work: self.action.unwrap_or(Work::Install),
                inputs: self.inputs,
                purge: self.purge,
                selection,
                strategy: Strategy {
                    batch_size: self.batch_size.unwrap_or(1),
                    canary: self.canary,
                    max_failures: self.max_failures.unwrap_or(0),
                    pause_seconds: self.pause_seconds.unwrap_or(0),
                },
                skip_unfit: self.skip_unfit,
            },
            self.dry_run,
        ))
    }
}
