//! The kill/reap decisions, against a recording double of the kernel.

use std::sync::Mutex;

use super::super::sys::SysError;
use super::super::sys_double::{FakeSys, JOB_CG, RUNNER, job_cgroup, proc};
use super::*;

fn scope(root: i32, cgroup: bool) -> JobScope {
    JobScope {
        env_marker: b"JOB_ID=j".to_vec(),
        root_pid: root,
        pgid: root,
        runner_pid: RUNNER,
        runner_pgid: RUNNER,
        cgroup: cgroup.then(|| Arc::new(job_cgroup())),
        orphans_come_to_runner: true,
    }
}

#[test]
fn group_children_and_descendants_are_members() {
    let procs = vec![
        proc(1, 0, 1),
        proc(RUNNER, 1, RUNNER),
        proc(200, RUNNER, 200),
        proc(201, 200, 200),
        proc(300, 201, 300),
        proc(400, 1, 400),
    ];
    let m = select_members(&procs, &scope(200, false), &[], |_| false);
    assert_eq!(m.into_iter().collect::<Vec<_>>(), [200, 201, 300]);
}

#[test]
fn setsid_escapee_is_found_by_its_environment_marker() {
    // Reparented to the runner (subreaper), own session and group: only the marker links it.
    let procs = vec![
        proc(RUNNER, 1, RUNNER),
        proc(200, RUNNER, 200),
        proc(500, RUNNER, 500),
        proc(501, 500, 500),
    ];
    let m = select_members(&procs, &scope(200, false), &[], |pid| pid == 500);
    assert_eq!(m.into_iter().collect::<Vec<_>>(), [200, 500, 501]);
}

#[test]
fn cgroup_members_are_members() {
    let procs = vec![proc(RUNNER, 1, RUNNER), proc(600, 1, 600)];
    let m = select_members(&procs, &scope(200, true), &[600], |_| false);
    assert_eq!(m.into_iter().collect::<Vec<_>>(), [600]);
}

#[test]
fn runner_init_and_zombies_are_never_members() {
    let mut zombie = proc(201, 200, 200);
    zombie.state = 'Z';
    let procs = vec![
        proc(1, 0, 1),
        proc(RUNNER, 1, 200),
        proc(200, RUNNER, 200),
        zombie,
    ];
    let m = select_members(&procs, &scope(200, false), &[1, RUNNER], |_| true);
    assert_eq!(m.into_iter().collect::<Vec<_>>(), [200]);
}

#[tokio::test]
async fn process_group_at_or_below_one_is_never_signalled() {
    for bad in [0, 1] {
        let sys = FakeSys {
            marked: vec![300],
            ..FakeSys::with(vec![proc(RUNNER, 1, RUNNER), proc(300, RUNNER, bad)])
        };
        let mut s = scope(300, false);
        s.pgid = bad;
        terminate(&sys, &s, Duration::from_millis(50)).await;
        let calls = sys.calls();
        assert!(calls.iter().all(|c| !c.starts_with("killpg")), "{calls:?}");
        assert!(
            calls
                .iter()
                .all(|c| !c.starts_with(&format!("kill {bad} "))),
            "{calls:?}"
        );
        assert!(calls.contains(&"kill 300 SIGTERM".to_owned()), "{calls:?}");
    }
}

#[tokio::test]
async fn cooperative_tree_gets_sigterm_only() {
    let sys = FakeSys::with(vec![
        proc(RUNNER, 1, RUNNER),
        proc(200, RUNNER, 200),
        proc(201, 200, 200),
    ]);
    let t = terminate(&sys, &scope(200, false), Duration::from_secs(5)).await;
    assert_eq!((t.found, t.killed), (2, 0));
    assert!(
        sys.calls().iter().all(|c| !c.contains("SIGKILL")),
        "{:?}",
        sys.calls()
    );
    assert!(sys.alive().iter().all(|p| *p == RUNNER));
}

