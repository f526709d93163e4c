//! Schedules against real panels, a real runner and Redis: two panels run a two-second
//! schedule once per due time, and go on without duplicates when one of them is killed with
//! SIGKILL; a due time missed while every panel was down is run once, or skipped, as the
//! schedule says, and the cadence goes on.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use outfitter_tests::{Api, Stack};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(90);
const AGENT: &str = "local";

fn every_two_seconds(name: &str, catch_up: &str) -> Value {
    json!({
        "name": name,
        "cron": "*/2 * * * * *",
        "timezone": "Europe/Berlin",
        "catch_up": catch_up,
        "target": {"kind": "job", "app_id": "e2e-hello", "agent_id": AGENT,
                   "inputs": {"greeting": "scheduled hello"}},
    })
}

async fn create(api: &Api, body: &Value) -> Result<String> {
    let s = api
        .post("/schedules", body)
        .await?
        .expect(StatusCode::CREATED)?;
    s["id"]
        .as_str()
        .map(str::to_owned)
        .context("schedule without an id")
}

async fn pause(api: &Api, id: &str) -> Result<()> {
    api.post(&format!("/schedules/{id}/pause"), &json!({}))
        .await?
        .expect(StatusCode::OK)?;
    Ok(())
}

/// The schedule's runs, oldest first.
async fn runs(api: &Api, id: &str) -> Result<Vec<Value>> {
    let s = api
        .get(&format!("/schedules/{id}"))
        .await?
        .expect(StatusCode::OK)?;
    let mut runs = s["runs"].as_array().context("no runs")?.clone();
    runs.reverse();
    Ok(runs)
}

/// Every job the schedule created (its caller is `schedule:<id>`).
async fn jobs_of(api: &Api, id: &str) -> Result<Vec<Value>> {
    let page = api
        .call(Method::GET, "/jobs?app_id=e2e-hello&limit=100", None)
        .await?
        .expect(StatusCode::OK)?;
    Ok(page["jobs"]
        .as_array()
        .context("no jobs")?
        .iter()
        .filter(|j| j["created_by"] == json!(format!("schedule:{id}")))
        .cloned()
        .collect())
}

/// One job per run and one run per due time: distinct due times, distinct jobs, and every
/// job the schedule created is one of its runs'.
async fn one_job_per_due_time(api: &Api, id: &str, runs: &[Value]) -> Result<()> {
    let dues: BTreeSet<i64> = runs.iter().filter_map(|r| r["due"].as_i64()).collect();
    ensure!(dues.len() == runs.len(), "a due time ran twice: {runs:?}");
    let run_jobs: BTreeSet<&str> = runs.iter().filter_map(|r| r["job_id"].as_str()).collect();
    let with_job = runs.iter().filter(|r| r["job_id"].is_string()).count();
    ensure!(run_jobs.len() == with_job, "two runs share a job: {runs:?}");
    let jobs = jobs_of(api, id).await?;
    let created: BTreeSet<&str> = jobs.iter().filter_map(|j| j["id"].as_str()).collect();
    ensure!(
        created == run_jobs,
        "jobs created {created:?} are not the runs' jobs {run_jobs:?}"
    );
    Ok(())
}

async fn all_succeed(api: &Api, runs: &[Value]) -> Result<()> {
    for job in runs.iter().filter_map(|r| r["job_id"].as_str()) {
        let done = api.wait_terminal(job, LIMIT).await?;
        ensure!(done["state"] == "succeeded", "job {job}: {done}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_panels_run_a_schedule_once_per_due_time_and_one_killed_changes_nothing() {
    Stack::scenario(async |s| {
        let second = s.start_panel().await?;
        s.start_agent(AGENT)?;
        let api = s.api_at(second);
        api.wait_agent_online(AGENT, LIMIT).await?;
        let id = create(&s.api(), &every_two_seconds("twice a panel", "run_once")).await?;

        tokio::time::sleep(Duration::from_secs(7)).await;
        let before_kill = runs(&api, &id).await?;
        ensure!(before_kill.len() >= 2, "two panels, 7 s: {before_kill:?}");
        s.kill_panel(0);
        tokio::time::sleep(Duration::from_secs(7)).await;
        pause(&api, &id).await?;

        let runs = runs(&api, &id).await?;
        ensure!(
            runs.len() >= before_kill.len() + 2,
            "the remaining panel went on: {runs:?}"
        );
        let dues: Vec<i64> = runs.iter().filter_map(|r| r["due"].as_i64()).collect();
        for w in dues.windows(2) {
            ensure!(
                w[1] > w[0] && (w[1] - w[0]) % 2_000 == 0,
                "due times two seconds apart: {dues:?}"
            );
        }
        // On a machine this busy a panel may stall past one period, once; never more.
        let gaps = dues.windows(2).filter(|w| w[1] - w[0] != 2_000).count();
        ensure!(gaps <= 1, "due times two seconds apart: {dues:?}");
        one_job_per_due_time(&api, &id, &runs).await?;
        all_succeed(&api, &runs).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_times_missed_while_every_panel_was_down_run_once_or_are_skipped() {
    Stack::scenario(async |s| {
        s.start_agent(AGENT)?;
        s.api().wait_agent_online(AGENT, LIMIT).await?;
        let once = create(&s.api(), &every_two_seconds("catch up", "run_once")).await?;
        let skip = create(&s.api(), &every_two_seconds("skip", "skip")).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        s.kill_panel(0);
        // Four due times pass with no panel up.
        tokio::time::sleep(Duration::from_secs(8)).await;
        let back = s.start_panel().await?;
        let api = s.api_at(back);
        tokio::time::sleep(Duration::from_secs(5)).await;
        pause(&api, &once).await?;
        pause(&api, &skip).await?;

        for (id, kind) in [(&once, "catch_up"), (&skip, "skipped")] {
            let runs = runs(&api, id).await?;
            let missed: Vec<&Value> = runs.iter().filter(|r| r["kind"] == kind).collect();
            ensure!(missed.len() == 1, "one {kind} run: {runs:?}");
            let at = runs
                .iter()
                .position(|r| r["kind"] == kind)
                .context("the missed run")?;
            ensure!(
                at >= 1 && runs[..at].iter().all(|r| r["kind"] == "on_time"),
                "on time before the outage: {runs:?}"
            );
            let after = &runs[at + 1..];
            ensure!(after.len() >= 2, "the cadence goes on after it: {runs:?}");
            ensure!(
                after.iter().all(|r| r["kind"] == "on_time"),
                "on time after it: {runs:?}"
            );
            let dues: Vec<i64> = runs.iter().filter_map(|r| r["due"].as_i64()).collect();
            // The outage shows as the one gap: from the missed due time to the first after
            // the panel came back.
            ensure!(
                dues[at + 1] - dues[at] >= 6_000,
                "missed due times collapsed: {dues:?}"
            );
            if kind == "skipped" {
                ensure!(
                    runs[at]["job_id"].is_null(),
                    "a skip queues nothing: {runs:?}"
                );
            } else {
                ensure!(
                    runs[at]["job_id"].is_string(),
                    "a catch-up queues: {runs:?}"
                );
            }
            one_job_per_due_time(&api, id, &runs).await?;
            all_succeed(&api, &runs).await?;
        }
        Ok(())
    })
    .await;
}
