//! Signed webhooks end to end: a real panel, Redis and runner, and a real HTTP receiver in
//! the test. A failed job is delivered signed, with a delivery id and a timestamp; a receiver
//! that answers 500 or hangs gets the same delivery again; redeliver sends it once more; two
//! panels deliver each event once.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use outfitter_tests::receiver::{Received, Receiver, Reply};
use outfitter_tests::{Api, Stack};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(90);
const SECRET: &str = "e2e-webhook-secret-0123456789";
/// Attempt timeout of the panels in these tests.
const TIMEOUT_MS: u64 = 1_500;
/// Short retries, so a retried delivery arrives within the test.
const SETTINGS: &[(&str, &str)] = &[
    ("OUTFITTER_WEBHOOK_TIMEOUT_MS", "1500"),
    ("OUTFITTER_WEBHOOK_RETRY_BASE_MS", "300"),
];

async fn register(api: &Api, url: &str, events: &[&str]) -> Result<String> {
    let made = api
        .post(
            "/webhooks",
            &json!({"url": url, "events": events, "secret": SECRET}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
    ensure!(made["secret"] == SECRET, "{made}");
    made["id"].as_str().map(str::to_owned).context("no id")
}

async fn deliveries(api: &Api, hook: &str) -> Result<Vec<Value>> {
    let v = api
        .get(&format!("/webhooks/{hook}/deliveries"))
        .await?
        .expect(StatusCode::OK)?;
    Ok(v["deliveries"].as_array().cloned().unwrap_or_default())
}

/// Polls the delivery log until `done` holds for it (bounded).
async fn wait_log(api: &Api, hook: &str, done: impl Fn(&[Value]) -> bool) -> Result<Vec<Value>> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let log = deliveries(api, hook).await?;
        if done(&log) {
            return Ok(log);
        }
        ensure!(
            Instant::now() < deadline,
            "delivery log never got there: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks what a receiver should: the signature over the raw body, the id and timestamp
/// in headers and body alike, and a fresh timestamp.
fn verify(r: &Received) -> Result<Value> {
    r.verify(SECRET)
}

async fn one_agent(s: &mut Stack) -> Result<()> {
    s.start_agent("local")?;
    s.api().wait_agent_online("local", LIMIT).await?;
    Ok(())
}

async fn failed_job(api: &Api) -> Result<String> {
    let job = api.create_job("e2e-fail", "local", json!({})).await?;
    let id = job["id"].as_str().context("job id")?.to_owned();
    let end = api.wait_terminal(&id, LIMIT).await?;
    ensure!(end["state"] == "failed", "{end}");
    Ok(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_job_is_delivered_signed_with_its_id_and_timestamp() {
    Stack::scenario_with(SETTINGS, async |s| {
        one_agent(s).await?;
        let api = s.api();
        let receiver = Receiver::start(vec![]).await?;
        let hook = register(&api, &receiver.url("/hook"), &["job.failed"]).await?;
        let ok = api
            .create_job("e2e-hello", "local", json!({"greeting": "Hi"}))
            .await?;
        api.wait_terminal(ok["id"].as_str().context("id")?, LIMIT)
            .await?;
        let job = failed_job(&api).await?;

        let got = receiver.wait_for(1, LIMIT).await?;
        let body = verify(&got[0])?;
        ensure!(body["event"] == "job.failed", "{body}");
        ensure!(body["data"]["job_id"] == job.as_str(), "{body}");
        ensure!(
            body["data"]["state"] == "failed" && body["data"]["app_id"] == "e2e-fail",
            "{body}"
        );
        let id = body["id"].as_str().context("delivery id")?;
        ensure!(id.starts_with("dl_") && id.len() == 35, "{id}");

        let log = wait_log(&api, &hook, |l| {
            l.first().is_some_and(|d| d["status"] == "delivered")
        })
        .await?;
        ensure!(
            log.len() == 1,
            "only job.failed was asked for, and one delivery of it: {log:?}"
        );
        let d = &log[0];
        ensure!(
            d["id"] == id && d["attempts"] == 1 && d["last_status_code"] == 200,
            "{d}"
        );
        // Nothing more arrives: the job's end is announced once.
        tokio::time::sleep(Duration::from_secs(3)).await;
        ensure!(receiver.received().len() == 1, "{:?}", receiver.received());
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_answering_500_first_gets_the_same_delivery_again() {
    Stack::scenario_with(SETTINGS, async |s| {
        one_agent(s).await?;
        let api = s.api();
        let receiver = Receiver::start(vec![Reply::Status(500)]).await?;
        let hook = register(&api, &receiver.url("/hook"), &["job.*"]).await?;
        failed_job(&api).await?;

        let got = receiver.wait_for(2, LIMIT).await?;
        let (first, second) = (verify(&got[0])?, verify(&got[1])?);
        ensure!(
            first["id"] == second["id"],
            "same delivery: {first} / {second}"
        );
        ensure!(first["event"] == "job.failed", "{first}");
        let log = wait_log(&api, &hook, |l| {
            l.first().is_some_and(|d| d["status"] == "delivered")
        })
        .await?;
        let d = &log[0];
        ensure!(d["attempts"] == 2 && d["last_status_code"] == 200, "{d}");
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_receiver_is_cut_off_at_the_timeout_and_retried() {
    Stack::scenario_with(SETTINGS, async |s| {
        one_agent(s).await?;
        let api = s.api();
        let receiver = Receiver::start(vec![Reply::Hang(Duration::from_secs(60))]).await?;
        let hook = register(&api, &receiver.url("/hook"), &["job.failed"]).await?;
        failed_job(&api).await?;

        let first = receiver.wait_for(1, LIMIT).await?.remove(0);
        let log = wait_log(&api, &hook, |l| {
            l.first().is_some_and(|d| {
                d["attempts"] == 1 && d["status"] == "pending" && d["last_error"].is_string()
            })
        })
        .await?;
        let why = log[0]["last_error"].as_str().unwrap_or("");
        ensure!(
            why.contains("no answer within"),
            "the timeout is the reason: {why}"
        );
        let got = receiver.wait_for(2, LIMIT).await?;
        let gap = got[1].at - first.at;
        // Cut off at the timeout, then one short backoff (300 ms, at most 1.25 times) and
        // the worker's poll: far less than the 60 s the receiver would hang.
        ensure!(
            gap >= Duration::from_millis(TIMEOUT_MS)
                && gap < Duration::from_millis(TIMEOUT_MS + 5_000),
            "retried {gap:?} after the first attempt"
        );
        ensure!(
            verify(&got[1])?["id"] == verify(&first)?["id"],
            "same delivery"
        );
        let log = wait_log(&api, &hook, |l| {
            l.first().is_some_and(|d| d["status"] == "delivered")
        })
        .await?;
        ensure!(log[0]["attempts"] == 2, "{:?}", log[0]);
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliver_sends_the_same_delivery_again_with_a_fresh_count() {
    Stack::scenario_with(SETTINGS, async |s| {
        one_agent(s).await?;
        let api = s.api();
        let receiver = Receiver::start(vec![]).await?;
        let hook = register(&api, &receiver.url("/hook"), &["*"]).await?;
        failed_job(&api).await?;
        let log = wait_log(&api, &hook, |l| {
            l.iter()
                .any(|d| d["event"] == "job.failed" && d["status"] == "delivered")
        })
        .await?;
        let d = log
            .iter()
            .find(|d| d["event"] == "job.failed")
            .context("job.failed")?;
        let id = d["id"].as_str().context("id")?;
        let before = receiver.received().len();

        let again = api
            .call(
                Method::POST,
                &format!("/webhooks/{hook}/deliveries/{id}/redeliver"),
                None,
            )
            .await?
            .expect(StatusCode::ACCEPTED)?;
        ensure!(again["id"] == id && again["status"] == "pending", "{again}");
        let got = receiver.wait_for(before + 1, LIMIT).await?;
        let resent = verify(&got[before])?;
        ensure!(resent["id"] == id, "the same delivery id: {resent}");
        let log = wait_log(&api, &hook, |l| {
            l.iter()
                .any(|x| x["id"] == id && x["status"] == "delivered")
        })
        .await?;
        let d = log.iter().find(|x| x["id"] == id).context("delivery")?;
        ensure!(d["attempts"] == 1, "counted afresh: {d}");
        let audit = api.get("/audit").await?.expect(StatusCode::OK)?;
        ensure!(
            audit["entries"].as_array().is_some_and(|e| e
                .iter()
                .any(|x| x["action"] == "webhook.redeliver" && x["target"] == id)),
            "{audit}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_panels_deliver_each_event_once_and_installations_announce_themselves() {
    Stack::scenario_with(SETTINGS, async |s| {
        s.start_panel().await?;
        one_agent(s).await?;
        let api = s.api();
        let receiver = Receiver::start(vec![]).await?;
        register(
            &api,
            &receiver.url("/hook"),
            &["job.succeeded", "installation.*"],
        )
        .await?;
        let job = api
            .create_job("e2e-hello", "local", json!({"greeting": "Hi"}))
            .await?;
        let id = job["id"].as_str().context("id")?;
        api.wait_terminal(id, LIMIT).await?;
        let got = receiver.wait_for(2, LIMIT).await?;
        // Both panels watch the job and settle installations; give a duplicate time to come.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let got_all = receiver.received();
        ensure!(got_all.len() == 2, "one delivery per event: {got_all:?}");
        let mut events: Vec<String> = got
            .iter()
            .map(|r| verify(r).map(|b| b["event"].as_str().unwrap_or("").to_owned()))
            .collect::<Result<_>>()?;
        events.sort();
        ensure!(
            events == ["installation.installed", "job.succeeded"],
            "{events:?}"
        );
        let inst = got
            .iter()
            .map(Received::json)
            .find(|b| b["event"] == "installation.installed")
            .context("installed")?;
        ensure!(
            inst["data"]["job_id"] == id
                && inst["data"]["app_id"] == "e2e-hello"
                && inst["data"]["agent_id"] == "local",
            "{inst}"
        );
        Ok(())
    })
    .await;
}
