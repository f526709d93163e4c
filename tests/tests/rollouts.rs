//! Rollouts with real Redis, panels and three runner processes: servers picked by labels,
//! batch by batch; a failing server halts the rollout and the servers after it are never
//! started, and a real webhook receiver (answering 500 first) gets `job.failed` and
//! `rollout.halted`, signed; a retry runs the rest; and a panel SIGKILLed in the middle of a
//! rollout leaves it to another panel, which finishes it with every server run exactly once.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use outfitter_tests::Stack;
use outfitter_tests::api::Api;
use outfitter_tests::receiver::{Receiver, Reply};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Long enough for a slow, busy 2-core CI machine; each job takes well under a second.
const LIMIT: Duration = Duration::from_secs(90);
const APP: &str = "fleet-app";
const PROD: [&str; 3] = ["fleet-a", "fleet-b", "fleet-c"];
const HOOK_SECRET: &str = "rollout-hook-secret-0123456789";
/// Short webhook attempts and retries, so a retried delivery arrives within the test.
const SETTINGS: &[(&str, &str)] = &[
    ("OUTFITTER_WEBHOOK_TIMEOUT_MS", "1500"),
    ("OUTFITTER_WEBHOOK_RETRY_BASE_MS", "300"),
];

/// A bundle that fails on a server while `<marks>/fail-<agent>` exists, and waits while
/// `<marks>/hold-<agent>` exists; it records each run in `<marks>/ran-<agent>`.
fn write_bundle(installers: &Path) -> Result<()> {
    let dir = installers.join(APP);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("manifest.yml"),
        format!(
            "\
id: {APP}
name: Fleet app
version: 1.0.0
description: Fails or waits on the servers a test marks.
category: testing
author: Outfitter tests
os_requirements:
  family: [debian, ubuntu]
timeout_seconds: 60
idempotent: true
inputs:
  - name: marks
    type: string
    label: Marks directory
    required: true
"
        ),
    )?;
    std::fs::write(
        dir.join("install.sh"),
        r#"#!/usr/bin/env bash
set -euo pipefail
echo "$JOB_ID" >> "$MARKS/ran-$AGENT_ID"
while [ -e "$MARKS/hold-$AGENT_ID" ]; do sleep 0.1; done
if [ -e "$MARKS/fail-$AGENT_ID" ]; then
  echo "told to fail on $AGENT_ID" >&2
  exit 1
fi
echo "installed on $AGENT_ID"
"#,
    )?;
    Ok(())
}

/// Starts the runners of `PROD` (labelled `env=prod`) and one `env=dev` server.
async fn fleet(s: &mut Stack) -> Result<Api> {
    let api = s.api();
    for id in PROD.iter().chain(&["fleet-dev"]) {
        s.start_agent(id)?;
    }
    for id in PROD {
        let labels = json!({"labels": {"env": "prod", "role": "web"}});
        api.call(Method::PUT, &format!("/agents/{id}/labels"), Some(&labels))
            .await?
            .expect(StatusCode::OK)?;
    }
    // One server is labelled from the CLI, as an operator on the panel's host would.
    s.settings
        .run(&["agent", "label", "fleet-dev", "env=dev", "role=web"])?;
    for id in PROD.iter().chain(&["fleet-dev"]) {
        api.wait_agent_online(id, LIMIT).await?;
    }
    let dev = api.get("/agents/fleet-dev").await?.expect(StatusCode::OK)?;
    ensure!(
        dev["labels"] == json!({"env": "dev", "role": "web"}),
        "{dev}"
    );
    Ok(api)
}

