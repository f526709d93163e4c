//! Nothing is lost: a runner killed mid-job recovers the job at its next start (re-run when
//! idempotent, else `interrupted`); a Redis outage mid-job delays the result, it does not lose
//! it, even when the runner is killed before it could deliver it; a job claimed but never
//! started goes back to the queue; SIGTERM lets the running job finish within the grace
//! period, and stops a runner still waiting for Redis at start.

mod support;

use std::time::{Duration, Instant};

use outfitter_contract::event::{Event, EventBody};
use outfitter_contract::job::JobState;
use serde_json::json;
use support::panel::{LONG, log_lines, ran, states};
use support::{Panel, RedisServer, RunnerOptions, RunnerProcess, processes_of_job, wait_for};

fn wait_tick(panel: &Panel, job: &str, n: u32) {
    let tick = format!("tick {n}");
    wait_for(LONG, &tick, || {
        log_lines(&panel.events(job)).contains(&tick).then_some(())
    });
}

#[test]
fn runner_killed_mid_job_reruns_an_idempotent_job_after_restart() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let mut runner = RunnerProcess::start(&panel, &redis.url(), RunnerOptions::default());
    let job = panel.enqueue("slow-idempotent", json!({"ticks": 20}), json!(null));
    wait_tick(&panel, &job.job_id, 2);
    runner.kill_hard();
    assert!(
        !processes_of_job(&job.job_id).is_empty(),
        "the orphaned script still runs"
    );
    assert_eq!(panel.record(&job.job_id).state, JobState::Running);
    runner.restart();
    let record = panel.wait_state(&job.job_id, &[JobState::Succeeded], LONG);
    assert_eq!(record.attempts, 2, "re-run as a new attempt");
    let events = panel.events(&job.job_id);
    assert_eq!(
        states(&events),
        [
            JobState::Queued,
            JobState::Running,
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded
        ]
    );
    let last_run: Vec<String> = events
        .iter()
        .filter(|e| e.attempt == 2)
        .filter_map(|e| match &e.body {
            EventBody::Log { line, .. } if line.starts_with("tick") => Some(line.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        last_run.len(),
        20,
        "the second attempt ran in full: {last_run:?}"
    );
    assert!(
        processes_of_job(&job.job_id).is_empty(),
        "the first attempt's leftovers were killed"
    );
    assert!(panel.list(&panel.names.processing()).is_empty());
}

#[test]
fn runner_killed_mid_job_marks_a_non_idempotent_job_interrupted() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let mut runner = RunnerProcess::start(&panel, &redis.url(), RunnerOptions::default());
    let job = panel.enqueue("slow", json!({"ticks": 600}), json!(null));
    wait_tick(&panel, &job.job_id, 2);
    runner.kill_hard();
    runner.restart();
    let record = panel.wait_state(&job.job_id, &[JobState::Interrupted], LONG);
    assert!(record.reason.unwrap().contains("not idempotent"));
    assert!(
        processes_of_job(&job.job_id).is_empty(),
        "{:?}",
        processes_of_job(&job.job_id)
    );
    assert!(panel.list(&panel.names.processing()).is_empty());
}

#[test]
fn redis_stopped_mid_job_the_result_and_every_line_arrive_when_it_returns() {
    let mut redis = RedisServer::start_persistent();
    let panel = Panel::new(&redis.url());
    let runner = RunnerProcess::start(&panel, &redis.url(), RunnerOptions::default());
    let job = panel.enqueue("slow", json!({"ticks": 30}), json!(null));
    wait_tick(&panel, &job.job_id, 3);
    redis.stop();
    // The script goes on (about 3 s in all) and ends while Redis is down: its result is kept
    // in the outbox.
    wait_for_outbox_result(&runner);
    redis.restart().expect("redis-server restarts on its port");
    let record = panel.wait_state(&job.job_id, &[JobState::Succeeded], LONG);
    assert_eq!(record.exit_code, Some(0));
    assert_every_tick_once(&panel.events(&job.job_id));
    assert!(panel.list(&panel.names.processing()).is_empty());
    wait_for(LONG, "the outbox to empty", || {
        (std::fs::read_dir(runner.outbox_dir()).unwrap().count() == 0).then_some(())
    });
}

