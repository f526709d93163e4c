//! Panel and runner on a Redis they reach only over TLS (`rediss://`, a CA of the test's own,
//! and client certificates the server demands): a job is queued, run, streamed and
//! canceled as on plain Redis; every connection of both programs is on the TLS port; a
//! client without a certificate or trusting another CA gets nowhere; and a TLS file beside a
//! plain URL is refused at start, naming the setting.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use outfitter_tests::Stack;
use outfitter_tests::paths::run_retry_cancel;
use outfitter_tests::stack::{test_bundles, tls_env};

const LIMIT: Duration = Duration::from_secs(90);

/// A PING over TLS from this test with the given trust and client certificate.
async fn ping(
    url: &str,
    root: &std::path::Path,
    client: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<String> {
    outfitter_test_support::install_tls_provider();
    let certs = redis::TlsCertificates {
        client_tls: match client {
            Some((cert, key)) => Some(redis::ClientTlsConfig {
                client_cert: std::fs::read(cert)?,
                client_key: std::fs::read(key)?,
            }),
            None => None,
        },
        root_cert: Some(std::fs::read(root)?),
    };
    let client = redis::Client::build_with_tls(url, certs)?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(10),
        client.get_multiplexed_async_connection(),
    )
    .await
    .context("TLS connect timed out")??;
    Ok(redis::cmd("PING").query_async(&mut conn).await?)
}

async fn over_tls(s: &mut Stack) -> Result<()> {
    let certs = s.certs.clone().context("the TLS stack's certificates")?;
    let tls_url = s.redis().tls_url().context("a TLS Redis")?;
    let tls_port = s.redis().tls_port().context("a TLS port")?;

    let runner = s.add_agent("tls-1")?;
    for (name, value) in tls_env(&certs) {
        runner.set_env(name, &value);
    }
    runner.start()?;
    let api = s.api();
    api.wait_agent_online("tls-1", LIMIT).await?;

    // Queue, run, stream, retry and cancel: the whole path over TLS.
    run_retry_cancel(&api, "tls-1", "Hi over TLS", LIMIT).await?;

    // Every client but this one (on the plain port, for the look) is on the TLS port.
    let clients = s.redis().cli(&["CLIENT", "LIST"])?;
    let tls_addr = format!("laddr=127.0.0.1:{tls_port}");
    let others: Vec<&str> = clients
        .lines()
        .filter(|l| !l.contains("cmd=client|list"))
        .collect();
    ensure!(
        others.len() >= 2,
        "panel and runner are connected: {clients}"
    );
    for line in &others {
        ensure!(
            line.contains(&tls_addr),
            "a client off the TLS port: {line}"
        );
    }

    // The server wants a certificate; and the programs' CA is what makes it trusted.
    let good = ping(
        &tls_url,
        &certs.ca,
        Some((&certs.client_cert, &certs.client_key)),
    )
    .await?;
    ensure!(good == "PONG", "{good}");
    if let Ok(pong) = ping(&tls_url, &certs.ca, None).await {
        bail!("a client without a certificate was let in: {pong}");
    }
    if let Ok(pong) = ping(
        &tls_url,
        &certs.other_ca,
        Some((&certs.client_cert, &certs.client_key)),
    )
    .await
    {
        bail!("a server the CA did not sign was trusted: {pong}");
    }

    // A TLS file beside a plain URL is a mistake the panel names before doing anything.
    let out = s
        .settings
        .command()
        .env("OUTFITTER_REDIS_URL", s.redis().url())
        .args(["token", "add", "--name", "tls-probe", "--role", "viewer"])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "the panel started with a TLS file and redis://"
    );
    ensure!(
        stderr.contains("redis_ca_file is set but redis_url") && stderr.contains("not rediss://"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panel_and_runner_work_over_tls_with_client_certificates() {
    let mut stack = match Stack::start_tls(&test_bundles()).await {
        Ok(s) => s,
        Err(e) => panic!("starting the installation on a TLS Redis: {e:#}"),
    };
    if let Err(e) = over_tls(&mut stack).await {
        panic!("{e:#}\n{}", stack.diagnostics());
    }
}