#[tokio::test]
async fn stubborn_process_gets_sigkill_after_the_grace_period() {
    let sys = FakeSys {
        stubborn: vec![201],
        ..FakeSys::with(vec![
            proc(RUNNER, 1, RUNNER),
            proc(200, RUNNER, 200),
            proc(201, 200, 200),
        ])
    };
    let started = std::time::Instant::now();
    let t = terminate(&sys, &scope(200, false), Duration::from_millis(200)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "grace was honoured"
    );
    assert_eq!((t.found, t.killed), (2, 1));
    assert!(t.remaining.is_empty());
    let calls = sys.calls();
    let term = calls.iter().position(|c| c == "kill 201 SIGTERM").unwrap();
    let kill = calls.iter().position(|c| c == "kill 201 SIGKILL").unwrap();
    assert!(term < kill, "{calls:?}");
}

#[tokio::test]
async fn cgroup_kill_is_used_when_the_job_has_a_cgroup() {
    let sys = FakeSys {
        stubborn: vec![700],
        cgroup: Mutex::new(vec![700]),
        ..FakeSys::with(vec![proc(RUNNER, 1, RUNNER), proc(700, 1, 700)])
    };
    let t = terminate(&sys, &scope(200, true), Duration::from_millis(10)).await;
    assert!(t.remaining.is_empty());
    assert!(
        sys.calls()
            .contains(&format!("write {JOB_CG}/cgroup.kill 1")),
        "{:?}",
        sys.calls()
    );
}

#[tokio::test]
async fn empty_process_group_is_not_signalled_again() {
    // The group's processes are gone; its id may belong to someone else by now.
    let sys = FakeSys {
        marked: vec![800],
        ..FakeSys::with(vec![proc(RUNNER, 1, RUNNER), proc(800, RUNNER, 800)])
    };
    terminate(&sys, &scope(200, false), Duration::from_millis(10)).await;
    assert!(
        sys.calls().iter().all(|c| !c.starts_with("killpg 200")),
        "{:?}",
        sys.calls()
    );
}

#[test]
fn survivors_are_described_not_killed() {
    let sys = FakeSys::with(vec![proc(RUNNER, 1, RUNNER), proc(900, RUNNER, 200)]);
    let d = describe_members(&sys, &scope(200, false)).unwrap();
    assert_eq!(d, ["900 p900"]);
    // The group lives (900 is in it): one scan, and no signal.
    assert_eq!(sys.calls(), ["scan"]);
}

#[test]
fn only_runner_children_are_checked_for_the_job_marker() {
    // 700 (a child of init) and 501 (child of a non-member) carry the marker too: neither can
    // be an escapee of this job, whose orphans all come to the runner.
    let procs = vec![
        proc(1, 0, 1),
        proc(RUNNER, 1, RUNNER),
        proc(200, RUNNER, 200),
        proc(500, RUNNER, 500),
        proc(501, 400, 501),
        proc(700, 1, 700),
    ];
    let tested = Mutex::new(Vec::new());
    let m = select_members(&procs, &scope(200, false), &[], |pid| {
        tested.lock().unwrap().push(pid);
        true
    });
    assert_eq!(m.into_iter().collect::<Vec<_>>(), [200, 500]);
    assert_eq!(*tested.lock().unwrap(), [500]);
}

#[test]
fn without_the_subreaper_every_process_is_checked_for_the_job_marker() {
    let procs = vec![proc(1, 0, 1), proc(RUNNER, 1, RUNNER), proc(700, 1, 700)];
    let mut s = scope(200, false);
    s.orphans_come_to_runner = false;
    let m = select_members(&procs, &s, &[], |pid| pid == 700);
    assert_eq!(m.into_iter().collect::<Vec<_>>(), [700]);
}

#[test]
fn survivor_scan_skipped_when_cgroup_empty_and_group_gone() {
    // The script (200) is reaped; another job's script (300) is a runner child without the
    // marker; an unrelated process lives elsewhere.
    let sys = FakeSys::with(vec![
        proc(1, 0, 1),
        proc(RUNNER, 1, RUNNER),
        proc(300, RUNNER, 300),
        proc(400, 1, 400),
    ]);
    assert!(
        describe_members(&sys, &scope(200, true))
            .unwrap()
            .is_empty()
    );
    assert_eq!(sys.calls(), ["environ 300"], "no process scan");
}

#[test]
fn survivor_scan_runs_while_the_group_lives() {
    let sys = FakeSys::with(vec![proc(RUNNER, 1, RUNNER), proc(201, 1, 200)]);
    assert_eq!(
        describe_members(&sys, &scope(200, true)).unwrap(),
        ["201 p201"]
    );
    assert!(sys.calls().contains(&"scan".to_owned()));
}

