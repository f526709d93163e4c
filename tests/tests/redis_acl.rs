//! A runner whose Redis user is confined to its own agent's keys and channels (the ACL line
//! docs/operations.md recommends) still does everything a runner does, and can reach
//! nothing else.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use outfitter_tests::Stack;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(90);
const PASSWORD: &str = "e2e-agent-password-0123456789";

fn id_of(job: &Value) -> Result<String> {
    job["id"]
        .as_str()
        .map(str::to_owned)
        .context("job without an id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_confined_to_its_own_keys_by_a_redis_acl_still_runs_jobs() {
    Stack::scenario(async |s| {
        // The line from docs/operations.md, for agent web-1.
        s.redis.cli(&[
            "ACL",
            "SETUSER",
            "agent-web-1",
            "on",
            &format!(">{PASSWORD}"),
            "resetkeys",
            "~outfitter:agent:{web-1}:*",
            "resetchannels",
            "&outfitter:agent:{web-1}:*",
            "+@all",
            "-@dangerous",
        ])?;
        let confined_url = format!(
            "redis://agent-web-1:{PASSWORD}@127.0.0.1:{}/",
            s.redis.port()
        );
        let runner = s.add_agent("web-1")?;
        runner.set_env("OUTFITTER_REDIS_URL", &confined_url);
        runner.start()?;
        let api = s.api();
        api.wait_agent_online("web-1", LIMIT).await?;

        // Run, retry (the scheduled set), cancel (the control channel).
        let hello = id_of(
            &api.create_job("e2e-hello", "web-1", json!({"greeting": "Hi"}))
                .await?,
        )?;
        let flaky = id_of(&api.create_job("e2e-flaky", "web-1", json!({})).await?)?;
        let done = api.wait_terminal(&hello, LIMIT).await?;
        ensure!(done["state"] == "succeeded", "{done}");
        let done = api.wait_terminal(&flaky, LIMIT).await?;
        ensure!(
            done["state"] == "succeeded" && done["attempts"] == 3,
            "{done}"
        );
        let wait = id_of(&api.create_job("e2e-wait", "web-1", json!({})).await?)?;
        api.wait_state(&wait, "running", LIMIT).await?;
        api.cancel(&wait).await?;
        let done = api.wait_terminal(&wait, LIMIT).await?;
        ensure!(done["state"] == "canceled", "{done}");

        // And the same credentials reach nothing outside the agent's own keys.
        let port = s.redis.port().to_string();
        for attempt in [
            vec!["HGETALL", "outfitter:tokens"],
            vec!["LPUSH", "outfitter:agent:{db-1}:queue", "forged"],
            vec!["PUBLISH", "outfitter:agent:{db-1}:control", "{}"],
        ] {
            let out = std::process::Command::new("redis-cli")
                .args([
                    "-p",
                    &port,
                    "--user",
                    "agent-web-1",
                    "--pass",
                    PASSWORD,
                    "--no-auth-warning",
                ])
                .args(&attempt)
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            ensure!(
                text.contains("NOPERM"),
                "{attempt:?} must be refused, got: {text}"
            );
        }
        Ok(())
    })
    .await;
}
