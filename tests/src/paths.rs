//! The path every job takes, walked the same way by each suite that proves it on another
//! ground (TLS, a confined Redis user, a cluster): queued, run and streamed to success with its
//! output; retried by the exit-code policy; canceled while it runs.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

use crate::Api;

/// The id of a job as the API returned it.
pub fn id_of(job: &Value) -> Result<String> {
    job["id"]
        .as_str()
        .map(str::to_owned)
        .context("job without an id")
}

/// On `agent`: `e2e-hello` with `greeting` streams to `succeeded` and its log holds the
/// greeting; `e2e-flaky` succeeds on attempt 3; `e2e-wait` is canceled while it runs.
pub async fn run_retry_cancel(
    api: &Api,
    agent: &str,
    greeting: &str,
    limit: Duration,
) -> Result<()> {
    let hello = id_of(
        &api.create_job("e2e-hello", agent, json!({"greeting": greeting}))
            .await?,
    )?;
    let events = api.events_until_terminal(&hello, limit).await?;
    ensure!(
        events
            .iter()
            .any(|e| e["type"] == "state" && e["state"] == "succeeded"),
        "the stream ends with success: {events:?}"
    );
    ensure!(
        api.log(&hello).await?.contains(greeting),
        "the job's output came back"
    );
    let flaky = id_of(&api.create_job("e2e-flaky", agent, json!({})).await?)?;
    let done = api.wait_terminal(&flaky, limit).await?;
    ensure!(
        done["state"] == "succeeded" && done["attempts"] == 3,
        "{done}"
    );
    let wait = id_of(&api.create_job("e2e-wait", agent, json!({})).await?)?;
    api.wait_state(&wait, "running", limit).await?;
    api.cancel(&wait).await?;
    let done = api.wait_terminal(&wait, limit).await?;
    ensure!(done["state"] == "canceled", "{done}");
    Ok(())
}
