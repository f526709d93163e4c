//! What the sandbox promises, checked on real processes: the whole tree dies at the timeout
//! (cgroups or not), an escapee that leaves the session and clears its environment dies only
//! through the cgroup, survivors only after success, drain grace, stdin at EOF, no inherited
//! fds, none of the runner's environment, memory and pids limits.
//!
//! A cgroup capability these tests need is a failure when missing (CI and the development
//! machines have writable v1 `memory` and `pids` and a v2 tree); only
//! `OUTFITTER_TEST_ALLOW_NO_CGROUPS=1` turns that into a skip, said on stderr.

mod support;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use outfitter_contract::inputs::CONTRACT_VARIABLES;
use outfitter_contract::job::JobState;
use outfitter_runner::config::Limits;
use outfitter_runner::sandbox::DRAIN_LIMIT;
use outfitter_runner::sandbox::cgroup::CgroupLayout;
use outfitter_runner::sandbox::sys::{ProcInfo, RealSys, parse_stat};
use serde_json::json;
use support::panel::{LONG, log_lines};
use support::{Panel, RedisServer, RunnerOptions, RunnerProcess, processes_of_job, wait_for};

/// Set to `1` on a host that is known to lack cgroups: the tests that need them skip, loudly.
const ALLOW_NO_CGROUPS: &str = "OUTFITTER_TEST_ALLOW_NO_CGROUPS";

fn setup(options: RunnerOptions) -> (RedisServer, Panel, RunnerProcess) {
    let redis = RedisServer::start();
    let panel = Panel::new(&redis.url());
    let runner = RunnerProcess::start(&panel, &redis.url(), options);
    (redis, panel, runner)
}

/// The cgroups the runner finds on this host, by the runner's own detection (which creates
/// only the `outfitter` parent directories, as the runner itself does).
fn host_layout() -> CgroupLayout {
    let (layout, notes) = CgroupLayout::detect(&RealSys, false);
    for n in notes {
        eprintln!("cgroups: {n}");
    }
    layout
}

/// Whether a test needing `what` runs: a missing capability fails it, unless
/// [`ALLOW_NO_CGROUPS`] says this host may lack it.
fn require(have: bool, what: &str) -> bool {
    if have {
        return true;
    }
    if std::env::var(ALLOW_NO_CGROUPS).as_deref() == Ok("1") {
        eprintln!("SKIPPED: no {what} on this host ({ALLOW_NO_CGROUPS}=1)");
        return false;
    }
    panic!("no {what} on this host; set {ALLOW_NO_CGROUPS}=1 only where that is expected");
}

/// Whether a job cgroup here really takes a memory (else pids) limit: one is created with
/// the limit written, and removed again.
fn limit_writable(memory: bool) -> bool {
    let layout = host_layout();
    if !layout.can_limit(memory) {
        return false;
    }
    let limits = Limits {
        memory_max_bytes: memory.then_some(64 << 20),
        pids_max: (!memory).then_some(50),
        ..Limits::default()
    };
    let name = format!("probe-{}-{memory}", std::process::id());
    let (cg, notes) = layout.create(&RealSys, &name, &limits);
    let removed = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(cg.remove(&RealSys));
    assert!(removed, "the probe cgroup {name} is removed");
    for n in &notes {
        eprintln!("cgroups: {n}");
    }
    notes.is_empty() && !cg.is_empty()
}

/// The job's cgroup directories (its first attempt's) are gone from every hierarchy.
fn assert_job_cgroups_removed(layout: &CgroupLayout, job: &str) {
    for dir in layout.job_dirs(&format!("{job}.1")) {
        assert!(
            !dir.exists(),
            "the job's cgroup {} is removed",
            dir.display()
        );
    }
}

/// The double-forked, environment-less `sleep 1000` of the `clean-escapee` bundle, killed
/// when the test ends whatever happened.
struct Escapee(i32);

impl Escapee {
    /// Reads the pid the bundle wrote (before the job could time out).
    fn of_job(job: &str) -> Self {
        let file = format!("/tmp/outfitter-clean-escapee-{job}.pid");
        let pid = wait_for(LONG, "the escapee's pid file", || {
            std::fs::read_to_string(&file).ok()?.trim().parse().ok()
        });
        let _ = std::fs::remove_file(&file);
        Escapee(pid)
    }

    /// The escapee while it lives (not a zombie, still our `sleep 1000`).
    fn alive(&self) -> Option<ProcInfo> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0)).ok()?;
        let info = parse_stat(&stat).filter(|p| !p.is_dead())?;
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.0)).ok()?;
        (cmdline == b"sleep\x001000\x00").then_some(info)
    }
}