#[test]
fn runner_killed_with_a_result_in_the_outbox_delivers_it_exactly_once_after_restart() {
    let mut redis = RedisServer::start_persistent();
    let panel = Panel::new(&redis.url());
    let mut runner = RunnerProcess::start(&panel, &redis.url(), RunnerOptions::default());
    let job = panel.enqueue("slow", json!({"ticks": 30}), json!(null));
    wait_tick(&panel, &job.job_id, 3);
    redis.stop();
    wait_for_outbox_result(&runner);
    // A crash while the result waits: only the outbox on disk knows how the job ended.
    runner.kill_hard();
    redis.restart().expect("redis-server restarts on its port");
    assert_eq!(panel.record(&job.job_id).state, JobState::Running);
    runner.restart();
    let record = panel.wait_state(&job.job_id, &[JobState::Succeeded], LONG);
    assert_eq!(
        (record.exit_code, record.attempts),
        (Some(0), 1),
        "not re-run"
    );
    wait_for(LONG, "the outbox to empty", || {
        (std::fs::read_dir(runner.outbox_dir()).unwrap().count() == 0).then_some(())
    });
    // A later job runs after recovery: by then a second delivery would have happened.
    let next = panel.enqueue("happy", json!({}), json!(null));
    panel.wait_state(&next.job_id, &[JobState::Succeeded], LONG);
    let events = panel.events(&job.job_id);
    assert_eq!(
        states(&events),
        [JobState::Queued, JobState::Running, JobState::Succeeded],
        "one result, delivered once"
    );
    assert_every_tick_once(&events);
    assert!(panel.list(&panel.names.processing()).is_empty());
}

#[test]
fn job_claimed_but_never_started_goes_back_to_the_queue_and_runs_as_the_same_attempt() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let job = panel.enqueue("happy", json!({}), json!(null));
    // A runner took it (BLMOVE queue → processing) and died before it checked or started it.
    let moved: Option<String> = redis::cmd("LMOVE")
        .arg(panel.names.queue())
        .arg(panel.names.processing())
        .arg("RIGHT")
        .arg("LEFT")
        .query(&mut panel.conn())
        .unwrap();
    assert_eq!(moved.as_deref(), Some(job.wire.as_str()));
    let _runner = RunnerProcess::start(&panel, &redis.url(), RunnerOptions::default());
    let record = panel.wait_state(&job.job_id, &[JobState::Succeeded], LONG);
    assert_eq!(record.attempts, 1, "the same signed attempt, not a new one");
    assert_eq!(
        states(&panel.events(&job.job_id)),
        [JobState::Queued, JobState::Running, JobState::Succeeded],
        "requeued as it was: no second queued event"
    );
    assert!(ran(&job.job_id));
    assert!(panel.list(&panel.names.processing()).is_empty());
    assert!(panel.list(&panel.names.queue()).is_empty());
}

#[test]
fn sigterm_lets_the_running_job_finish_within_the_grace_period() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let mut runner = RunnerProcess::start(&panel, &redis.url(), RunnerOptions::default());
    let job = panel.enqueue("slow", json!({"ticks": 20}), json!(null));
    wait_tick(&panel, &job.job_id, 1);
    let waiting = panel.enqueue("happy", json!({}), json!(null));
    let (took, status) = runner.terminate(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "clean exit: {status:?}\n{}",
        runner.stderr()
    );
    assert!(
        took >= Duration::from_millis(1000),
        "it waited for the job: {took:?}"
    );
    assert_eq!(panel.record(&job.job_id).state, JobState::Succeeded);
    assert_eq!(
        panel.record(&waiting.job_id).state,
        JobState::Queued,
        "no new job was taken"
    );
}

