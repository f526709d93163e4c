//! A runner whose Redis user is confined to its own agent's keys and channels still does
//! everything a runner does, and can reach nothing else: with the ACL line docs/operations.md
//! shows, and with the user `agent add --redis-user` makes (whose password a rotation
//! changes and whose removal deletes it).

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
        s.redis().cli(&[
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
            s.redis().port()
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
        let port = s.redis().port().to_string();
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

/// `user` and `password` from `redis://user:password@host:port/`.
fn credentials(url: &str) -> Result<(String, String)> {
    let rest = url.split_once("://").context("a URL")?.1;
    let (userinfo, _) = rest.split_once('@').context("credentials in the URL")?;
    let (user, password) = userinfo.split_once(':').context("user:password")?;
    Ok((user.to_owned(), password.to_owned()))
}

/// `redis-cli` as `user`; what it printed, stdout and stderr.
fn cli_as(port: u16, user: &str, password: &str, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &port.to_string(),
            "--user",
            user,
            "--pass",
            password,
            "--no-auth-warning",
        ])
        .args(args)
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_add_with_a_redis_user_confines_the_runner_and_rotation_and_removal_follow() {
    Stack::scenario(async |s| {
        let port = s.redis().port();
        let runner = s.add_agent_with("web-1", &["--redis-user"])?;
        let url = runner.config_redis_url()?;
        let (user, password) = credentials(&url)?;
        ensure!(user == "agent-web-1", "{url}");
        runner.start()?;
        let api = s.api();
        api.wait_agent_online("web-1", LIMIT).await?;

        // Everything a runner does: run, retry, cancel, heartbeats with their history.
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
        // Another agent's job keys (ACL checks the name, whether or not the key exists).
        let other = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

        // Nothing outside its own keys, nothing that walks or changes the whole server.
        let own = cli_as(
            port,
            &user,
            &password,
            &["LLEN", "outfitter:agent:{web-1}:queue"],
        )?;
        ensure!(own.trim() == "0", "its own queue: {own}");
        for attempt in [
            vec!["HGETALL", "outfitter:tokens"],
            vec!["LPUSH", "outfitter:agent:{db-1}:queue", "forged"],
            vec!["LRANGE", "outfitter:agent:{db-1}:queue", "0", "-1"],
            vec!["HGETALL", &format!("outfitter:agent:{{db-1}}:job:{other}")],
            vec![
                "XRANGE",
                &format!("outfitter:agent:{{db-1}}:job:{other}:events"),
                "-",
                "+",
            ],
            vec!["PUBLISH", "outfitter:agent:{db-1}:control", "{}"],
            vec!["KEYS", "*"],
            vec!["SCAN", "0"],
            vec!["FLUSHALL"],
            vec!["CONFIG", "GET", "*"],
            vec!["ACL", "LIST"],
            vec!["SCRIPT", "FLUSH"],
        ] {
            let text = cli_as(port, &user, &password, &attempt)?;
            ensure!(
                text.contains("NOPERM"),
                "{attempt:?} must be refused, got: {text}"
            );
        }

        // A rotation gives a new password; the old one stops working.
        let rotated = s.settings.run(&["agent", "rotate", "web-1"])?;
        ensure!(rotated.contains("agent-web-1:"), "{rotated}");
        let (_, new_password) = credentials(
            rotated
                .lines()
                .find_map(|l| l.strip_prefix("redis_url = \""))
                .context("redis_url in the rotated configuration")?,
        )?;
        ensure!(
            new_password.trim_end_matches('"') != password,
            "a new password"
        );
        let old = cli_as(port, &user, &password, &["PING"])?;
        ensure!(old.contains("WRONGPASS"), "the old password: {old}");

        // Removal deletes the user.
        s.settings.run(&["agent", "remove", "web-1", "--force"])?;
        let gone = s.redis().cli(&["ACL", "GETUSER", "agent-web-1"])?;
        ensure!(
            gone.trim().is_empty() || gone.contains("nil"),
            "user left: {gone}"
        );
        Ok(())
    })
    .await;
}