impl Drop for Escapee {
    fn drop(&mut self) {
        if self.alive().is_some() {
            let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
        }
    }
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
    // Not before the timeout; the upper bound only has to tell "stopped" from the foreground
    // sleep's 50 minutes, so it leaves a busy machine plenty of room.
    assert!(
        (2000..2000 + 2000 + 15_000).contains(&took),
        "took {took} ms"
    );
    let lines = log_lines(&panel.events(&job.job_id));
    assert!(lines.contains(&"children started".to_owned()));
    // The double-forked daemon ignores SIGTERM: the kill after the grace period got it.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("timed out after 2s; stopped")
                && !l.ends_with(" 0 needed SIGKILL")),
        "{lines:?}"
    );
    assert_eq!(
        processes_of_job(&job.job_id),
        Vec::<(i32, String)>::new(),
        "{}",
        runner.stderr()
    );
    assert_job_cgroups_removed(&host_layout(), &job.job_id);
}

#[test]
fn timeout_kills_setsid_double_forked_background_and_foreground_processes() {
    if !require(!host_layout().is_none(), "writable cgroup hierarchy") {
        return;
    }
    timeout_kills_every_escapee(true);
}

/// The `clean-escapee` bundle timed out with cgroups on or off: its escapee, and the runner.
fn run_clean_escapee(cgroups: bool) -> (Escapee, RedisServer, Panel, RunnerProcess, String) {
    let (redis, panel, runner) = setup(RunnerOptions {
        cgroups,
        ..RunnerOptions::default()
    });
    let job = panel.enqueue("clean-escapee", json!({}), json!(null));
    let escapee = Escapee::of_job(&job.job_id);
    let record = panel.wait_state(&job.job_id, &[JobState::TimedOut], LONG);
    assert_eq!(record.exit_code, Some(124));
    (escapee, redis, panel, runner, job.job_id)
}

#[test]
fn an_escapee_without_the_job_marker_dies_through_the_cgroup() {
    let layout = host_layout();
    if !require(!layout.is_none(), "writable cgroup hierarchy") {
        return;
    }
    let (escapee, _redis, _panel, runner, job) = run_clean_escapee(true);
    // The job's state is written after its processes are stopped.
    assert_eq!(
        escapee.alive(),
        None,
        "pid {} survived: {}",
        escapee.0,
        runner.stderr()
    );
    assert_job_cgroups_removed(&layout, &job);
}

#[test]
fn without_cgroups_an_escapee_without_the_job_marker_survives_as_documented() {
    let (escapee, _redis, _panel, runner, _job) = run_clean_escapee(false);
    let alive = escapee
        .alive()
        .expect("nothing links the escapee to its job without the cgroup");
    // Reparented to the runner (the subreaper), yet neither in the job's group nor marked.
    assert_eq!(alive.ppid, runner.pid() as i32);
    let environ = std::fs::read(format!("/proc/{}/environ", escapee.0)).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    // `env -i` left nothing of the job's environment (sh sets PWD itself).
    assert!(
        environ
            .split('\0')
            .all(|e| e.is_empty() || e.starts_with("PWD=")),
        "{environ:?}"
    );
    // `escapee` is killed when it drops, here or on a failed assertion above.
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
    // The daemon holds stdout open: the drain grace ended the job, not the drain limit.
    let took = record.duration_ms().unwrap();
    assert!(took < DRAIN_LIMIT.as_millis() as i64, "took {took} ms");
    let lines = log_lines(&panel.events(&job.job_id));
    assert!(
        lines.contains(&"output still open 1s after the script exited; no longer read".to_owned()),
        "{lines:?}"
    );
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
    let record = panel.wait_state(
        &job.job_id,
        &[JobState::Succeeded, JobState::TimedOut],
        LONG,
    );
    // A `read` waiting on an inherited stdin would run into the bundle's 10 s timeout.
    assert_eq!(record.state, JobState::Succeeded, "read did not wait");
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
        // Only contract and lifecycle variables, plus what bash and env set themselves.
        let bash_own = ["PWD", "SHLVL", "_"];
        assert!(
            CONTRACT_VARIABLES.contains(&name)
                || outfitter_contract::lifecycle::LIFECYCLE_VARIABLES.contains(&name)
                || bash_own.contains(&name),
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

#[test]
fn memory_limit_stops_a_script_that_exceeds_it() {
    if !require(limit_writable(true), "writable memory controller") {
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
    if !require(limit_writable(false), "writable pids controller") {
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
