//! Servers that need a person, end to end: two real panels on one Redis, a simulated agent
//! whose heartbeats (written by the runner's own script) say its disk is full, and a real
//! runner that is killed. Each crossing marks the server in the API, the servers page's data
//! and Prometheus, and reaches a webhook receiver exactly once — also after the panel that
//! raised it is killed with SIGKILL — and each recovery clears it, once.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use outfitter_contract::host::HostFacts;
use outfitter_contract::host_metrics::{Disk, HostMetrics, Memory};
use outfitter_contract::metrics_history;
use outfitter_contract::redis_keys::AgentRedisKeys;
use outfitter_tests::receiver::Receiver;
use outfitter_tests::{Api, Stack};
use reqwest::StatusCode;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);
/// Offline after 2 s without a heartbeat, so the test need not wait the default 2 minutes.
const SETTINGS: &[(&str, &str)] = &[("OUTFITTER_ATTENTION_OFFLINE_SECS", "2")];

/// A heartbeat of `agent` whose `/srv` is `used_pct` full, as a runner would write it.
async fn beat(
    conn: &mut redis::aio::MultiplexedConnection,
    agent: &str,
    used_pct: u64,
) -> Result<()> {
    let ts = outfitter_contract::clock::now_ms();
    let metrics = HostMetrics {
        memory: Memory {
            total_mb: 4096,
            used_mb: 1024,
            ..Memory::default()
        },
        disks: vec![Disk {
            mount: "/srv".into(),
            total_mb: 100_000,
            used_mb: used_pct * 1000,
            free_mb: (100 - used_pct) * 1000,
            ..Disk::default()
        }],
        ..HostMetrics::default()
    };
    let facts = HostFacts {
        agent_id: agent.into(),
        os_family: "debian".into(),
        cpus: 2,
        ts,
        metrics: Some(metrics.clone()),
        ..HostFacts::default()
    };
    let call = metrics_history::heartbeat(
        &AgentRedisKeys::new(agent),
        &serde_json::to_string(&facts)?,
        60,
        Some((ts, &metrics.sample())),
    );
    let script = redis::Script::new(metrics_history::HEARTBEAT);
    let mut script = script.prepare_invoke();
    for k in &call.keys {
        script.key(k);
    }
    for a in &call.args {
        script.arg(a);
    }
    let _: redis::Value = script.invoke_async(conn).await?;
    Ok(())
}

/// Polls the agent until its attention conditions are `want` (bounded).
async fn wait_attention(api: &Api, agent: &str, want: &[&str]) -> Result<Value> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let a = api
            .get(&format!("/agents/{agent}"))
            .await?
            .expect(StatusCode::OK)?;
        let got: Vec<&str> = a["attention"]
            .as_array()
            .context("attention is a list")?
            .iter()
            .filter_map(|r| r["condition"].as_str())
            .collect();
        if got == want {
            return Ok(a);
        }
        if Instant::now() > deadline {
            bail!("{agent} never had attention {want:?}: {a}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `server.*` events the receiver got so far, as (event, agent, condition).
fn server_events(r: &Receiver) -> Vec<(String, String, String)> {
    r.received()
        .iter()
        .map(|d| {
            let v = d.json();
            let s = |x: &Value| x.as_str().unwrap_or("").to_owned();
            (
                s(&v["event"]),
                s(&v["data"]["agent_id"]),
                s(&v["data"]["condition"]),
            )
        })
        .collect()
}

async fn wait_events(r: &Receiver, want: &[(&str, &str, &str)]) -> Result<()> {
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    let deadline = Instant::now() + LIMIT;
    loop {
        let got = server_events(r);
        if got.len() >= want.len() {
            ensure!(got == want, "webhook events {got:?}, wanted {want:?}");
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("webhook events {got:?} never became {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metrics_text(panel_url: &str) -> Result<String> {
    Ok(reqwest::get(format!("{panel_url}/metrics"))
        .await?
        .text()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_and_a_dead_runner_mark_the_server_once_and_clear_once() {
    Stack::scenario_with(SETTINGS, async |s| {
        s.start_panel().await?;
        let receiver = Receiver::start(vec![]).await?;
        let api = s.api();
        api.post(
            "/webhooks",
            &json!({"url": receiver.url("/hook"), "events": ["server.*"],
                    "secret": "attention-webhook-secret-0123"}),
        )
        .await?
        .expect(StatusCode::CREATED)?;
        let client = redis::Client::open(s.redis().url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;

        // A simulated agent whose disk fills up.
        s.add_agent("full-1")?;
        beat(&mut conn, "full-1", 40).await?;
        api.wait_agent_online("full-1", LIMIT).await?;
        beat(&mut conn, "full-1", 97).await?;
        let marked = wait_attention(&api, "full-1", &["disk_low"]).await?;
        ensure!(
            marked["attention"][0]["detail"] == "/srv 97.0% used",
            "{marked}"
        );
        wait_events(&receiver, &[("server.disk_low", "full-1", "disk_low")]).await?;
        let m = metrics_text(&s.panel().url()).await?;
        ensure!(
            m.contains(r#"outfitter_agent_attention{agent="full-1",condition="disk_low"} 1"#)
                && m.contains("outfitter_agents_needing_attention 1"),
            "metrics:\n{m}"
        );

        // Still full a few rounds later, with the first panel killed: no second event.
        s.kill_panel(0);
        let api = s.api_at(1);
        for _ in 0..3 {
            beat(&mut conn, "full-1", 98).await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        wait_events(&receiver, &[("server.disk_low", "full-1", "disk_low")]).await?;

        // Space freed: the mark clears and one recovery is sent.
        beat(&mut conn, "full-1", 50).await?;
        wait_attention(&api, "full-1", &[]).await?;
        wait_events(
            &receiver,
            &[
                ("server.disk_low", "full-1", "disk_low"),
                ("server.recovered", "full-1", "disk_low"),
            ],
        )
        .await?;
        let m = metrics_text(&s.panel_at(1).url()).await?;
        ensure!(
            !m.contains(r#"agent="full-1",condition="disk_low""#)
                && m.contains("outfitter_agents_needing_attention 0"),
            "metrics:\n{m}"
        );

        // A real runner, killed: offline once its heartbeat has expired and 2 s more passed.
        s.start_agent("live-1")?;
        api.wait_agent_online("live-1", LIMIT).await?;
        s.runner("live-1").kill();
        wait_attention(&api, "live-1", &["offline"]).await?;
        s.runner("live-1").start()?;
        wait_attention(&api, "live-1", &[]).await?;
        wait_events(
            &receiver,
            &[
                ("server.disk_low", "full-1", "disk_low"),
                ("server.recovered", "full-1", "disk_low"),
                ("server.offline", "live-1", "offline"),
                ("server.recovered", "live-1", "offline"),
            ],
        )
        .await?;
        for d in receiver.received() {
            d.verify("attention-webhook-secret-0123")?;
        }
        Ok(())
    })
    .await;
}
