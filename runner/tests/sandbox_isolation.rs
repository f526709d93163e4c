//! What the sandbox promises, checked on real processes: the whole tree dies at the timeout
//! (cgroups or not), survivors only after success, drain grace, stdin at EOF, no inherited fds,
//! none of the runner's environment.

mod support;

use std::time::Duration;

use outfitter_contract::inputs::CONTRACT_VARIABLES;
use outfitter_contract::job::JobState;
use serde_json::json;
use support::panel::{LONG, log_lines};
use support::{Panel, RedisServer, RunnerOptions, RunnerProcess, processes_of_job};

fn setup(options: RunnerOptions) -> (RedisServer, Panel, RunnerProcess) {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let runner = RunnerProcess::start(&panel, &redis.url(), options);
    (redis, panel, runner)
}

fn cgroups_available() -> bool {
    std::path::Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists()
        || std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// setsid sleep, a double-forked daemon ignoring SIGTERM, a background child and a foreground
/// sleep: 124 within timeout (2 s) + kill grace (2 s) + slack, and nothing of the tree left.
fn timeout_kills_every_escapee(cgroups: bool) {
    let (_redis, panel, runner) = setup(RunnerOptions {
        cgroups,
        ..RunnerOptions::default()
    });
    let job = panel.enqueue("escapees", json!({}), json!(null));
    let record = panel.wait_state(&job.job_id, &[JobState::TimedOut], LONG);
    assert_eq!(record.exit_code, Some(124));
    let took = record.duration_ms().unwrap();
    assert!(
        (2000..=2000 + 2000 + 1500).contains(&took),
        "took {took} ms"
    );
    assert!(log_lines(&panel.events(&job.job_id)).contains(&"children started".to_owned()));
    assert_eq!(
        processes_of_job(&job.job_id),
        Vec::<(i32, String)>::new(),
        "{}",
        runner.stderr()
    );
    let cgroup_dir =
        std::path::Path::new("/sys/fs/cgroup/unified/outfitter").join(format!("{}.1", job.job_id));
    assert!(!cgroup_dir.exists(), "the job's cgroup is removed");
}

#[test]
fn timeout_kills_setsid_double_forked_background_and_foreground_processes() {
    if !cgroups_available() {
        eprintln!(
            "no cgroups here: the no-cgroup test below covers the process group and subreaper path"
        );
    }
    timeout_kills_every_escapee(true);
}

#[test]
fn timeout_without_cgroups_still_kills_every_escapee() {
    timeout_kills_every_escapee(false);
}

#[test]
fn failed_script_leaves_nothing_behind() {
    let (_redis, panel, _runner) = setup(RunnerOptions::default());
    let job = panel.enqueue("fails-with-child", json!({}), json!(null));
    let record = panel.wait_state(&job.job_id, &[JobState::Failed], LONG);
    assert!(record.survivors.is_empty());
    assert!(
        processes_of_job(&job.job_id).is_empty(),
        "{:?}",
        processes_of_job(&job.job_id)
    );
}

#[test]
fn successful_script_leaving_a_daemon_completes_within_the_drain_grace_and_reports_it() {
    let (_redis, panel, _runner) = setup(RunnerOptions {
        drain_grace_seconds: 1,
        ..RunnerOptions::default()
    });
    let job = panel.enqueue("leaves-daemon", json!({}), json!(null));
    let record = panel.wait_state(&job.job_id, &[JobState::Succeeded], LONG);
    let took = record.duration_ms().unwrap();
    assert!(took < 1000 + 1500, "took {took} ms");
    assert_eq!(record.survivors.len(), 1, "{:?}", record.survivors);
    assert!(
        record.survivors[0].contains("sleep 600"),
        "{:?}",
        record.survivors
    );
    let alive = processes_of_job(&job.job_id);
    assert_eq!(alive.len(), 1, "the survivor is left alone: {alive:?}");
    support::kill_processes_of_job(&job.job_id);
}

#[test]
fn script_reads_eof_on_stdin_sees_only_fds_0_to_2_and_none_of_the_runner_environment() {
    let canary = "canary-secret-5b1f";
    let (_redis, panel, runner) = setup(RunnerOptions {
        env: vec![("CANARY_SECRET".into(), canary.into())],
        leak_fd: Some(9),
        ..RunnerOptions::default()
    });
    let job = panel.enqueue("hygiene", json!({}), json!(null));
    let record = panel.wait_state(&job.job_id, &[JobState::Succeeded], Duration::from_secs(10));
    assert!(record.duration_ms().unwrap() < 5000, "read did not wait");
    let lines = log_lines(&panel.events(&job.job_id));
    assert!(lines.contains(&"stdin: eof".to_owned()), "{lines:?}");
    assert!(lines.contains(&"fds: 0 1 2 ".to_owned()), "{lines:?}");
    // The runner itself holds fd 9: proof that the test would catch a leak.
    assert!(std::fs::read_link(format!("/proc/{}/fd/9", runner.pid())).is_ok());
    let env: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("env: "))
        .collect();
    assert!(!env.is_empty());
    for entry in &env {
        assert!(
            !entry.contains(canary),
            "runner environment leaked: {entry}"
        );
        let name = entry.split('=').next().unwrap();
        // Only contract variables, plus what bash and env set themselves.
        let bash_own = ["PWD", "SHLVL", "_"];
        assert!(
            CONTRACT_VARIABLES.contains(&name) || bash_own.contains(&name),
            "unexpected variable {entry}"
        );
    }
    for expected in [
        "DEBIAN_FRONTEND=noninteractive",
        "PROVISIONING_JOB=true",
        "HOME=/root",
        "LANG=C.UTF-8",
    ] {
        assert!(env.contains(&expected), "{expected} missing: {env:?}");
    }
    assert!(env.contains(&format!("JOB_ID={}", job.job_id).as_str()));
    assert!(env.contains(&"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
}

fn writable_controller(v1: &str, v2_file: &str) -> bool {
    let v1_ok = std::path::Path::new("/sys/fs/cgroup")
        .join(v1)
        .join("cgroup.procs")
        .exists();
    let v2_ok = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.contains(v2_file));
    v1_ok || v2_ok
}

#[test]
fn memory_limit_stops_a_script_that_exceeds_it() {
    if !writable_controller("memory", "memory") {
        eprintln!("no memory controller on this host: nothing to enforce the limit with");
        return;
    }
    let (_redis, panel, _runner) = setup(RunnerOptions {
        memory_max_mb: Some(64),
        ..RunnerOptions::default()
    });
    let job = panel.enqueue("hungry", json!({"want": "memory"}), json!(null));
    let record = panel.wait_state(&job.job_id, &[JobState::Failed, JobState::Succeeded], LONG);
    assert_eq!(record.state, JobState::Failed, "{:?}", record.last_lines);
    assert_eq!(
        record.exit_code,
        Some(137),
        "killed by the OOM killer: {:?}",
        record.last_lines
    );
    assert!(
        !log_lines(&panel.events(&job.job_id))
            .iter()
            .any(|l| l.starts_with("allocated"))
    );
    assert!(processes_of_job(&job.job_id).is_empty());
}

#[test]
fn pids_limit_stops_a_script_that_forks_too_much() {
    if !writable_controller("pids", "pids") {
        eprintln!("no pids controller on this host: nothing to enforce the limit with");
        return;
    }
    let (_redis, panel, _runner) = setup(RunnerOptions {
        pids_max: Some(50),
        ..RunnerOptions::default()
    });
    let job = panel.enqueue("hungry", json!({"want": "processes"}), json!(null));
    let record = panel.wait_state(&job.job_id, &[JobState::Failed, JobState::Succeeded], LONG);
    assert_eq!(record.state, JobState::Failed, "{:?}", record.last_lines);
    assert!(
        record.last_lines.iter().any(|l| l.contains("fork")),
        "{:?}",
        record.last_lines
    );
    assert!(
        processes_of_job(&job.job_id).is_empty(),
        "the failed job's processes are killed"
    );
}
