//! The filters of a job list (API and page alike), checked.

use outfitter_contract::ids;
use outfitter_contract::job::JobState;
use serde::Deserialize;

use super::error::{Error, Result};
use super::store::{self, Filter};

/// A job list request: filters, cursor and page size, as the query string has them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct JobQuery {
    /// Only jobs in this state.
    pub state: Option<String>,
    /// Only jobs of this app.
    pub app_id: Option<String>,
    /// Only jobs on this agent.
    pub agent_id: Option<String>,
    /// Cursor: the `next` of the previous page.
    pub before: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<usize>,
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned)
}

impl JobQuery {
    /// The filters; empty values mean "any".
    pub fn filter(&self) -> Result<Filter> {
        let state = match nonempty(&self.state) {
            Some(s) => Some(s.parse::<JobState>().map_err(|_| {
                let all: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
                Error::InvalidParameter(format!("state must be one of {}", all.join(", ")))
            })?),
            None => None,
        };
        let app_id = nonempty(&self.app_id);
        if let Some(a) = &app_id {
            ids::validate_app_id(a).map_err(|e| Error::InvalidParameter(e.to_string()))?;
        }
        let agent_id = nonempty(&self.agent_id);
        if let Some(a) = &agent_id {
            ids::validate_agent_id(a).map_err(|e| Error::InvalidParameter(e.to_string()))?;
        }
        Ok(Filter {
            state,
            app_id,
            agent_id,
        })
    }

    /// One page of the jobs it asks for.
    pub async fn page(&self, conn: &mut outfitter_redis::RedisConn) -> Result<store::Page> {
        let filter = self.filter()?;
        let before = self.before.as_deref().filter(|s| !s.is_empty());
        store::list(
            conn,
            &filter,
            before,
            self.limit.unwrap_or(store::DEFAULT_PAGE),
        )
        .await
    }
}
