//! The reap decisions, against the recording double.

use std::collections::HashSet;

use nix::errno::Errno;

use super::super::sys_double::{FakeSys, RUNNER, proc, zombie};
use super::*;

#[test]
fn orphans_are_reaped_from_the_runner_children_except_scripts() {
    let sys = FakeSys::with(vec![
        proc(RUNNER, 1, RUNNER),
        proc(200, RUNNER, 200),
        zombie(501, RUNNER, 501),
        proc(600, 1, 600),
    ]);
    let scripts = [200].into_iter().collect();
    let c = reap_candidates(&sys, &scripts).unwrap();
    assert_eq!(c, [501]);
    assert!(!sys.calls().contains(&"scan".to_owned()), "no process scan");
}

#[test]
fn orphans_fall_back_to_a_scan_for_zombies_without_a_children_list() {
    let sys = FakeSys {
        no_children_list: true,
        ..FakeSys::with(vec![
            proc(RUNNER, 1, RUNNER),
            proc(200, RUNNER, 200),
            proc(300, RUNNER, 300),
            zombie(501, RUNNER, 501),
        ])
    };
    let scripts = [200].into_iter().collect();
    let c = reap_candidates(&sys, &scripts).unwrap();
    assert_eq!(c, [501]);
}

#[test]
fn zombies_are_reaped_by_pid_and_scripts_and_live_children_left_alone() {
    let sys = FakeSys::with(vec![
        proc(RUNNER, 1, RUNNER),
        zombie(200, RUNNER, 200),
        zombie(501, RUNNER, 501),
        proc(502, RUNNER, 502),
        zombie(503, RUNNER, 503),
    ]);
    let scripts: HashSet<i32> = [200].into_iter().collect();
    assert_eq!(reap_except(&sys, &scripts).unwrap(), 2);
    // The script's status belongs to the sandbox: never waited for here.
    assert_eq!(sys.calls_of("reap"), ["reap 501", "reap 502", "reap 503"]);
    let left: Vec<i32> = sys.procs.lock().unwrap().iter().map(|p| p.pid).collect();
    assert_eq!(left, [RUNNER, 200, 502]);
}

#[test]
fn one_child_that_cannot_be_waited_for_does_not_keep_the_others_zombies() {
    let sys = FakeSys::with(vec![
        proc(RUNNER, 1, RUNNER),
        zombie(501, RUNNER, 501),
        zombie(503, RUNNER, 503),
    ])
    .failing("reap 501", Errno::ECHILD);
    assert_eq!(reap_except(&sys, &HashSet::new()).unwrap(), 1);
    assert_eq!(sys.calls_of("reap"), ["reap 501", "reap 503"]);
}

#[test]
fn a_children_list_that_cannot_be_read_is_an_error_not_zero_orphans() {
    let sys = FakeSys::with(vec![proc(RUNNER, 1, RUNNER), zombie(501, RUNNER, 501)])
        .failing("children", Errno::EACCES);
    let e = reap_except(&sys, &HashSet::new()).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EACCES));
    assert!(sys.calls_of("reap").is_empty());
    let sys = FakeSys {
        no_children_list: true,
        ..FakeSys::with(vec![proc(RUNNER, 1, RUNNER)])
    }
    .failing("scan", Errno::EMFILE);
    assert_eq!(
        reap_candidates(&sys, &HashSet::new()).unwrap_err().call,
        "scan"
    );
}

#[test]
fn with_no_exited_child_the_children_list_is_not_read() {
    // A live child and an unreadable children list: nothing to reap, and nothing read.
    let sys = FakeSys::with(vec![proc(RUNNER, 1, RUNNER), proc(502, RUNNER, 502)])
        .failing("children", Errno::EACCES);
    assert_eq!(reap_except(&sys, &HashSet::new()).unwrap(), 0);
    assert!(sys.calls_of("reap").is_empty());
}

#[test]
fn a_refused_subreaper_is_reported_with_the_cause() {
    let sys = FakeSys::default().failing("subreaper", Errno::EINVAL);
    let e = become_subreaper(&sys).unwrap_err();
    assert_eq!(e.errno(), Some(Errno::EINVAL));
    assert_eq!(sys.calls(), ["subreaper"]);
}
