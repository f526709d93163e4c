//! A signed job from the queue to its result: events in order, the exit-code policy with
//! retries through the scheduled set, cancel, and the per-job log file.

mod support;

use std::time::{Duration, Instant};

use outfitter_contract::event::EventBody;
use outfitter_contract::job::JobState;
use serde_json::json;
use support::panel::{LONG, log_lines, ran, states};
use support::{Panel, RedisServer, RunnerOptions, RunnerProcess};

fn setup() -> (RedisServer, Panel, RunnerProcess) {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let runner = RunnerProcess::start(&panel, &redis.url(), RunnerOptions::default());
    (redis, panel, runner)
}

#[test]
fn happy_path_job_succeeds_with_events_in_order_and_progress() {
    let (_redis, panel, runner) = setup();
    let job = panel.enqueue("happy", json!({"greeting": "Hi there"}), json!(null));
    let record = panel.wait_state(&job.job_id, &[JobState::Succeeded], LONG);
    assert!(ran(&job.job_id), "the script ran");
    assert_eq!(record.exit_code, Some(0));
    assert_eq!(record.attempts, 1);
    assert_eq!(record.progress, 100);
    assert!(record.started_at.is_some() && record.finished_at >= record.started_at);
    assert!(
        record
            .last_lines
            .iter()
            .any(|l| l.contains("greeting=Hi there attempt=1 agent=test-agent"))
    );

    let events = panel.events(&job.job_id);
    let seqs: Vec<u64> = events.iter().map(|e| e.seq.unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "seq numbers are 1, 2, 3…"
    );
    assert_eq!(
        states(&events),
        [JobState::Queued, JobState::Running, JobState::Succeeded]
    );
    let progress: Vec<u8> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Progress { percent, .. } => Some(*percent),
            _ => None,
        })
        .collect();
    assert_eq!(progress, [10, 60, 100]);
    // Progress comes between running and the end, and the output line between the first two.
    let pos =
        |pred: &dyn Fn(&EventBody) -> bool| events.iter().position(|e| pred(&e.body)).unwrap();
    let running = pos(&|b| {
        matches!(
            b,
            EventBody::State {
                state: JobState::Running,
                ..
            }
        )
    });
    let greeting =
        pos(&|b| matches!(b, EventBody::Log { line, .. } if line.starts_with("greeting=")));
    let p60 = pos(&|b| matches!(b, EventBody::Progress { percent: 60, .. }));
    let done = pos(&|b| {
        matches!(
            b,
            EventBody::State {
                state: JobState::Succeeded,
                ..
            }
        )
    });
    assert!(
        running < greeting && greeting < p60 && p60 < done,
        "{events:?}"
    );
    assert!(log_lines(&events).contains(&"to stderr".to_owned()));
    assert!(
        panel.list(&panel.names.processing()).is_empty(),
        "nothing left in processing"
    );
    let log = runner.job_log(&job.job_id);
    assert!(
        log.contains("stdout greeting=Hi there") && log.contains("stderr to stderr"),
        "{log}"
    );
}

#[test]
fn exit_two_is_retried_with_backoff_and_succeeds_on_the_third_attempt() {
    let (_redis, panel, _runner) = setup();
    let started = Instant::now();
    let job = panel.enqueue("flaky", json!({}), json!(null));
    let record = panel.wait_state(&job.job_id, &[JobState::Succeeded, JobState::Failed], LONG);
    assert_eq!(record.state, JobState::Succeeded);
    assert_eq!(record.attempts, 3);
    // Backoff 1 s, then 2 s: at least 3 s in all.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let events = panel.events(&job.job_id);
    assert_eq!(
        states(&events),
        [
            JobState::Queued,
            JobState::Running,
            JobState::Retrying,
            JobState::Running,
            JobState::Retrying,
            JobState::Running,
            JobState::Succeeded
        ]
    );
    let attempts: Vec<u32> = events
        .iter()
        .filter(|e| {
            matches!(
                e.body,
                EventBody::State {
                    state: JobState::Running,
                    ..
                }
            )
        })
        .map(|e| e.attempt)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    let retry_gaps: Vec<i64> = events
        .windows(2)
        .filter(|w| {
            matches!(
                w[0].body,
                EventBody::State {
                    state: JobState::Retrying,
                    ..
                }
            )
        })
        .map(|w| w[1].ts - w[0].ts)
        .collect();
    assert!(
        retry_gaps.len() == 2 && retry_gaps[0] >= 1000 && retry_gaps[1] >= 2000,
        "{retry_gaps:?}"
    );
    let scheduled: i64 = redis::cmd("ZCARD")
        .arg(panel.names.scheduled())
        .query(&mut panel.conn())
        .unwrap();
    assert_eq!(scheduled, 0);
}

#[test]
fn exit_one_fails_without_retry() {
    let (_redis, panel, _runner) = setup();
    let job = panel.enqueue("exit-code", json!({"code": 1}), json!(null));
    let record = panel.wait_state(&job.job_id, &[JobState::Failed], LONG);
    assert_eq!((record.exit_code, record.attempts), (Some(1), 1));
    // A job queued after it runs once the runner is done with the first: by then a retry
    // would have been scheduled.
    let next = panel.enqueue("happy", json!({}), json!(null));
    panel.wait_state(&next.job_id, &[JobState::Succeeded], LONG);
    let scheduled: i64 = redis::cmd("ZCARD")
        .arg(panel.names.scheduled())
        .query(&mut panel.conn())
        .unwrap();
    assert_eq!(scheduled, 0, "no retry is scheduled");
    assert_eq!(panel.record(&job.job_id).attempts, 1);
    assert_eq!(
        states(&panel.events(&job.job_id)),
        [JobState::Queued, JobState::Running, JobState::Failed]
    );
}

