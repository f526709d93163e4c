//! One bundle through its whole life with real Redis, panel and runner processes: install →
//! change settings → upgrade → a failing upgrade rolled back by the runner to the previous
//! version (after the catalog already holds only the new one) → uninstall, checking the
//! installation record, the script's environment and what is on disk at each step; and an
//! upgrade whose runner is killed with SIGKILL mid-script, which ends upgraded or rolled
//! back, never half.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use outfitter_tests::Stack;
use outfitter_tests::api::Api;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Long enough for a slow, busy 2-core CI machine; each job takes well under a second.
const LIMIT: Duration = Duration::from_secs(90);
const AGENT: &str = "web-life";
const APP: &str = "life-app";
const SECRET: &str = "Life s3cret 42";

fn manifest(version: &str) -> String {
    format!(
        "\
id: {APP}
name: Lifecycle app
version: {version}
description: Writes what each lifecycle script received under a directory it is given.
category: testing
author: Outfitter tests
os_requirements:
  family: [debian, ubuntu]
timeout_seconds: 60
idempotent: true
upgrade_script: upgrade.sh
uninstall_script: uninstall.sh
backup_script: backup.sh
restore_script: restore.sh
health_check:
  command: test -f \"$ROOT_DIR/app/healthy\"
  timeout_seconds: 10
inputs:
  - name: root_dir
    type: string
    label: Root directory
    required: true
  - name: greeting
    type: string
    label: Greeting
    default: hi
  - name: token
    type: password
    label: Token
"
    )
}

