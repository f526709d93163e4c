//! The runner's metrics: `/metrics` on `metrics_bind` counts what the runner did, nothing
//! listens without the setting, Redis failures are counted, and the heartbeat carries the
//! same numbers for the panel.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use outfitter_contract::host::{HostFacts, RunnerStats};
use outfitter_contract::job::JobState;
use outfitter_test_support::free_port;
use serde_json::json;
use support::panel::LONG;
use support::{Panel, RedisServer, RunnerOptions, RunnerProcess, wait_for};

/// `GET path` over plain HTTP/1.1: the status code and the body.
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// Every sample of a scrape, by `name{labels}` as written.
fn scrape(addr: SocketAddr) -> Option<HashMap<String, f64>> {
    let (status, body) = get(addr, "/metrics").ok()?;
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "a complete exposition: {body}");
    Some(
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .map(|(k, v)| (k.to_owned(), v.parse().expect("a number")))
            .collect(),
    )
}

fn sample(m: &HashMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

fn metrics_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A runner with its metrics listener on a free port, and that port.
fn runner_with_metrics(panel: &Panel, redis: &RedisServer) -> (SocketAddr, RunnerProcess) {
    let addr = metrics_addr();
    let runner = RunnerProcess::start(
        panel,
        &redis.url(),
        RunnerOptions {
            metrics_bind: Some(addr),
            ..RunnerOptions::default()
        },
    );
    (addr, runner)
}

fn heartbeat_stats(panel: &Panel) -> Option<RunnerStats> {
    let facts: HostFacts = serde_json::from_value(panel.wait_heartbeat(LONG)).ok()?;
    facts.runner
}

/// Inodes of the TCP sockets a process listens on (from its fds and its net namespace).
fn listening_sockets(pid: u32) -> Vec<String> {
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_string_lossy()
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .collect();
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    // st 0A is LISTEN; field 9 is the inode.
                    (f.get(3) == Some(&"0A")).then(|| f.get(9).map(|i| (*i).to_owned()))?
                })
                .collect::<Vec<_>>()
        })
        .filter(|inode| fds.contains(inode))
        .collect()
}

#[test]
fn scrape_counts_one_success_and_one_failure_and_the_heartbeat_carries_them() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let (addr, runner) = runner_with_metrics(&panel, &redis);
    let before = wait_for(LONG, "the first scrape", || scrape(addr));
    assert_eq!(
        sample(
            &before,
            "outfitter_runner_jobs_total{outcome=\"succeeded\"}"
        ),
        0.0
    );
    assert_eq!(
        sample(
            &before,
            &format!(
                "outfitter_runner_build_info{{version=\"{}\",agent=\"test-agent\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0,
        "{before:?}"
    );
    assert!(before.contains_key("process_resident_memory_bytes"));

    let ok = panel.enqueue("happy", json!({"greeting": "hi"}), json!(null));
    panel.wait_state(&ok.job_id, &[JobState::Succeeded], LONG);
    let bad = panel.enqueue("exit-code", json!({"code": 1}), json!(null));
    panel.wait_state(&bad.job_id, &[JobState::Failed], LONG);

    // The counters move just after the result is delivered.
    let after = wait_for(LONG, "both jobs counted", || {
        let m = scrape(addr)?;
        (sample(&m, "outfitter_runner_jobs_total{outcome=\"failed\"}") == 1.0).then_some(m)
    });
    let s = |k: &str| sample(&after, k);
    assert_eq!(s("outfitter_runner_jobs_total{outcome=\"succeeded\"}"), 1.0);
    assert_eq!(s("outfitter_runner_jobs_total{outcome=\"failed\"}"), 1.0);
    assert_eq!(s("outfitter_runner_jobs_total{outcome=\"rejected\"}"), 0.0);
    assert_eq!(
        s("outfitter_runner_job_duration_seconds_count{outcome=\"succeeded\"}"),
        1.0
    );
    assert_eq!(
        s("outfitter_runner_job_duration_seconds_count{outcome=\"failed\"}"),
        1.0
    );
    assert_eq!(s("outfitter_runner_spawn_latency_seconds_count"), 2.0);
    let spawn_sum = s("outfitter_runner_spawn_latency_seconds_sum");
    assert!(spawn_sum > 0.0 && spawn_sum < 10.0, "{spawn_sum}");
    assert_eq!(s("outfitter_runner_jobs_running"), 0.0);
    assert_eq!(s("outfitter_runner_outbox_depth"), 0.0);
    let redis_errors: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("outfitter_runner_redis_errors_total"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(redis_errors, 0.0, "{after:?}");
    assert_eq!(get(addr, "/").unwrap().0, 404);

    let stats = wait_for(LONG, "the counts in the heartbeat", || {
        heartbeat_stats(&panel).filter(|s| s.jobs_failed == 1)
    });
    assert_eq!(
        (stats.jobs_succeeded, stats.jobs_failed, stats.jobs_retried),
        (1, 1, 0)
    );
    assert_eq!(
        (stats.jobs_running, stats.outbox_depth, stats.redis_errors),
        (0, 0, 0)
    );
    assert!(stats.last_job_ms.is_some() && stats.started_at > 0);
    assert!(runner.stderr().contains("serving /metrics"));
}

#[test]
fn without_metrics_bind_nothing_listens() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let runner = RunnerProcess::start(&panel, &redis.url(), RunnerOptions::default());
    panel.wait_heartbeat(LONG);
    let job = panel.enqueue("happy", json!({"greeting": "hi"}), json!(null));
    panel.wait_state(&job.job_id, &[JobState::Succeeded], LONG);
    assert_eq!(listening_sockets(runner.pid()), Vec::<String>::new());
    assert!(!runner.stderr().contains("serving /metrics"));
    // The heartbeat has the counts all the same.
    let stats = wait_for(LONG, "the count in the heartbeat", || {
        heartbeat_stats(&panel).filter(|s| s.jobs_succeeded == 1)
    });
    assert_eq!(stats.jobs_failed, 0);
}

#[test]
fn the_listener_is_the_runners_only_listening_socket() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let (addr, runner) = runner_with_metrics(&panel, &redis);
    wait_for(LONG, "the first scrape", || scrape(addr));
    assert_eq!(listening_sockets(runner.pid()).len(), 1);
}

#[test]
fn redis_errors_are_counted_while_redis_is_away() {
    let mut redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let (addr, _runner) = runner_with_metrics(&panel, &redis);
    panel.wait_heartbeat(LONG);
    redis.stop();
    // Taking jobs and the tick (retry promotion) both notice, each under its own `op`.
    wait_for(LONG, "fetch and tick errors counted", || {
        let m = scrape(addr)?;
        let n = |op: &str| {
            sample(
                &m,
                &format!("outfitter_runner_redis_errors_total{{op=\"{op}\"}}"),
            )
        };
        (n("fetch") >= 1.0 && n("tick") >= 1.0).then_some(())
    });
    redis.restart().unwrap();
    // Back: the heartbeat reports the errors counted meanwhile.
    let stats = wait_for(LONG, "errors in the heartbeat", || {
        heartbeat_stats(&panel).filter(|s| s.redis_errors >= 2)
    });
    assert_eq!(stats.outbox_depth, 0);
}