#[test]
fn survivor_scan_runs_while_the_cgroup_holds_a_process() {
    let sys = FakeSys {
        cgroup: Mutex::new(vec![650]),
        ..FakeSys::with(vec![proc(RUNNER, 1, RUNNER), proc(650, 1, 650)])
    };
    assert_eq!(
        describe_members(&sys, &scope(200, true)).unwrap(),
        ["650 p650"]
    );
}

#[test]
fn survivor_scan_runs_for_a_marked_runner_child() {
    // A setsid daemon whose parent exited: reparented to the runner, own group, no cgroup.
    let sys = FakeSys {
        marked: vec![500],
        ..FakeSys::with(vec![proc(RUNNER, 1, RUNNER), proc(500, RUNNER, 500)])
    };
    assert_eq!(
        describe_members(&sys, &scope(200, false)).unwrap(),
        ["500 p500"]
    );
}

#[test]
fn survivor_scan_runs_when_the_children_list_is_missing() {
    let sys = FakeSys {
        no_children_list: true,
        ..FakeSys::with(vec![proc(RUNNER, 1, RUNNER)])
    };
    assert!(may_have_members(&sys, &scope(200, true)));
    let mut s = scope(200, true);
    s.orphans_come_to_runner = false;
    let sys = FakeSys::with(vec![proc(RUNNER, 1, RUNNER)]);
    assert!(may_have_members(&sys, &s));
}

#[tokio::test]
async fn a_failed_scan_still_kills_through_the_cgroup_and_is_reported() {
    // /proc cannot be listed: the members are unknown, so the cgroup is the only way in.
    let sys = FakeSys {
        cgroup: Mutex::new(vec![700]),
        ..FakeSys::with(vec![proc(RUNNER, 1, RUNNER), proc(700, 1, 700)])
    }
    .failing("scan", nix::errno::Errno::EACCES);
    let started = std::time::Instant::now();
    let t = terminate(&sys, &scope(200, true), Duration::from_secs(60)).await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the grace is skipped"
    );
    assert_eq!(
        t.errors,
        ["scan: Permission denied (os error 13)"],
        "reported once"
    );
    assert!(
        sys.alive().iter().all(|p| *p == RUNNER),
        "{:?}",
        sys.alive()
    );
    assert!(
        sys.calls_of("write ")
            .contains(&format!("write {JOB_CG}/cgroup.kill 1")),
        "{:?}",
        sys.calls()
    );
    assert!(sys.calls_of("kill").is_empty(), "nothing signalled blind");
}

#[test]
fn a_failed_scan_is_an_error_not_an_empty_job() {
    let sys = FakeSys::with(vec![proc(RUNNER, 1, RUNNER), proc(900, RUNNER, 200)])
        .failing("scan", nix::errno::Errno::EMFILE);
    let e: SysError = describe_members(&sys, &scope(200, false)).unwrap_err();
    assert_eq!(e.call, "scan");
    assert!(members(&sys, &scope(200, false)).is_err());
}

#[test]
fn an_unreadable_environment_is_not_taken_for_the_marker() {
    // 500 is a runner child in its own group: only its environment could link it to the job.
    let sys = FakeSys {
        marked: vec![500],
        ..FakeSys::with(vec![proc(RUNNER, 1, RUNNER), proc(500, RUNNER, 500)])
    }
    .failing("environ 500", nix::errno::Errno::EACCES);
    assert!(members(&sys, &scope(200, false)).unwrap().is_empty());
    // The cheap survivor check cannot rule it out, so the full scan decides.
    assert!(may_have_members(&sys, &scope(200, false)));
}

#[tokio::test]
async fn a_vanished_process_is_not_reported_as_a_signal_failure() {
    let sys = FakeSys::with(vec![proc(RUNNER, 1, RUNNER), proc(200, RUNNER, 200)])
        .failing("kill 200 ", nix::errno::Errno::ESRCH);
    let t = terminate(&sys, &scope(200, false), Duration::from_millis(10)).await;
    assert!(t.errors.is_empty(), "{:?}", t.errors);
    assert!(t.remaining.is_empty(), "the group signal reached it");
}