#[test]
fn exit_three_needs_attention() {
    let (_redis, panel, _runner) = setup();
    let job = panel.enqueue("exit-code", json!({"code": 3}), json!(null));
    let record = panel.wait_state(&job.job_id, &[JobState::NeedsAttention], LONG);
    assert_eq!(record.exit_code, Some(3));
    assert!(record.reason.unwrap().contains("configuration error"));
}

#[test]
fn other_exit_codes_fail() {
    let (_redis, panel, _runner) = setup();
    let job = panel.enqueue("exit-code", json!({"code": 42}), json!(null));
    let record = panel.wait_state(&job.job_id, &[JobState::Failed], LONG);
    assert_eq!(record.exit_code, Some(42));
}

#[test]
fn cancel_kills_the_tree_and_ends_canceled() {
    let (_redis, panel, _runner) = setup();
    let job = panel.enqueue("slow", json!({"ticks": 600}), json!(null));
    support::wait_for(LONG, "the first tick", || {
        log_lines(&panel.events(&job.job_id))
            .contains(&"tick 1".to_owned())
            .then_some(())
    });
    panel.cancel(&job.job_id);
    // The script would tick for 60 s; canceled, it stops long before its end.
    let record = panel.wait_state(&job.job_id, &[JobState::Canceled], LONG);
    let ticks = log_lines(&panel.events(&job.job_id))
        .iter()
        .filter(|l| l.starts_with("tick"))
        .count();
    assert!(ticks < 600, "{ticks} ticks");
    assert_eq!(record.exit_code, None);
    assert!(
        support::processes_of_job(&job.job_id).is_empty(),
        "{:?}",
        support::processes_of_job(&job.job_id)
    );
}

#[test]
fn job_canceled_while_queued_never_runs() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let job = panel.enqueue("happy", json!({}), json!(null));
    redis::cmd("HSET")
        .arg(panel.names.job(&job.job_id))
        .arg("cancel_requested")
        .arg("1")
        .query::<()>(&mut panel.conn())
        .unwrap();
    let _runner = RunnerProcess::start(&panel, &redis.url(), RunnerOptions::default());
    panel.wait_state(&job.job_id, &[JobState::Canceled], LONG);
    assert!(!ran(&job.job_id));
}

#[test]
fn heartbeat_reports_host_facts() {
    let (_redis, panel, _runner) = setup();
    let facts = panel.wait_heartbeat(LONG);
    assert_eq!(facts["agent_id"], "test-agent");
    assert!(facts["ram_mb"].as_u64().unwrap() > 0);
    assert!(!facts["os_family"].as_str().unwrap().is_empty());
    let ttl: i64 = redis::cmd("TTL")
        .arg(panel.names.heartbeat())
        .query(&mut panel.conn())
        .unwrap();
    assert!(ttl > 0 && ttl <= 20, "ttl {ttl}");
    let m = &facts["metrics"];
    assert!(m["memory"]["total_mb"].as_u64().unwrap() > 0, "{m}");
    assert!(m["processes"].as_u64().unwrap() > 1, "{m}");
    assert!(
        m["disks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["mount"] == "/"),
        "{m}"
    );
    assert!(
        m["services"]["redis"]["clients"].as_u64().unwrap() >= 1,
        "the test's Redis, asked at metrics_redis_url: {m}"
    );
    assert!(
        m["services"]["postgres"].is_null(),
        "metrics_postgres = false"
    );
}

/// (start, end) of each job's run, from its records.
fn run_window(panel: &Panel, job: &str) -> (i64, i64) {
    let r = panel.wait_state(job, &[JobState::Succeeded], LONG);
    (r.started_at.unwrap(), r.finished_at.unwrap())
}

#[test]
fn one_job_at_a_time_by_default_and_more_when_configured() {
    for (concurrency, overlap) in [(1, false), (2, true)] {
        let redis = RedisServer::start();
        let panel = Panel::new(&redis.url());
        let _runner = RunnerProcess::start(
            &panel,
            &redis.url(),
            RunnerOptions {
                concurrency,
                ..RunnerOptions::default()
            },
        );
        if overlap {
            // Two long jobs: both run at once (each would tick for a minute alone).
            let a = panel.enqueue("slow-idempotent", json!({"ticks": 600}), json!(null));
            let b = panel.enqueue("slow-idempotent", json!({"ticks": 600}), json!(null));
            support::wait_for(LONG, "both jobs running at once", || {
                [&a, &b]
                    .iter()
                    .all(|j| panel.record(&j.job_id).state == JobState::Running)
                    .then_some(())
            });
            for j in [&a, &b] {
                panel.cancel(&j.job_id);
                panel.wait_state(&j.job_id, &[JobState::Canceled], LONG);
            }
        } else {
            // One at a time: the second starts only after the first finished.
            let a = panel.enqueue("slow-idempotent", json!({"ticks": 10}), json!(null));
            let b = panel.enqueue("slow-idempotent", json!({"ticks": 10}), json!(null));
            let (a_start, a_end) = run_window(&panel, &a.job_id);
            let (b_start, b_end) = run_window(&panel, &b.job_id);
            assert!(
                a_end <= b_start || b_end <= a_start,
                "concurrency {concurrency}: a {a_start}..{a_end}, b {b_start}..{b_end}"
            );
        }
    }
}
