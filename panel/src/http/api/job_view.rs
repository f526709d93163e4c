//! A job as the API (and the job page) shows it.

use outfitter_contract::job::JobRecord;
use serde::Serialize;
use utoipa::ToSchema;

/// A job as the API returns it. Times are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JobView {
    #[schema(example = "0193a6c2-6a37-7cc1-9f55-2b8f0e1d4c3a")]
    pub id: String,
    #[schema(example = "nginx")]
    pub app_id: String,
    pub app_version: String,
    #[schema(example = "web-1")]
    pub agent_id: String,
    /// One of `queued running retrying succeeded failed needs_attention timed_out canceled
    /// interrupted rejected expired`.
    #[schema(value_type = crate::http::openapi::schemas::JobStateName, example = "running")]
    pub state: String,
    /// Whether the state is final (nothing happens without a retry).
    pub terminal: bool,
    pub attempts: u32,
    pub max_attempts: u32,
    pub exit_code: Option<i32>,
    /// 0 to 100.
    pub progress: u8,
    pub progress_message: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub next_attempt_at: Option<i64>,
    /// Of the latest attempt, once finished.
    pub duration_ms: Option<i64>,
    /// Why the job was rejected, expired or needs attention.
    pub reason: Option<String>,
    /// Submitted inputs; sensitive values are `********`.
    #[schema(value_type = Object)]
    pub inputs: serde_json::Value,
    pub created_by: Option<String>,
    pub cancel_requested: bool,
    /// The last lines of output (masked), once finished.
    pub last_lines: Vec<String>,
    /// Processes a successful script left running on purpose.
    pub survivors: Vec<String>,
    /// The installation the job acts on.
    pub installation_id: Option<String>,
    /// What it does to the installation.
    #[schema(value_type = Option<crate::http::openapi::schemas::ActionName>)]
    pub action: Option<String>,
    /// How a lifecycle job ended beyond its state: `done`, `unhealthy`, `rolled_back`,
    /// `rollback_failed`, `unchanged` (it failed before it changed anything).
    pub outcome: Option<String>,
}

impl From<JobRecord> for JobView {
    fn from(r: JobRecord) -> Self {
        let duration_ms = r.duration_ms();
        let lc = r.lifecycle.as_ref();
        let installation_id = lc.map(|l| l.installation_id.clone());
        let action = lc.map(|l| l.action.as_str().to_owned());
        let outcome = lc.and_then(|l| l.outcome).map(|o| o.as_str().to_owned());
        JobView {
            id: r.id,
            app_id: r.app_id,
            app_version: r.app_version,
            agent_id: r.agent_id,
            state: r.state.as_str().to_owned(),
            terminal: r.state.is_terminal(),
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            exit_code: r.exit_code,
            progress: r.progress,
            progress_message: r.progress_message,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            next_attempt_at: r.next_attempt_at,
            duration_ms,
            reason: r.reason,
            inputs: r.inputs,
            created_by: r.created_by,
            cancel_requested: r.cancel_requested,
            last_lines: r.last_lines,
            survivors: r.survivors,
            installation_id,
            action,
            outcome,
        }
    }
}
