//! Output is read concurrently in bounded chunks: no deadlock on a full stderr pipe, bounded
//! runner memory on a 200 MB line or a 2 GB flood, stored output capped, 100k lines fast.

mod support;

use std::time::{Duration, Instant};

use outfitter_contract::event::{EventBody, OutputStream};
use outfitter_contract::job::JobState;
use serde_json::json;
use support::panel::log_lines;
use support::{Panel, RedisServer, RunnerOptions, RunnerProcess, vm_hwm_kib};

/// The bound docs/runner.md states for the runner's peak memory (VmHWM).
const RUNNER_PEAK_KIB: u64 = 64 * 1024;

fn setup(options: RunnerOptions) -> (RedisServer, Panel, RunnerProcess) {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let runner = RunnerProcess::start(&panel, &redis.url(), options);
    (redis, panel, runner)
}

#[test]
fn megabyte_on_stderr_with_stdout_finishes_without_deadlock() {
    let (_redis, panel, _runner) = setup(RunnerOptions::default());
    let job = panel.enqueue("noisy", json!({}), json!(null));
    panel.wait_state(&job.job_id, &[JobState::Succeeded], Duration::from_secs(30));
    let events = panel.events(&job.job_id);
    let lines = log_lines(&events);
    assert!(lines.contains(&"out 1000".to_owned()) && lines.contains(&"after".to_owned()));
    let pieces: Vec<usize> = events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Log {
                stream: OutputStream::Stderr,
                line,
            } => Some(line.len()),
            _ => None,
        })
        .collect();
    assert_eq!(
        pieces.iter().sum::<usize>(),
        1024 * 1024,
        "the whole megabyte arrived"
    );
    assert!(
        pieces.iter().all(|&n| n <= 16 * 1024),
        "lines are split at 16 KiB"
    );
}

/// Bytes of output stored as log events (script output only).
fn stored_output(panel: &Panel, job: &str) -> (usize, Vec<String>) {
    let mut bytes = 0;
    let mut notes = Vec::new();
    for e in panel.events(job) {
        if let EventBody::Log { stream, line } = e.body {
            match stream {
                OutputStream::Runner => notes.push(line),
                _ => bytes += line.len(),
            }
        }
    }
    (bytes, notes)
}

#[test]
fn a_200_mb_line_keeps_runner_memory_bounded_and_stored_output_capped() {
    let (_redis, panel, runner) = setup(RunnerOptions::default());
    let job = panel.enqueue("long-line", json!({}), json!(null));
    panel.wait_state(
        &job.job_id,
        &[JobState::Succeeded],
        Duration::from_secs(120),
    );
    let peak = vm_hwm_kib(runner.pid()).unwrap();
    eprintln!("runner peak {peak} KiB");
    assert!(peak < RUNNER_PEAK_KIB, "runner peak {peak} KiB");
    let (bytes, notes) = stored_output(&panel, &job.job_id);
    assert_eq!(bytes, 16 * 1024 * 1024, "exactly the default cap is stored");
    assert!(
        notes.iter().any(|n| n.contains("output limit")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("bytes of output were discarded")),
        "{notes:?}"
    );
    let log = std::fs::metadata(runner.log_dir().join(format!("{}.log", job.job_id)))
        .unwrap()
        .len();
    assert!(log < 17 * 1024 * 1024, "log file {log} bytes");
}

#[test]
fn a_2_gb_flood_keeps_runner_memory_bounded_and_stored_output_capped() {
    let cap = 2 * 1024 * 1024;
    let (_redis, panel, runner) = setup(RunnerOptions {
        output_max_bytes: Some(cap),
        ..RunnerOptions::default()
    });
    let job = panel.enqueue("flood", json!({}), json!(null));
    let record = panel.wait_state(
        &job.job_id,
        &[JobState::Succeeded, JobState::Failed],
        Duration::from_secs(240),
    );
    assert_eq!(record.state, JobState::Succeeded, "{:?}", record.last_lines);
    let peak = vm_hwm_kib(runner.pid()).unwrap();
    eprintln!("runner peak {peak} KiB");
    assert!(peak < RUNNER_PEAK_KIB, "runner peak {peak} KiB");
    let (bytes, notes) = stored_output(&panel, &job.job_id);
    // Newlines are not stored, so a little under the cap.
    assert!(
        bytes as u64 <= cap && bytes as u64 > cap * 9 / 10,
        "{bytes}"
    );
    assert!(
        notes.iter().any(|n| n.contains("output limit")),
        "{notes:?}"
    );
}

#[test]
fn a_hundred_thousand_lines_arrive_in_order() {
    let (_redis, panel, _runner) = setup(RunnerOptions::default());
    let started = Instant::now();
    let job = panel.enqueue("many-lines", json!({}), json!(null));
    // How fast is measured in docs/benchmarks.md; here a generous deadline only, so a
    // busy machine does not fail the test.
    panel.wait_state(
        &job.job_id,
        &[JobState::Succeeded],
        Duration::from_secs(120),
    );
    let took = started.elapsed();
    let lines = log_lines(&panel.events(&job.job_id));
    let expected: Vec<String> = (1..=100_000).map(|n| n.to_string()).collect();
    let first_difference = lines.iter().zip(&expected).position(|(a, b)| a != b);
    assert!(
        lines.len() == expected.len() && first_difference.is_none(),
        "{} lines, first difference at {first_difference:?}",
        lines.len()
    );
    eprintln!("100k lines in {took:?}");
}