async fn wait_rollout(api: &Api, id: &str, state: &str) -> Result<Value> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let r = api
            .get(&format!("/rollouts/{id}"))
            .await?
            .expect(StatusCode::OK)?;
        if r["state"] == state {
            return Ok(r);
        }
        if Instant::now() > deadline {
            bail!("rollout {id} did not become {state} within {LIMIT:?}: {r}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn target<'a>(r: &'a Value, agent: &str) -> Result<&'a Value> {
    r["targets"]
        .as_array()
        .context("targets")?
        .iter()
        .find(|t| t["agent_id"] == agent)
        .with_context(|| format!("no target {agent} in {r}"))
}

/// How many times the bundle's script ran on `agent`.
fn runs(marks: &Path, agent: &str) -> usize {
    std::fs::read_to_string(marks.join(format!("ran-{agent}")))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// The jobs queued on `agent`.
async fn jobs_on(api: &Api, agent: &str) -> Result<Vec<Value>> {
    let page = api
        .get(&format!("/jobs?agent_id={agent}&limit=200"))
        .await?
        .expect(StatusCode::OK)?;
    Ok(page["jobs"].as_array().context("jobs")?.clone())
}

fn rollout_body(marks: &Path) -> Value {
    json!({
        "app_id": APP,
        "inputs": {"marks": marks.display().to_string()},
        "selector": {"labels": {"env": "prod"}},
        "batch_size": 1,
        "max_failures": 0,
    })
}

async fn run(test: impl AsyncFnOnce(&mut Stack, &Path) -> Result<()>) {
    let work = tempfile::tempdir().expect("temp dir");
    let installers = work.path().join("installers");
    write_bundle(&installers).expect("bundle");
    let marks = work.path().join("marks");
    std::fs::create_dir_all(&marks).expect("marks dir");
    let mut stack = Stack::start_configured(&installers, SETTINGS)
        .await
        .expect("stack");
    if let Err(e) = test(&mut stack, &marks).await {
        panic!("{e:#}\n{}", stack.diagnostics());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_server_halts_the_rollout_and_a_retry_finishes_it() {
    run(async |s, marks| {
        let api = fleet(s).await?;
        let receiver = Receiver::start(vec![Reply::Status(500)]).await?;
        api.post(
            "/webhooks",
            &json!({
                "url": receiver.url("/hook"),
                "events": ["job.failed", "rollout.halted"],
                "secret": HOOK_SECRET,
            }),
        )
        .await?
        .expect(StatusCode::CREATED)?;
        std::fs::write(marks.join("fail-fleet-b"), "")?;
        let created = api
            .post("/rollouts", &rollout_body(marks))
            .await?
            .expect(StatusCode::ACCEPTED)?;
        let id = created["id"].as_str().context("id")?.to_owned();
        let picked: Vec<&str> = created["targets"]
            .as_array()
            .context("targets")?
            .iter()
            .map(|t| t["agent_id"].as_str().unwrap_or_default())
            .collect();
        ensure!(
            picked == PROD,
            "the selector picks the prod servers: {created}"
        );
        ensure!(created["state"] == "running", "{created}");

        let halted = wait_rollout(&api, &id, "halted").await?;
        ensure!(
            target(&halted, "fleet-a")?["state"] == "succeeded",
            "{halted}"
        );
        let b = target(&halted, "fleet-b")?;
        ensure!(
            b["state"] == "failed" && b["job_id"].is_string(),
            "{halted}"
        );
        let c = target(&halted, "fleet-c")?;
        ensure!(
            c["state"] == "skipped" && c["job_id"].is_null(),
            "the third server is never started: {halted}"
        );
        ensure!(halted["counts"]["skipped"] == 1, "{halted}");
        // Nothing ever reached the third server, nor the one the selector left out.
        ensure!(jobs_on(&api, "fleet-c").await?.is_empty());
        ensure!(jobs_on(&api, "fleet-dev").await?.is_empty());
        ensure!(runs(marks, "fleet-c") == 0);

        // The receiver got both events, signed; the one it answered 500 came again with the
        // same delivery id.
        let got = receiver.wait_for(3, LIMIT).await?;
        let bodies: Vec<Value> = got
            .iter()
            .map(|r| r.verify(HOOK_SECRET))
            .collect::<Result<_>>()?;
        let ids: Vec<&str> = bodies.iter().filter_map(|b| b["id"].as_str()).collect();
        let retried = ids
            .iter()
            .filter(|id| ids.iter().filter(|x| x == id).count() == 2)
            .count();
        ensure!(retried == 2, "the 500'd delivery came again: {ids:?}");
        let failed_job = bodies
            .iter()
            .find(|b| b["event"] == "job.failed")
            .context("job.failed delivered")?;
        ensure!(
            failed_job["data"]["job_id"] == b["job_id"]
                && failed_job["data"]["agent_id"] == "fleet-b",
            "{failed_job}"
        );
        let halt = bodies
            .iter()
            .find(|b| b["event"] == "rollout.halted")
            .context("rollout.halted delivered")?;
        ensure!(
            halt["data"]["rollout_id"] == id.as_str()
                && halt["data"]["failed_agents"] == json!(["fleet-b"]),
            "{halt}"
        );

        // A halted rollout cannot be paused or aborted; it can be retried.
        let refused = api
            .post(&format!("/rollouts/{id}/pause"), &json!({}))
            .await?;
        ensure!(refused.status == StatusCode::CONFLICT, "{}", refused.body);
        ensure!(
            refused.body["code"] == "rollout_refused",
            "{}",
            refused.body
        );

        std::fs::remove_file(marks.join("fail-fleet-b"))?;
        let retried = api
            .post(&format!("/rollouts/{id}/retry"), &json!({}))
            .await?
            .expect(StatusCode::OK)?;
        ensure!(retried["state"] == "running", "{retried}");
        let done = wait_rollout(&api, &id, "succeeded").await?;
        for agent in PROD {
            ensure!(target(&done, agent)?["state"] == "succeeded", "{done}");
        }
        ensure!(target(&done, "fleet-b")?["attempt"] == 2, "{done}");
        ensure!(
            (
                runs(marks, "fleet-a"),
                runs(marks, "fleet-b"),
                runs(marks, "fleet-c")
            ) == (1, 2, 1),
            "each server ran once per attempt"
        );
        let job = api
            .job(
                target(&done, "fleet-c")?["job_id"]
                    .as_str()
                    .context("job")?,
            )
            .await?;
        ensure!(job["created_by"] == format!("rollout:{id}"), "{job}");
        let history = done["history"].as_array().context("history")?;
        ensure!(
            history
                .iter()
                .any(|h| h["what"].as_str().is_some_and(|w| w.starts_with("halted"))),
            "{done}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_selections_are_refused_before_anything_starts() {
    run(async |s, marks| {
        let api = fleet(s).await?;
        // A server that is registered but never ran is reported, not found out mid-way.
        let config = s.settings.add_agent("fleet-off")?;
        ensure!(config.contains("agent_key"));
        api.call(
            Method::PUT,
            "/agents/fleet-off/labels",
            Some(&json!({"labels": {"env": "prod"}})),
        )
        .await?
        .expect(StatusCode::OK)?;
        let unfit = api.post("/rollouts", &rollout_body(marks)).await?;
        ensure!(
            unfit.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            unfit.body
        );
        ensure!(
            unfit.body["fields"][0]["field"] == "agents.fleet-off",
            "{}",
            unfit.body
        );
        ensure!(unfit.body["fields"][0]["rule"] == "fit", "{}", unfit.body);

        // With skip_unfit it is left out and listed; a dry run shows the batches.
        let mut body = rollout_body(marks);
        body["skip_unfit"] = json!(true);
        body["dry_run"] = json!(true);
        body["batch_size"] = json!(2);
        let plan = api.post("/rollouts", &body).await?.expect(StatusCode::OK)?;
        ensure!(
            plan["batches"] == json!([["fleet-a", "fleet-b"], ["fleet-c"]]),
            "{plan}"
        );
        ensure!(plan["unfit"][0]["agent_id"] == "fleet-off", "{plan}");
        ensure!(plan["unfit"][0]["reason"] == "offline", "{plan}");

        for (selector, field) in [
            (json!({"env": "staging"}), "selector"),
            (json!({"team": "x"}), "selector.labels.team"),
            (json!({"env": "pr*d"}), "selector.labels.env"),
            (json!({"env": "prod\u{7}"}), "selector.labels.env"),
            (json!({}), "selector"),
        ] {
            let mut body = rollout_body(marks);
            body["selector"] = json!({ "labels": selector });
            let r = api.post("/rollouts", &body).await?;
            ensure!(
                r.status == StatusCode::UNPROCESSABLE_ENTITY
                    && r.body["fields"][0]["field"] == field,
                "{selector}: {} {}",
                r.status,
                r.body
            );
        }
        for (patch, field) in [
            (json!({"batch_size": 0}), "batch_size"),
            (
                json!({"agents": ["fleet-a", "fleet-a"], "selector": null}),
                "agents[1]",
            ),
            (json!({"agents": ["nope"], "selector": null}), "agents[0]"),
            (json!({"agents": ["fleet-a"]}), "selector"),
            (json!({"inputs": {}}), "marks"),
        ] {
            let mut body = rollout_body(marks);
            for (k, v) in patch.as_object().context("patch")? {
                if v.is_null() {
                    body.as_object_mut().context("body")?.remove(k);
                } else {
                    body[k] = v.clone();
                }
            }
            let r = api.post("/rollouts", &body).await?;
            ensure!(
                r.status == StatusCode::UNPROCESSABLE_ENTITY
                    && r.body["fields"][0]["field"] == field,
                "{patch}: {} {}",
                r.status,
                r.body
            );
        }
        let bad_label = api
            .call(
                Method::PUT,
                "/agents/fleet-a/labels",
                Some(&json!({"labels": {"env": "a b"}})),
            )
            .await?;
        ensure!(
            bad_label.status == StatusCode::UNPROCESSABLE_ENTITY
                && bad_label.body["fields"][0]["field"] == "labels.env",
            "{}",
            bad_label.body
        );
        // Nothing was queued anywhere.
        for agent in PROD {
            ensure!(jobs_on(&api, agent).await?.is_empty(), "{agent}");
        }
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panel_killed_mid_rollout_leaves_each_server_run_exactly_once() {
    run(async |s, marks| {
        let api = fleet(s).await?;
        let second = s.start_panel().await?;
        for agent in PROD {
            std::fs::write(marks.join(format!("hold-{agent}")), "")?;
        }
        let created = api
            .post("/rollouts", &rollout_body(marks))
            .await?
            .expect(StatusCode::ACCEPTED)?;
        let id = created["id"].as_str().context("id")?.to_owned();
        // Let the first server finish, then kill the first panel while the second server's
        // job is held running.
        let deadline = Instant::now() + LIMIT;
        while runs(marks, "fleet-a") == 0 {
            ensure!(Instant::now() < deadline, "the first server never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::fs::remove_file(marks.join("hold-fleet-a"))?;
        while runs(marks, "fleet-b") == 0 {
            ensure!(Instant::now() < deadline, "the second server never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s.kill_panel(0);
        std::fs::remove_file(marks.join("hold-fleet-b"))?;
        std::fs::remove_file(marks.join("hold-fleet-c"))?;

        let other = s.api_at(second);
        let done = wait_rollout(&other, &id, "succeeded").await?;
        for agent in PROD {
            ensure!(target(&done, agent)?["state"] == "succeeded", "{done}");
            let jobs = jobs_on(&other, agent).await?;
            ensure!(jobs.len() == 1, "{agent} got {} jobs: {jobs:?}", jobs.len());
            ensure!(
                runs(marks, agent) == 1,
                "{agent} ran {} times",
                runs(marks, agent)
            );
        }
        Ok(())
    })
    .await;
}
