//! Jobs survive a runner that is down or dies: a job queued for an offline agent runs when
//! its runner comes up; a runner killed mid-job recovers it by the idempotent rule.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use outfitter_tests::Stack;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(90);

fn id_of(job: &Value) -> Result<String> {
    job["id"]
        .as_str()
        .map(str::to_owned)
        .context("job without an id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_queued_for_an_offline_agent_runs_when_its_runner_comes_up() {
    Stack::scenario(async |s| {
        // Seen once (so the panel knows its host facts), then stopped until it is offline.
        s.start_agent("late")?;
        let api = s.api();
        api.wait_agent_online("late", LIMIT).await?;
        s.runner("late").terminate(Duration::from_secs(30))?;
        // The heartbeat expires after its TTL (20 s) at the latest.
        api.wait_agent("late", false, Duration::from_secs(40))
            .await?;

        let id = id_of(
            &api.create_job("e2e-hello", "late", json!({"greeting": "Good morning"}))
                .await?,
        )?;
        // It waits in the agent's own queue, where only that agent's runner takes it.
        let agent = api
            .get("/agents/late")
            .await?
            .expect(reqwest::StatusCode::OK)?;
        ensure!(
            agent["queue_depth"] == 1 && agent["processing"] == 0,
            "{agent}"
        );
        let waiting = api.job(&id).await?;
        ensure!(
            waiting["state"] == "queued",
            "nothing runs it while the agent is offline: {waiting}"
        );

        s.runner("late").start()?;
        let done = api.wait_terminal(&id, LIMIT).await?;
        ensure!(
            done["state"] == "succeeded" && done["attempts"] == 1,
            "{done}"
        );
        ensure!(
            api.log(&id)
                .await?
                .contains("greeting=Good morning agent=late"),
            "ran on late"
        );
        Ok(())
    })
    .await;
}

/// Starts a job of `app` and SIGKILLs the runner while attempt 1 runs; restarts it.
async fn kill_runner_mid_job(s: &mut Stack, app: &str) -> Result<(String, Value)> {
    s.start_agent("local")?;
    let api = s.api();
    api.wait_agent_online("local", LIMIT).await?;
    let id = id_of(&api.create_job(app, "local", json!({})).await?)?;
    // Attempt 1 reports progress 10 and then sleeps 20 s.
    api.wait_job(&id, LIMIT, "running attempt 1", |j| {
        j["state"] == "running" && j["progress"] == 10
    })
    .await?;
    s.runner("local").kill();
    s.runner("local").start()?;
    let done = api.wait_terminal(&id, LIMIT).await?;
    Ok((id, done))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_killed_mid_job_reruns_an_idempotent_app_on_restart() {
    Stack::scenario(async |s| {
        let (id, done) = kill_runner_mid_job(s, "e2e-resumable").await?;
        ensure!(
            done["state"] == "succeeded",
            "an idempotent job is re-run: {done}"
        );
        ensure!(done["attempts"] == 2, "as a new attempt: {done}");
        let log = s.api().log(&id).await?;
        ensure!(
            log.contains("finished on attempt 2"),
            "attempt 2 ran to the end: {log}"
        );
        ensure!(
            !log.contains("finished on attempt 1"),
            "attempt 1 never finished: {log}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_killed_mid_job_marks_a_non_idempotent_app_interrupted() {
    Stack::scenario(async |s| {
        let (id, done) = kill_runner_mid_job(s, "e2e-fragile").await?;
        ensure!(
            done["state"] == "interrupted",
            "a non-idempotent job waits for a person: {done}"
        );
        ensure!(done["attempts"] == 1, "it was not re-run: {done}");
        let log = s.api().log(&id).await?;
        ensure!(
            !log.contains("finished on attempt"),
            "nothing finished: {log}"
        );
        Ok(())
    })
    .await;
}
