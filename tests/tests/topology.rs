//! More than one of each: two agents behind one panel, two panels in front of one Redis (jobs,
//! live events, cancels, idempotency keys and browser sessions work across them).

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

        // An Idempotency-Key used on A is honoured on B: the same job, not a second one.
        let (url_a, url_b) = (s.panel_at(0).url(), s.panel_at(second).url());
        let first = post_job_with_key(&url_a, &s.token, "two-panels-1").await?;
        let again = post_job_with_key(&url_b, &s.token, "two-panels-1").await?;
        ensure!(
            first == again,
            "the key made one job on both panels: {first} vs {again}"
        );

        // A browser session made on A is signed in on B.
        let cookies = sign_in(&url_a, &s.token).await?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let page = http
            .get(format!("{url_b}/dashboard"))
            .header("Cookie", &cookies)
            .send()
            .await?;
        ensure!(
            page.status() == StatusCode::OK,
            "the session of A on B: {}",
            page.status()
        );
        let signed_out = http.get(format!("{url_b}/dashboard")).send().await?;
        ensure!(
            signed_out.status() == StatusCode::SEE_OTHER,
            "and without it, sign-in"
        );
        Ok(())
    })
    .await;
}

/// `POST /api/v1/jobs` of `e2e-hello` with `Idempotency-Key: key`; the job's id.
async fn post_job_with_key(panel: &str, token: &str, key: &str) -> Result<String> {
    outfitter_test_support::install_tls_provider();
    let reply = reqwest::Client::new()
        .post(format!("{panel}/api/v1/jobs"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({"app_id": "e2e-hello", "agent_id": "local", "inputs": {"greeting": "Once"}}))
        .send()
        .await?;
    ensure!(
        reply.status().is_success(),
        "POST /api/v1/jobs: {}",
        reply.status()
    );
    id_of(&reply.json().await?)
}

/// Signs in with `token` through the login form of `panel`; the cookies to send.
async fn sign_in(panel: &str, token: &str) -> Result<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookies = |r: &reqwest::Response| -> Vec<String> {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter(|kv| !kv.ends_with('='))
            .map(str::to_owned)
            .collect()
    };
    let form = http.get(format!("{panel}/login")).send().await?;
    let csrf_cookie = cookies(&form).join("; ");
    let html = form.text().await?;
    let csrf = html
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("the login form's _csrf field")?
        .to_owned();
    let signed = http
        .post(format!("{panel}/login"))
        .header("Cookie", csrf_cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "_csrf={}&token={}&next=%2Fdashboard",
            form_encode(&csrf),
            form_encode(token)
        ))
        .send()
        .await?;
    ensure!(
        signed.status() == StatusCode::SEE_OTHER,
        "sign-in: {}",
        signed.status()
    );
    let session = cookies(&signed).join("; ");
    ensure!(!session.is_empty(), "sign-in set a session cookie");
    Ok(session)
}

/// `text` for an `application/x-www-form-urlencoded` body.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