#[test]
fn sigterm_stops_a_runner_still_waiting_for_an_unreachable_redis() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    // Nothing listens there: the runner keeps retrying to settle the last run.
    let unreachable = format!("redis://127.0.0.1:{}/", outfitter_test_support::free_port());
    let mut runner = RunnerProcess::start(&panel, &unreachable, RunnerOptions::default());
    wait_for(LONG, "the runner waiting for redis", || {
        runner
            .stderr()
            .contains("waiting for redis to recover the processing list")
            .then_some(())
    });
    let (took, status) = runner.terminate(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "clean exit on SIGTERM: {status:?} after {took:?}\n{}",
        runner.stderr()
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn sigterm_past_the_grace_period_kills_the_job_and_leaves_it_recoverable() {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let options = RunnerOptions {
        stop_grace_seconds: 1,
        ..RunnerOptions::default()
    };
    let mut runner = RunnerProcess::start(&panel, &redis.url(), options);
    let job = panel.enqueue("slow", json!({"ticks": 600}), json!(null));
    wait_tick(&panel, &job.job_id, 1);
    let started = Instant::now();
    let (took, status) = runner.terminate(LONG);
    assert!(status.is_some(), "the runner exited\n{}", runner.stderr());
    // The job would tick for 60 s: the runner stopped it at the grace period, not at its end.
    let ticks = log_lines(&panel.events(&job.job_id))
        .iter()
        .filter(|l| l.starts_with("tick"))
        .count();
    assert!(ticks < 600, "{ticks} ticks in {took:?}");
    assert!(
        processes_of_job(&job.job_id).is_empty(),
        "the tree was killed"
    );
    assert_eq!(
        panel.record(&job.job_id).state,
        JobState::Running,
        "no result was decided"
    );
    assert_eq!(
        panel.list(&panel.names.processing()),
        vec![job.wire.clone()]
    );
    runner.restart();
    panel.wait_state(&job.job_id, &[JobState::Interrupted], LONG);
    assert!(started.elapsed() < LONG);
}

/// A batch Redis applied but whose reply was lost is spooled with the sequence numbers it was
/// expected to get; flushing recognises what is already there and appends only the rest.
#[tokio::test]
async fn outbox_never_appends_an_event_twice_after_a_lost_reply() {
    use outfitter_contract::event::{Event, EventBody, OutputStream};
    use outfitter_runner::daemon::outbox::Outbox;
    use outfitter_runner::daemon::store::{self, Outgoing};

    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let pool = deadpool_redis::Config::from_url(redis.url())
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap();
    let job = "0192d3a0-0000-7000-8000-0000000000aa";
    let line = |n: u64| Outgoing {
        e: Event::new(
            n as i64,
            1,
            EventBody::Log {
                stream: OutputStream::Stdout,
                line: format!("line {n}"),
            },
        )
        .to_unsequenced_json(),
        f: Vec::new(),
        seq: Some(n),
    };
    let first: Vec<Outgoing> = (1..=3).map(line).collect();
    let mut conn = pool.get().await.unwrap();
    assert_eq!(
        store::append_events(&mut conn, &panel.names, job, &first)
            .await
            .unwrap(),
        [1, 2, 3]
    );
    // The writer never saw that reply: it spooled the batch, then went on spooling.
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path().to_path_buf()).unwrap();
    let spooled: Vec<Outgoing> = (1..=5).map(line).collect();
    outbox.spool(job, &spooled).await.unwrap();
    outbox
        .flush_job(&pool, &panel.names, job, true)
        .await
        .unwrap();
    let lines = log_lines(&panel.events(job));
    assert_eq!(lines, ["line 1", "line 2", "line 3", "line 4", "line 5"]);
    assert!(outbox.pending_jobs().is_empty());
}

/// Waits until the runner has kept a job's result in its outbox (Redis being away).
fn wait_for_outbox_result(runner: &RunnerProcess) {
    wait_for(LONG, "the result in the outbox", || {
        std::fs::read_dir(runner.outbox_dir())
            .ok()?
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".result.json"))
            .then_some(())
    });
}

/// The `slow` bundle's 30 ticks are in the events, each once, in order.
fn assert_every_tick_once(events: &[Event]) {
    let ticks: Vec<String> = log_lines(events)
        .into_iter()
        .filter(|l| l.starts_with("tick"))
        .collect();
    let expected: Vec<String> = (1..=30).map(|n| format!("tick {n}")).collect();
    assert_eq!(ticks, expected, "every line, once, in order");
}