/// The part every script shares: where it writes, and a line of what it received.
const PRELUDE: &str = r#"#!/usr/bin/env bash
set -euo pipefail
root="$ROOT_DIR"
mkdir -p "$root/calls"
reversed=""
token="${TOKEN:-}"
for ((i = ${#token} - 1; i >= 0; i--)); do reversed+="${token:i:1}"; done
printf 'action=%s instance=%s previous=%s backup=%s purge=%s greeting=%s token_reversed=%s\n' \
  "$OUTFITTER_ACTION" "$INSTANCE" "${PREVIOUS_VERSION:-}" "${BACKUP_DIR:-}" "${PURGE:-}" \
  "${GREETING:-}" "$reversed" >>"$root/calls/log"
"#;

fn install_sh(version: &str) -> String {
    format!(
        "{PRELUDE}mkdir -p \"$root/app\" \"$root/data\"
echo {version} >\"$root/app/version\"
echo \"$GREETING\" >\"$root/app/greeting\"
touch \"$root/app/healthy\" \"$root/data/kept\"
"
    )
}

/// The upgrade writes the new version; `fail-upgrade` makes it fail after it broke the app
/// (the rollback must restore it), `hold-upgrade` makes it wait (for the kill test).
fn upgrade_sh(version: &str) -> String {
    format!(
        "{PRELUDE}mkdir -p \"$root/app\"
echo {version} >\"$root/app/version\"
rm -f \"$root/app/healthy\"
touch \"$root/upgrading\"
for _ in $(seq 1 600); do [ -e \"$root/hold-upgrade\" ] || break; sleep 0.1; done
if [ -e \"$root/fail-upgrade\" ]; then echo 'upgrade breaks on purpose' >&2; exit 1; fi
touch \"$root/app/healthy\"
"
    )
}

const UNINSTALL_SH: &str = r#"rm -rf "$root/app"
if [ "$PURGE" = true ]; then rm -rf "$root/data"; fi
"#;
const BACKUP_SH: &str = r#"cp -a "$root/app" "$BACKUP_DIR/app"
"#;
const RESTORE_SH: &str = r#"rm -rf "$root/app"
cp -a "$BACKUP_DIR/app" "$root/app"
"#;

/// Writes (or replaces) the bundle at `version` in the catalog.
fn write_bundle(installers: &Path, version: &str) -> Result<()> {
    let dir = installers.join(APP);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("manifest.yml"), manifest(version))?;
    std::fs::write(dir.join("install.sh"), install_sh(version))?;
    std::fs::write(dir.join("upgrade.sh"), upgrade_sh(version))?;
    std::fs::write(dir.join("uninstall.sh"), format!("{PRELUDE}{UNINSTALL_SH}"))?;
    std::fs::write(dir.join("backup.sh"), format!("{PRELUDE}{BACKUP_SH}"))?;
    std::fs::write(dir.join("restore.sh"), format!("{PRELUDE}{RESTORE_SH}"))?;
    Ok(())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The last line the scripts logged.
fn last_call(root: &Path) -> String {
    read(&root.join("calls/log"))
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

async fn installation(api: &Api, id: &str) -> Result<Value> {
    api.get(&format!("/installations/{id}"))
        .await?
        .expect(StatusCode::OK)
}

/// Waits until the installation's job has been settled into a state that is not transient.
async fn wait_settled(api: &Api, id: &str) -> Result<Value> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let inst = installation(api, id).await?;
        if inst["pending_job_id"].is_null() {
            return Ok(inst);
        }
        if Instant::now() > deadline {
            bail!("installation {id} did not settle: {inst}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Posts an action and waits for its job to end and the installation to settle.
async fn act(api: &Api, id: &str, action: &str, body: Value) -> Result<(Value, Value)> {
    let accepted = api
        .post(&format!("/installations/{id}/{action}"), &body)
        .await?
        .expect(StatusCode::ACCEPTED)?;
    let job_id = accepted["job_id"].as_str().context("no job_id")?.to_owned();
    ensure!(accepted["action"] == action, "{accepted}");
    let job = api.wait_terminal(&job_id, LIMIT).await?;
    ensure!(job["installation_id"] == id, "{job}");
    Ok((job, wait_settled(api, id).await?))
}

async fn reload_catalog(api: &Api) -> Result<()> {
    api.post("/catalog/reload", &json!({}))
        .await?
        .expect(StatusCode::OK)?;
    Ok(())
}

async fn install(api: &Api, root: &Path) -> Result<String> {
    let job = api
        .create_job(
            APP,
            AGENT,
            json!({"root_dir": root.display().to_string(), "token": SECRET}),
        )
        .await?;
    ensure!(job["action"] == "install", "{job}");
    let id = job["installation_id"]
        .as_str()
        .context("the job names its installation")?
        .to_owned();
    let done = api
        .wait_terminal(job["id"].as_str().context("job id")?, LIMIT)
        .await?;
    ensure!(done["state"] == "succeeded", "install: {done}");
    Ok(id)
}

fn error_code(reply: &outfitter_tests::api::Reply) -> String {
    reply.body["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_through_its_whole_life_with_a_rollback() {
    let work = tempfile::tempdir().expect("temp dir");
    let installers = work.path().join("installers");
    write_bundle(&installers, "1.0.0").expect("bundle");
    let root = work.path().join("app-root");
    let mut stack = Stack::start_with(&installers).await.expect("stack");
    let outcome = whole_life(&mut stack, &installers, &root).await;
    if let Err(e) = outcome {
        panic!(
            "{e:#}\n----- calls -----\n{}\n{}",
            read(&root.join("calls/log")),
            stack.diagnostics()
        );
    }
}

async fn whole_life(s: &mut Stack, installers: &Path, root: &Path) -> Result<()> {
    let api = s.api();
    s.start_agent(AGENT)?;
    api.wait_agent_online(AGENT, LIMIT).await?;

    // Install.
    let id = install(&api, root).await?;
    let inst = wait_settled(&api, &id).await?;
    ensure!(
        inst["state"] == "installed" && inst["version"] == "1.0.0",
        "{inst}"
    );
    ensure!(
        inst["inputs"]["token"] == "********",
        "secret masked: {inst}"
    );
    ensure!(inst["instance"] == APP, "{inst}");
    ensure!(read(&root.join("app/version")) == "1.0.0");
    let call = last_call(root);
    let reversed: String = SECRET.chars().rev().collect();
    ensure!(
        call.contains("action=install")
            && call.contains(&format!("instance={APP}"))
            && call.contains(&format!("token_reversed={reversed}")),
        "{call}"
    );
    ensure!(
        inst["upgrade_available"].is_null(),
        "no newer version yet: {inst}"
    );
    let listed = api
        .get(&format!("/installations?agent_id={AGENT}"))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(
        listed["installations"]
            .as_array()
            .is_some_and(|l| l.iter().any(|i| i["id"] == id.as_str())),
        "{listed}"
    );

    // A second plain install of the same app on the same server changes its settings.
    let again = api
        .create_job(
            APP,
            AGENT,
            json!({"root_dir": root.display().to_string(), "greeting": "again", "token": SECRET}),
        )
        .await?;
    ensure!(
        again["installation_id"] == id.as_str() && again["action"] == "reconfigure",
        "{again}"
    );
    api.wait_terminal(again["id"].as_str().context("id")?, LIMIT)
        .await?;
    wait_settled(&api, &id).await?;

    // A single-instance app takes no instance name.
    let named = api
        .post(
            "/jobs",
            &json!({"app_id": APP, "agent_id": AGENT, "instance": "second",
                    "inputs": {"root_dir": root.display().to_string()}}),
        )
        .await?;
    ensure!(
        named.status == StatusCode::CONFLICT && error_code(&named) == "action_not_applicable",
        "{:?}",
        named.body
    );

    // Change settings; the secret left out is kept.
    let (job, inst) = act(
        &api,
        &id,
        "reconfigure",
        json!({"inputs": {"greeting": "hello"}}),
    )
    .await?;
    ensure!(job["state"] == "succeeded", "{job}");
    ensure!(
        inst["inputs"]["greeting"] == "hello" && inst["state"] == "installed",
        "{inst}"
    );
    ensure!(read(&root.join("app/greeting")) == "hello");
    let call = last_call(root);
    ensure!(
        call.contains("action=reconfigure") && call.contains(&format!("token_reversed={reversed}")),
        "the kept secret reached the script: {call}"
    );

    // A stale revision is refused, and so is an upgrade with no newer version.
    let stale = api
        .post(
            &format!("/installations/{id}/reconfigure"),
            &json!({"inputs": {}, "rev": 1}),
        )
        .await?;
    ensure!(
        stale.status == StatusCode::CONFLICT && error_code(&stale) == "installation_changed",
        "{:?}",
        stale.body
    );
    let no_newer = api
        .post(&format!("/installations/{id}/upgrade"), &json!({}))
        .await?;
    ensure!(
        no_newer.status == StatusCode::CONFLICT && error_code(&no_newer) == "action_not_applicable",
        "{:?}",
        no_newer.body
    );

    // Upgrade to 2.0.0: backed up first, then upgraded.
    write_bundle(installers, "2.0.0")?;
    reload_catalog(&api).await?;
    let inst = installation(&api, &id).await?;
    ensure!(inst["upgrade_available"] == "2.0.0", "{inst}");
    let wrong = api
        .post(
            &format!("/installations/{id}/upgrade"),
            &json!({"version": "9.9.9"}),
        )
        .await?;
    ensure!(
        wrong.status == StatusCode::CONFLICT && error_code(&wrong) == "version_not_found",
        "{:?}",
        wrong.body
    );
    let (job, inst) = act(&api, &id, "upgrade", json!({})).await?;
    ensure!(
        job["state"] == "succeeded" && job["outcome"] == "done",
        "{job}"
    );
    ensure!(
        inst["version"] == "2.0.0" && inst["state"] == "installed",
        "{inst}"
    );
    ensure!(
        inst["inputs"]["greeting"] == "hello",
        "settings carried over: {inst}"
    );
    ensure!(
        inst["backups"].as_array().is_some_and(|b| b.len() == 1),
        "{inst}"
    );
    ensure!(read(&root.join("app/version")) == "2.0.0");
    let call = last_call(root);
    ensure!(
        call.contains("action=upgrade") && call.contains("previous=1.0.0"),
        "{call}"
    );

    // A failing upgrade to 3.0.0, with only 3.0.0 in the catalog: rolled back to 2.0.0 from
    // the runner's own copy of 2.0.0 and the backup taken just before.
    write_bundle(installers, "3.0.0")?;
    std::fs::write(root.join("fail-upgrade"), "")?;
    reload_catalog(&api).await?;
    let (job, inst) = act(&api, &id, "upgrade", json!({})).await?;
    ensure!(
        job["state"] == "failed" && job["outcome"] == "rolled_back",
        "{job}"
    );
    ensure!(
        inst["version"] == "2.0.0" && inst["state"] == "installed",
        "the installation stands where it was: {inst}"
    );
    ensure!(
        read(&root.join("app/version")) == "2.0.0",
        "the previous version is back on disk"
    );
    ensure!(root.join("app/healthy").exists(), "and healthy");
    let history = inst["jobs"].as_array().context("history")?;
    ensure!(
        history
            .iter()
            .any(|h| h["action"] == "upgrade" && h["result"] == "failed (rolled_back)"),
        "{inst}"
    );
    ensure!(
        inst["upgrade_available"] == "3.0.0",
        "still offered: {inst}"
    );
    std::fs::remove_file(root.join("fail-upgrade"))?;

    // Uninstall keeps data; the installation stays as history.
    let (job, inst) = act(&api, &id, "uninstall", json!({"purge": false})).await?;
    ensure!(job["state"] == "succeeded", "{job}");
    ensure!(inst["state"] == "uninstalled", "{inst}");
    ensure!(!root.join("app").exists(), "the app is gone");
    ensure!(root.join("data/kept").exists(), "its data is kept");
    ensure!(last_call(root).contains("purge=false"));
    let again = api
        .post(&format!("/installations/{id}/uninstall"), &json!({}))
        .await?;
    ensure!(
        again.status == StatusCode::CONFLICT && error_code(&again) == "action_not_applicable",
        "{:?}",
        again.body
    );

    // Unknown and malformed installations.
    let unknown = api
        .get("/installations/0193a6c2-6a37-7cc1-9f55-2b8f0e1d4c3a")
        .await?;
    ensure!(
        unknown.status == StatusCode::NOT_FOUND && error_code(&unknown) == "installation_not_found",
        "{:?}",
        unknown.body
    );
    let malformed = api
        .post("/installations/..%2Fetc/upgrade", &json!({}))
        .await?;
    ensure!(
        malformed.status == StatusCode::BAD_REQUEST,
        "{:?}",
        malformed.body
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_mid_upgrade_ends_upgraded_or_rolled_back() {
    let work = tempfile::tempdir().expect("temp dir");
    let installers = work.path().join("installers");
    write_bundle(&installers, "1.0.0").expect("bundle");
    let root = work.path().join("app-root");
    let mut stack = Stack::start_with(&installers).await.expect("stack");
    let outcome = killed_upgrade(&mut stack, &installers, &root).await;
    if let Err(e) = outcome {
        panic!(
            "{e:#}\n----- calls -----\n{}\n----- runner -----\n{}\n{}",
            read(&root.join("calls/log")),
            stack.runner(AGENT).output_tail(80),
            stack.diagnostics()
        );
    }
}

async fn killed_upgrade(s: &mut Stack, installers: &Path, root: &Path) -> Result<()> {
    let api = s.api();
    s.start_agent(AGENT)?;
    api.wait_agent_online(AGENT, LIMIT).await?;
    let id = install(&api, root).await?;
    wait_settled(&api, &id).await?;

    write_bundle(installers, "2.0.0")?;
    reload_catalog(&api).await?;
    std::fs::write(root.join("hold-upgrade"), "")?;
    let accepted = api
        .post(&format!("/installations/{id}/upgrade"), &json!({}))
        .await?
        .expect(StatusCode::ACCEPTED)?;
    let job_id = accepted["job_id"].as_str().context("job_id")?.to_owned();
    let deadline = Instant::now() + LIMIT;
    while !root.join("upgrading").exists() {
        ensure!(
            Instant::now() < deadline,
            "the upgrade script never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let during = installation(&api, &id).await?;
    ensure!(during["state"] == "upgrading", "{during}");

    s.runner(AGENT).kill();
    std::fs::remove_file(root.join("hold-upgrade"))?;
    s.runner(AGENT).start()?;
    let job = api.wait_terminal(&job_id, LIMIT).await?;
    let inst = wait_settled(&api, &id).await?;
    let on_disk = read(&root.join("app/version"));
    ensure!(inst["state"] == "installed", "never half: {inst} / {job}");
    ensure!(
        inst["version"] == on_disk.as_str(),
        "the record ({}) and the disk ({on_disk}) agree",
        inst["version"]
    );
    match job["state"].as_str() {
        Some("succeeded") => ensure!(on_disk == "2.0.0", "{job}"),
        Some("failed") => ensure!(
            job["outcome"] == "rolled_back" && on_disk == "1.0.0",
            "{job}"
        ),
        _ => bail!("the upgrade ended neither upgraded nor rolled back: {job}"),
    }
    ensure!(root.join("app/healthy").exists(), "healthy either way");
    Ok(())
}
