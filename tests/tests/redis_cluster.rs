//! Panel and runners on a Redis Cluster of three masters with a replica each, started by the
//! test: jobs are queued, run, streamed over SSE, retried and canceled as on one server; a
//! rollout runs over two agents and a webhook announces its end; a second panel streams what
//! the first queued; agents' keys land on different masters; a
//! runner with its own Redis user (made on every node) runs its jobs and reaches nothing
//! else; and when the master holding an agent's slot is killed mid-job, its replica takes
//! over, the job in flight ends exactly once and jobs queued after it run.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use outfitter_tests::Stack;
use outfitter_tests::paths::{id_of, run_retry_cancel};
use outfitter_tests::receiver::Receiver;
use outfitter_tests::stack::test_bundles;
use reqwest::StatusCode;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(120);
const HOOK_SECRET: &str = "cluster-hook-secret-0123456789";

/// How many `state` events of a terminal state the job's stream holds.
fn terminal_events(events: &[Value]) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == "state")
        .filter(|e| {
            ["succeeded", "failed", "canceled", "expired", "interrupted"]
                .contains(&e["state"].as_str().unwrap_or_default())
        })
        .count()
}

async fn on_the_cluster(s: &mut Stack) -> Result<()> {
    // Two agents, so that their slots fall on different masters (checked below).
    s.start_agent("c-1")?;
    s.start_agent("c-7")?;
    let api = s.api();
    api.wait_agent_online("c-1", LIMIT).await?;
    api.wait_agent_online("c-7", LIMIT).await?;

    // Queue, run, stream, retry and cancel: the whole path, through the cluster, on both.
    run_retry_cancel(&api, "c-1", "Hi cluster", LIMIT).await?;
    run_retry_cancel(&api, "c-7", "Hi other master", LIMIT).await?;

    // A rollout over both agents, announced to a webhook: rollouts, webhook deliveries and
    // the installations they make live outside any agent's slot.
    let receiver = Receiver::start(vec![]).await?;
    api.post(
        "/webhooks",
        &json!({"url": receiver.url("/hook"), "events": ["rollout.succeeded"], "secret": HOOK_SECRET}),
    )
    .await?
    .expect(StatusCode::CREATED)?;
    let rollout = api
        .post(
            "/rollouts",
            &json!({"app_id": "e2e-hello", "inputs": {"greeting": "rolled out"},
                    "agents": ["c-1", "c-7"], "batch_size": 1}),
        )
        .await?
        .expect(StatusCode::ACCEPTED)?;
    let rollout_id = rollout["id"].as_str().context("rollout id")?.to_owned();
    let got = receiver.wait_for(1, LIMIT).await?;
    let event = got[0].verify(HOOK_SECRET)?;
    ensure!(
        event["event"] == "rollout.succeeded" && event["data"]["rollout_id"] == rollout_id.as_str(),
        "{event}"
    );
    let done = api
        .get(&format!("/rollouts/{rollout_id}"))
        .await?
        .expect(StatusCode::OK)?;
    ensure!(done["counts"]["succeeded"] == 2, "both servers: {done}");

    // The agents' keys are on the masters of their slots, and those are two masters.
    let cluster = s.cluster.as_ref().context("a cluster stack")?;
    let m1 = cluster.master_of("outfitter:agent:{c-1}:queue")?;
    let m7 = cluster.master_of("outfitter:agent:{c-7}:queue")?;
    ensure!(m1 != m7, "c-1 and c-7 hash to different masters");
    for (master, agent) in [(m1, "c-1"), (m7, "c-7")] {
        let keys =
            cluster.nodes()[master].cli(&["KEYS", &format!("outfitter:agent:{{{agent}}}:*")])?;
        ensure!(
            keys.contains(":heartbeat"),
            "{agent}'s keys on its master: {keys}"
        );
    }

    // The master of c-1's slot dies mid-job; its replica takes over.
    let resumable = id_of(&api.create_job("e2e-resumable", "c-1", json!({})).await?)?;
    api.wait_state(&resumable, "running", LIMIT).await?;
    // Redis replicates asynchronously: what the old master acknowledged but had not yet
    // sent is lost in any failover. Wait for it, so that the test is about the programs.
    let cluster = s.cluster.as_mut().context("a cluster stack")?;
    cluster.wait_replicated(m1)?;
    cluster.kill_and_fail_over(m1)?;
    let after = id_of(
        &api.create_job(
            "e2e-hello",
            "c-1",
            json!({"greeting": "after the failover"}),
        )
        .await?,
    )?;
    let done = api.wait_terminal(&resumable, LIMIT).await?;
    ensure!(
        done["state"] == "succeeded" && done["attempts"] == 1,
        "{done}"
    );
    let events = api.events_until_terminal(&resumable, LIMIT).await?;
    ensure!(
        terminal_events(&events) == 1,
        "the job in flight ended once: {events:?}"
    );
    let done = api.wait_terminal(&after, LIMIT).await?;
    ensure!(
        done["state"] == "succeeded",
        "a job queued after the failover ran: {done}"
    );
    ensure!(
        api.log(&after).await?.contains("after the failover"),
        "its output came back"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_stream_and_survive_a_master_failover_on_a_redis_cluster() {
    let mut stack = match Stack::start_cluster(&test_bundles()).await {
        Ok(s) => s,
        Err(e) => panic!("starting the installation on a cluster: {e:#}"),
    };
    if let Err(e) = on_the_cluster(&mut stack).await {
        panic!("{e:#}\n{}", stack.diagnostics());
    }
}

/// `user` and `password` from `redis://user:password@host:port/`.
fn credentials(url: &str) -> Result<(String, String)> {
    let rest = url.split_once("://").context("a URL")?.1;
    let (userinfo, _) = rest.split_once('@').context("credentials in the URL")?;
    let (user, password) = userinfo.split_once(':').context("user:password")?;
    Ok((user.to_owned(), password.to_owned()))
}

async fn confined(s: &mut Stack) -> Result<()> {
    let runner = s.add_agent_with("c-acl", &["--redis-user"])?;
    let urls = runner.config_redis_url()?;
    let (user, password) = credentials(urls.split(',').next().context("a seed")?)?;
    runner.start()?;
    let api = s.api();
    api.wait_agent_online("c-acl", LIMIT).await?;
    let hello = id_of(
        &api.create_job("e2e-hello", "c-acl", json!({"greeting": "confined"}))
            .await?,
    )?;
    let done = api.wait_terminal(&hello, LIMIT).await?;
    ensure!(done["state"] == "succeeded", "{done}");
    let wait = id_of(&api.create_job("e2e-wait", "c-acl", json!({})).await?)?;
    api.wait_state(&wait, "running", LIMIT).await?;
    api.cancel(&wait).await?;
    ensure!(api.wait_terminal(&wait, LIMIT).await?["state"] == "canceled");

    // The user is on every node (ACLs are not replicated), and confined on each.
    let cluster = s.cluster.as_ref().context("a cluster stack")?;
    for node in cluster.nodes() {
        let cli = |args: &[&str]| -> Result<String> {
            let out = std::process::Command::new("redis-cli")
                .args([
                    "-p",
                    &node.port().to_string(),
                    "--user",
                    &user,
                    "--pass",
                    &password,
                ])
                .arg("--no-auth-warning")
                .args(args)
                .output()?;
            Ok(String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr))
        };
        ensure!(
            cli(&["PING"])?.trim() == "PONG",
            "the user exists on port {}",
            node.port()
        );
        for attempt in [
            vec!["LLEN", "outfitter:agent:{db-1}:queue"],
            vec!["HGETALL", "outfitter:tokens"],
            vec!["KEYS", "*"],
            vec!["FLUSHALL"],
            vec!["CONFIG", "GET", "*"],
            vec!["ACL", "LIST"],
        ] {
            let text = cli(&attempt)?;
            ensure!(
                text.contains("NOPERM"),
                "{attempt:?} on port {}: {text}",
                node.port()
            );
        }
    }
    s.settings.run(&["agent", "remove", "c-acl", "--force"])?;
    for node in s.cluster.as_ref().context("a cluster stack")?.nodes() {
        let gone = node.cli(&["ACL", "GETUSER", "agent-c-acl"])?;
        ensure!(gone.is_empty(), "removed from port {}: {gone}", node.port());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_with_its_own_redis_user_works_on_every_node_and_reaches_nothing_else() {
    let mut stack = match Stack::start_cluster(&test_bundles()).await {
        Ok(s) => s,
        Err(e) => panic!("starting the installation on a cluster: {e:#}"),
    };
    if let Err(e) = confined(&mut stack).await {
        panic!("{e:#}\n{}", stack.diagnostics());
    }
}
