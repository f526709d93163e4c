//! `scripts/up`, the README's first command: it starts Redis (AOF), the panel and a runner
//! registered as `local`, prints the URL and an admin login, and Ctrl-C leaves nothing
//! running. A second start on the same data directory finds everything again.
//!
//! It runs with the debug binaries the suite already built (`OUTFITTER_PROFILE=debug`,
//! `OUTFITTER_UP_NO_BUILD=1`); the release build itself is what `scripts/up` adds on top.

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use nix::sys::signal::Signal;
use outfitter_tests::Api;
use outfitter_tests::binaries::binaries;
use outfitter_tests::ports::free_port;
use outfitter_tests::process::{Daemon, processes_with};
use reqwest::StatusCode;

const LIMIT: Duration = Duration::from_secs(120);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
}

/// One run of `scripts/up` until it says it is running; returns (script, url, admin login).
fn start_up(data: &Path, port: u16, log: &Path) -> Result<(Daemon, String, String)> {
    let target_dir = binaries()
        .panel
        .parent()
        .and_then(Path::parent)
        .context("target dir")?
        .to_owned();
    // A test run started in the background of a shell without job control inherits SIGINT
    // ignored, and bash cannot trap a signal ignored on entry: give scripts/up the default
    // disposition, as a terminal would, so the Ctrl-C below reaches its trap.
    let mut cmd = Command::new("env");
    cmd.args(["--default-signal=INT", "bash"])
        .arg(repo().join("scripts/up"))
        .env("OUTFITTER_DATA_DIR", data)
        .env("OUTFITTER_BIND", format!("127.0.0.1:{port}"))
        .env("OUTFITTER_PROFILE", "debug")
        .env("OUTFITTER_UP_NO_BUILD", "1")
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("OUTFITTER_REDIS_URL");
    let mut script = Daemon::spawn("scripts/up", cmd, log)?;
    let deadline = Instant::now() + LIMIT;
    while !script.output().contains("Press Ctrl-C") {
        script.ensure_running()?;
        if Instant::now() > deadline {
            bail!(
                "scripts/up did not come up within {LIMIT:?}:\n{}",
                script.output()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = script.output();
    let field = |name: &str| {
        out.lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
            .with_context(|| format!("scripts/up printed no {name:?}:\n{out}"))
    };
    Ok((script, field("Panel:")?, field("Admin login:")?))
}

/// Ctrl-C: SIGINT to the script's foreground process group; it must stop everything.
fn ctrl_c(mut script: Daemon, data: &Path, port: u16) -> Result<()> {
    script.signal_group(Signal::SIGINT)?;
    let status = script.wait_exit(Duration::from_secs(60))?;
    let out = script.output();
    ensure!(
        status.code() == Some(130),
        "Ctrl-C exits 130, not {status}:\n{out}"
    );
    ensure!(
        out.contains("Everything stopped"),
        "it says everything stopped:\n{out}"
    );
    ensure!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the panel still listens"
    );
    let marker = data.display().to_string();
    ensure!(
        processes_with(&marker).is_empty(),
        "processes of this data dir survive"
    );
    Ok(())
}

async fn check_running(url: &str, token: &str) -> Result<()> {
    let api = Api::new(url, token);
    let agent = api.wait_agent_online("local", LIMIT).await?;
    ensure!(
        agent["facts"]["os_family"].is_string(),
        "agent local reports host facts: {agent}"
    );
    let apps = api.get("/apps").await?.expect(StatusCode::OK)?;
    ensure!(
        apps.to_string().contains("nginx"),
        "the panel serves ./installers: {apps}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_up_runs_everything_and_ctrl_c_leaves_nothing_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let port = free_port();
    let (log, log2) = (dir.path().join("up-1.log"), dir.path().join("up-2.log"));
    let result = async {
        let (script, url, token) = start_up(&data, port, &log)?;
        ensure!(
            url == format!("http://127.0.0.1:{port}"),
            "URL printed: {url}"
        );
        check_running(&url, &token).await?;
        ensure!(
            data.join("redis/appendonlydir").is_dir(),
            "Redis keeps an AOF in the data dir"
        );
        ctrl_c(script, &data, port)?;

        // Again on the same data: the same login still works, agent `local` is found again.
        let (script, url, token2) = start_up(&data, port, &log2)?;
        ensure!(token2 == token, "the admin login survives a restart");
        check_running(&url, &token).await?;
        ctrl_c(script, &data, port)
    }
    .await;
    if let Err(e) = result {
        let out = std::fs::read_to_string(&log).unwrap_or_default()
            + &std::fs::read_to_string(&log2).unwrap_or_default();
        let mut logs = String::new();
        for name in ["redis", "panel", "runner"] {
            let text =
                std::fs::read_to_string(data.join(format!("logs/{name}.log"))).unwrap_or_default();
            logs.push_str(&format!("\n----- {name}.log -----\n{text}"));
        }
        panic!("{e:#}\n----- scripts/up -----\n{out}{logs}");
    }
}
