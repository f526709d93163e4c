//! A sensitive input through the real panel and runner across a key rotation: the job the
//! panel sealed and signed under the old key is refused by the runner that has the new one;
//! a person's retry re-seals and re-signs it with the new key, and it succeeds. The secret
//! reaches the script (it prints a derivative of it) and is in no log, event or record the
//! programs show.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use outfitter_tests::Stack;
use outfitter_tests::runner::Runner;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Long enough for a slow, busy 2-core CI machine; the job itself takes a second.
const LIMIT: Duration = Duration::from_secs(90);
const AGENT: &str = "web-rotated";
const SECRET: &str = "Rotated s3cret-Value 42";

const MANIFEST: &str = "\
id: e2e-secret
name: E2E secret
version: 1.0.0
description: Receives a password and prints it reversed (and, masked, as it is).
category: testing
author: Outfitter tests
os_requirements:
  family: [debian, ubuntu]
timeout_seconds: 30
idempotent: true
inputs:
  - name: api_token
    type: password
    label: API token
    required: true
";

/// Pure bash: proves the value arrived without printing it (the runner masks the plain echo).
const SCRIPT: &str = r#"#!/usr/bin/env bash
set -euo pipefail
reversed=""
for ((i = ${#API_TOKEN} - 1; i >= 0; i--)); do reversed+="${API_TOKEN:i:1}"; done
echo "reversed=${reversed}"
echo "plain=${API_TOKEN}"
"#;

fn write_bundle(installers: &Path) -> Result<()> {
    let dir = installers.join("e2e-secret");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("manifest.yml"), MANIFEST)?;
    std::fs::write(dir.join("install.sh"), SCRIPT)?;
    Ok(())
}

/// Every event of the job from the start, up to its `succeeded` (past the first attempt's
/// `rejected`).
async fn events_until_success(s: &Stack, id: &str) -> Result<Vec<Value>> {
    let mut stream = s.api().events(id, None).await?;
    let mut out = Vec::new();
    loop {
        let msg = stream
            .next(LIMIT)
            .await?
            .with_context(|| format!("the event stream closed early; got {out:?}"))?;
        let event = msg.json()?;
        let done = event["type"] == "state" && event["state"] == "succeeded";
        out.push(event);
        if done {
            return Ok(out);
        }
    }
}

/// Every key Redis holds, with its values: the documented promise is that nothing secret
/// rests there as plaintext (sealed values only).
fn redis_contents(s: &Stack, out: &mut Vec<(String, String)>) -> Result<()> {
    let keys = s.redis().cli(&["--scan"])?;
    for key in keys.lines().filter(|k| !k.is_empty()) {
        let kind = s.redis().cli(&["TYPE", key])?;
        let dump = match kind.as_str() {
            "hash" => s.redis().cli(&["HGETALL", key])?,
            "stream" => s.redis().cli(&["XRANGE", key, "-", "+"])?,
            "string" => s.redis().cli(&["GET", key])?,
            "list" => s.redis().cli(&["LRANGE", key, "0", "-1"])?,
            "zset" => s.redis().cli(&["ZRANGE", key, "0", "-1"])?,
            "set" => s.redis().cli(&["SMEMBERS", key])?,
            other => format!("(type {other})"),
        };
        out.push((format!("redis key {key}"), dump));
    }
    ensure!(
        out.iter()
            .any(|(w, t)| w.starts_with("redis key") && t.contains("sealed_inputs")),
        "the job's sealed envelope was among the keys read"
    );
    Ok(())
}

/// Every file under `dir`, as text.
fn texts_under(dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            texts_under(&p, out);
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((
                p.display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_secret_survives_a_key_rotation_and_never_reaches_a_log() {
    let work = tempfile::tempdir().expect("temp dir");
    let installers = work.path().join("installers");
    write_bundle(&installers).expect("test bundle written");
    let mut stack = Stack::start_with(&installers)
        .await
        .expect("starting the installation");
    let mut rotated: Option<Runner> = None;
    let outcome = scenario(&mut stack, work.path(), &installers, &mut rotated).await;
    if let Err(e) = outcome {
        let tail = rotated.map(|r| r.output_tail(80)).unwrap_or_default();
        panic!(
            "{e:#}\n----- rotated runner -----\n{tail}\n{}",
            stack.diagnostics()
        );
    }
}

async fn scenario(
    s: &mut Stack,
    work: &Path,
    installers: &Path,
    rotated: &mut Option<Runner>,
) -> Result<()> {
    let api = s.api();
    // Generation 0: the runner reports its host, then stops; the job waits for it.
    s.start_agent(AGENT)?;
    api.wait_agent_online(AGENT, LIMIT).await?;
    s.runner(AGENT).terminate(LIMIT)?;
    let job = api
        .create_job("e2e-secret", AGENT, json!({"api_token": SECRET}))
        .await?;
    let id = job["id"].as_str().context("job without an id")?.to_owned();
    ensure!(
        job["inputs"]["api_token"] == "********",
        "the record shows the secret redacted: {job}"
    );

    // Generation 1: the runner gets the new key; the queued job was signed with the old one.
    let config = s.settings.run(&["agent", "rotate", AGENT])?;
    let runner = rotated.insert(Runner::prepare(
        AGENT,
        &config,
        installers,
        &work.join("rotated-runner"),
    )?);
    runner.start()?;
    let refused = api.wait_state(&id, "rejected", LIMIT).await?;
    ensure!(
        refused["reason"]
            .as_str()
            .is_some_and(|r| r.contains("signature")),
        "the old signature is refused: {refused}"
    );

    // A person's retry: re-sealed and re-signed with the new key, attempt 2.
    let retried = api
        .post(&format!("/jobs/{id}/retry"), &json!({}))
        .await?
        .expect(StatusCode::ACCEPTED)?;
    // The reply reads the record after the queueing, so the runner may have taken the new
    // attempt already.
    ensure!(
        ["queued", "running", "succeeded"].contains(&retried["state"].as_str().unwrap_or("")),
        "the retry queued a new attempt: {retried}"
    );
    let done = api.wait_terminal(&id, LIMIT).await?;
    ensure!(
        done["state"] == "succeeded" && done["attempts"] == 2,
        "the retry under the new key succeeds: {done}"
    );
    ensure!(done["inputs"]["api_token"] == "********", "{done}");

    let log = api.log(&id).await?;
    let reversed: String = SECRET.chars().rev().collect();
    ensure!(
        log.contains(&format!("reversed={reversed}")),
        "the script received the secret: {log}"
    );
    ensure!(
        log.contains("plain=********"),
        "the plain echo is masked: {log}"
    );

    let mut seen: Vec<(String, String)> = vec![
        ("GET /jobs/{id}/log".into(), log),
        ("GET /jobs/{id}".into(), done.to_string()),
    ];
    let events = events_until_success(s, &id).await?;
    ensure!(
        events.iter().any(|e| e["state"] == "rejected")
            && events
                .iter()
                .any(|e| e["state"] == "succeeded" && e["attempt"] == 2),
        "both attempts are in the stream: {events:?}"
    );
    seen.push(("the job's events".into(), Value::Array(events).to_string()));
    seen.push((
        "the job list".into(),
        api.get("/jobs").await?.body.to_string(),
    ));
    seen.push(("the panel's output".into(), s.panel().output_tail(10_000)));
    texts_under(work, &mut seen);
    redis_contents(s, &mut seen)?;
    for (what, text) in &seen {
        ensure!(!text.contains(SECRET), "the secret is in {what}");
    }
    ensure!(
        seen.iter()
            .any(|(what, _)| what.contains("rotated-runner/log")),
        "the runner's job log files were read too: {:?}",
        seen.iter().map(|(w, _)| w).collect::<Vec<_>>()
    );
    Ok(())
}
