//! More than one of each: two agents behind one panel, two panels in front of one Redis.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use outfitter_tests::Stack;
use reqwest::StatusCode;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(90);

fn id_of(job: &Value) -> Result<String> {
    job["id"]
        .as_str()
        .map(str::to_owned)
        .context("job without an id")
}

/// Names of the files under `dir` (recursively), as one string to search.
fn file_names(dir: &std::path::Path) -> String {
    let mut out = String::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push_str(&e.path().display().to_string());
            out.push('\n');
            if e.path().is_dir() {
                out.push_str(&file_names(&e.path()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_panel_serves_two_agents_and_each_job_runs_on_its_own_agent() {
    Stack::scenario(async |s| {
        s.start_agent("web-1")?;
        s.start_agent("db-1")?;
        let api = s.api();
        api.wait_agent_online("web-1", LIMIT).await?;
        api.wait_agent_online("db-1", LIMIT).await?;
        let agents = api.get("/agents").await?.expect(StatusCode::OK)?;
        let listed: Vec<&str> = agents["agents"]
            .as_array()
            .context("agents list")?
            .iter()
            .filter_map(|a| a["id"].as_str())
            .collect();
        ensure!(
            listed.contains(&"web-1") && listed.contains(&"db-1"),
            "both listed: {agents}"
        );

        let web = id_of(
            &api.create_job("e2e-hello", "web-1", json!({"greeting": "Hi web"}))
                .await?,
        )?;
        let db = id_of(
            &api.create_job("e2e-hello", "db-1", json!({"greeting": "Hi db"}))
                .await?,
        )?;
        for (id, agent, greeting) in [(&web, "web-1", "Hi web"), (&db, "db-1", "Hi db")] {
            let done = api.wait_terminal(id, LIMIT).await?;
            ensure!(
                done["state"] == "succeeded" && done["agent_id"] == agent,
                "{done}"
            );
            let log = api.log(id).await?;
            ensure!(
                log.contains(&format!("greeting={greeting} agent={agent}")),
                "{agent}: {log}"
            );
        }
        // Each runner wrote the per-job log of its own job only.
        let web_logs = file_names(&s.runner("web-1").log_dir());
        let db_logs = file_names(&s.runner("db-1").log_dir());
        ensure!(
            web_logs.contains(&web) && !web_logs.contains(&db),
            "web-1 logs: {web_logs}"
        );
        ensure!(
            db_logs.contains(&db) && !db_logs.contains(&web),
            "db-1 logs: {db_logs}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_panels_sharing_one_redis_serve_the_same_jobs_and_agents() {
    Stack::scenario(async |s| {
        let second = s.start_panel().await?;
        s.start_agent("local")?;
        let (a, b) = (s.api_at(0), s.api_at(second));
        // The agent registered through the CLI (same secret file) is online on both.
        a.wait_agent_online("local", LIMIT).await?;
        b.wait_agent_online("local", LIMIT).await?;

        // Queued on panel B, followed live on panel A, read back on both.
        let id = id_of(
            &b.create_job("e2e-hello", "local", json!({"greeting": "From B"}))
                .await?,
        )?;
        let events = a.events_until_terminal(&id, LIMIT).await?;
        let last = events.last().context("no events")?;
        ensure!(
            last["state"] == "succeeded",
            "panel A streamed the job to its end: {events:?}"
        );
        for api in [&a, &b] {
            let job = api.job(&id).await?;
            ensure!(job["state"] == "succeeded", "{job}");
            ensure!(
                api.log(&id).await?.contains("greeting=From B"),
                "log on both panels"
            );
        }
        // And the other way round, with a cancel: queued on A, canceled through B.
        let id2 = id_of(&a.create_job("e2e-wait", "local", json!({})).await?)?;
        b.wait_state(&id2, "running", LIMIT).await?;
        b.cancel(&id2).await?;
        let done = a.wait_terminal(&id2, LIMIT).await?;
        ensure!(
            done["state"] == "canceled",
            "a cancel through panel B reached the runner: {done}"
        );

        let listed = b.get("/jobs").await?.expect(StatusCode::OK)?;
        let text = listed.to_string();
        ensure!(
            text.contains(&id) && text.contains(&id2),
            "panel B lists both jobs: {listed}"
        );
        Ok(())
    })
    .await;
}
