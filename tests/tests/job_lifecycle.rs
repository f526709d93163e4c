//! A job's life through the real panel and runner: success, retries, timeout, cancel.
//! Everything is observed through the HTTP API and its SSE stream only.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use outfitter_tests::Stack;
use outfitter_tests::process::processes_with;
use serde_json::{Value, json};

/// Long enough for a slow, busy 2-core CI machine; the jobs themselves take seconds.
const LIMIT: Duration = Duration::from_secs(90);

fn id_of(job: &Value) -> Result<String> {
    job["id"]
        .as_str()
        .map(str::to_owned)
        .context("job without an id")
}

fn states(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "state")
        .map(|e| e["state"].as_str().unwrap_or("?").to_owned())
        .collect()
}

async fn one_agent(s: &mut Stack) -> Result<()> {
    s.start_agent("local")?;
    s.api().wait_agent_online("local", LIMIT).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_installs_to_success_with_ordered_progress_and_live_log() {
    Stack::scenario(async |s| {
        one_agent(s).await?;
        let api = s.api();
        let job = api
            .create_job("e2e-hello", "local", json!({"greeting": "Hello world"}))
            .await?;
        ensure!(job["state"] == "queued", "a new job is queued: {job}");
        let id = id_of(&job)?;

        let events = api.events_until_terminal(&id, LIMIT).await?;
        let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
        ensure!(
            seqs.len() == events.len(),
            "every event has a seq: {events:?}"
        );
        ensure!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "seqs count up by one: {seqs:?}"
        );
        ensure!(
            states(&events) == ["queued", "running", "succeeded"],
            "states: {events:?}"
        );
        let progress: Vec<u64> = events
            .iter()
            .filter(|e| e["type"] == "progress")
            .filter_map(|e| e["percent"].as_u64())
            .collect();
        ensure!(progress == [10, 60, 100], "progress in order: {events:?}");
        let lines: Vec<&str> = events.iter().filter_map(|e| e["line"].as_str()).collect();
        ensure!(
            lines.contains(&"greeting=Hello world agent=local attempt=1"),
            "the script's stdout is in the stream: {lines:?}"
        );
        ensure!(lines.contains(&"stderr line"), "stderr too: {lines:?}");

        let done = api.job(&id).await?;
        ensure!(done["state"] == "succeeded", "{done}");
        ensure!(
            done["exit_code"] == 0 && done["attempts"] == 1 && done["progress"] == 100,
            "{done}"
        );
        ensure!(
            done["started_at"].is_i64() && done["finished_at"].is_i64(),
            "timings: {done}"
        );
        let log = api.log(&id).await?;
        ensure!(
            log.contains("greeting=Hello world agent=local attempt=1"),
            "log: {log}"
        );

        // A client that reconnects after event 2 gets exactly the rest.
        let mut resumed = api.events(&id, Some(2)).await?;
        let first = resumed
            .next(LIMIT)
            .await?
            .context("resumed stream is empty")?;
        ensure!(
            first.id.as_deref() == Some("3"),
            "resume starts after Last-Event-ID: {first:?}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_two_is_retried_with_backoff_and_succeeds_on_the_third_attempt() {
    Stack::scenario(async |s| {
        one_agent(s).await?;
        let api = s.api();
        let id = id_of(&api.create_job("e2e-flaky", "local", json!({})).await?)?;
        let events = api.events_until_terminal(&id, LIMIT).await?;
        ensure!(
            states(&events)
                == [
                    "queued",
                    "running",
                    "retrying",
                    "running",
                    "retrying",
                    "running",
                    "succeeded"
                ],
            "two retries then success: {:?}",
            states(&events)
        );
        // The manifest asks for 1 s backoff, doubling: ≥1 s before attempt 2, ≥2 s before 3.
        let started = |attempt: u64| {
            events
                .iter()
                .find(|e| e["state"] == "running" && e["attempt"] == attempt)
                .and_then(|e| e["ts"].as_i64())
        };
        let retried = |attempt: u64| {
            events
                .iter()
                .find(|e| e["state"] == "retrying" && e["attempt"] == attempt)
                .and_then(|e| e["ts"].as_i64())
        };
        let gap2 =
            started(2).context("attempt 2 ran")? - retried(1).context("attempt 1 retried")?;
        let gap3 =
            started(3).context("attempt 3 ran")? - retried(2).context("attempt 2 retried")?;
        ensure!(gap2 >= 1000, "backoff before attempt 2 was {gap2} ms");
        ensure!(
            gap3 >= 2000,
            "backoff before attempt 3 was {gap3} ms (doubling)"
        );

        let done = api.job(&id).await?;
        ensure!(
            done["state"] == "succeeded" && done["attempts"] == 3 && done["exit_code"] == 0,
            "{done}"
        );
        let log = api.log(&id).await?;
        for line in ["attempt 1", "attempt 2", "installed on attempt 3"] {
            ensure!(log.contains(line), "log has {line:?}: {log}");
        }
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_past_its_timeout_is_killed_and_ends_timed_out() {
    Stack::scenario(async |s| {
        one_agent(s).await?;
        let api = s.api();
        let id = id_of(&api.create_job("e2e-slow", "local", json!({})).await?)?;
        let marker = format!("e2e-slow-{id}");
        api.wait_job(&id, LIMIT, "running with its sleep started", |_| {
            !processes_with(&marker).is_empty()
        })
        .await?;

        let done = api.wait_terminal(&id, LIMIT).await?;
        ensure!(
            done["state"] == "timed_out" && done["exit_code"] == 124,
            "{done}"
        );
        ensure!(done["attempts"] == 1, "a timeout is not retried: {done}");
        let took =
            done["finished_at"].as_i64().unwrap_or(0) - done["started_at"].as_i64().unwrap_or(0);
        // timeout_seconds is 2; the script's own sleep is 60 s: it ended at the timeout, not
        // when the sleep would have.
        ensure!((2000..60_000).contains(&took), "the attempt took {took} ms");
        ensure!(
            processes_with(&marker).is_empty(),
            "the script's sleep survived the timeout"
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_a_running_job_kills_its_script_and_ends_canceled() {
    Stack::scenario(async |s| {
        one_agent(s).await?;
        let api = s.api();
        let id = id_of(&api.create_job("e2e-wait", "local", json!({})).await?)?;
        let marker = format!("e2e-wait-{id}");
        api.wait_job(&id, LIMIT, "running with its sleep started", |j| {
            j["state"] == "running" && !processes_with(&marker).is_empty()
        })
        .await?;

        api.cancel(&id).await?;
        let done = api.wait_terminal(&id, LIMIT).await?;
        ensure!(done["state"] == "canceled", "{done}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !processes_with(&marker).is_empty() {
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the script still runs after cancel"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_a_queued_job_ends_it_before_it_runs() {
    Stack::scenario(async |s| {
        // The runner is registered and has been seen, but is down: the job waits in the queue.
        one_agent(s).await?;
        s.runner("local").terminate(Duration::from_secs(30))?;
        let api = s.api();
        let id = id_of(
            &api.create_job("e2e-hello", "local", json!({"greeting": "Never"}))
                .await?,
        )?;
        api.cancel(&id).await?;
        let done = api.wait_terminal(&id, LIMIT).await?;
        ensure!(
            done["state"] == "canceled" && done["attempts"] == 0,
            "{done}"
        );

        // Once the runner is back, the canceled job still never runs.
        s.runner("local").start()?;
        let later = api
            .create_job("e2e-hello", "local", json!({"greeting": "After"}))
            .await?;
        api.wait_state(&id_of(&later)?, "succeeded", LIMIT).await?;
        let log = api.log(&id).await?;
        ensure!(!log.contains("greeting=Never"), "a canceled job ran: {log}");
        Ok(())
    })
    .await;
}
