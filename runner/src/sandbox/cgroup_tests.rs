//! The cgroup decisions (which hierarchies, which limits, what is reported), against the
//! recording double's filesystem.

use nix::errno::Errno;

use super::super::sys_double::{FakeSys, JOB_CG, RUNNER, job_cgroup};
use super::*;

const HYBRID: &[(&str, &str)] = &[
    ("/cg/unified/cgroup.procs", ""),
    ("/cg/memory/cgroup.procs", ""),
    ("/cg/pids/cgroup.procs", ""),
];

fn limited() -> Limits {
    Limits {
        memory_max_bytes: Some(64 << 20),
        pids_max: Some(50),
        ..Limits::default()
    }
}

fn hybrid_layout() -> CgroupLayout {
    CgroupLayout {
        v2_jobs: Some("/cg/unified/outfitter".into()),
        v2_controllers: false,
        v1_memory_jobs: Some("/cg/memory/outfitter".into()),
        v1_pids_jobs: Some("/cg/pids/outfitter".into()),
    }
}

#[test]
fn hybrid_host_gets_the_unified_tree_and_the_v1_memory_and_pids_hierarchies() {
    let sys = FakeSys::default().with_files(HYBRID);
    assert_eq!(
        Hierarchy::probe(&sys, Path::new("/cg")).unwrap(),
        Hierarchy::Hybrid { unified: true }
    );
    let (layout, notes) = CgroupLayout::detect_at(&sys, Path::new("/cg"), true);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(layout, hybrid_layout());
    assert_eq!(
        sys.calls(),
        [
            "mkdir /cg/unified/outfitter",
            "mkdir /cg/memory/outfitter",
            "mkdir /cg/pids/outfitter"
        ]
    );
}

#[test]
fn a_hierarchy_that_cannot_be_written_is_a_note_and_the_others_still_serve() {
    let sys = FakeSys::default()
        .with_files(HYBRID)
        .failing("mkdir /cg/memory", Errno::EROFS);
    let (layout, notes) = CgroupLayout::detect_at(&sys, Path::new("/cg"), false);
    assert_eq!(layout.v1_memory_jobs, None);
    assert!(layout.v2_jobs.is_some() && layout.v1_pids_jobs.is_some());
    assert_eq!(
        notes,
        [
            "cgroup v1 memory not writable: mkdir /cg/memory/outfitter: Read-only file system (os error 30)"
        ]
    );
}

#[test]
fn a_host_without_cgroups_gets_none_and_an_unreadable_one_says_why() {
    let (layout, notes) = CgroupLayout::detect_at(&FakeSys::default(), Path::new("/cg"), true);
    assert!(layout.is_none() && notes.is_empty(), "{notes:?}");
    let sys = FakeSys::default().failing("exists /cg/cgroup.controllers", Errno::EACCES);
    let (layout, notes) = CgroupLayout::detect_at(&sys, Path::new("/cg"), true);
    assert!(layout.is_none());
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].starts_with("cannot tell which cgroups"),
        "{notes:?}"
    );
}

#[test]
fn pure_v2_under_delegation_moves_the_runner_to_a_leaf_to_pass_the_controllers_down() {
    let own = "/cg/system.slice/outfitter-runner.service";
    let sys = FakeSys::default()
        .with_files(&[
            ("/cg/cgroup.controllers", "memory pids"),
            (
                "/proc/self/cgroup",
                "0::/system.slice/outfitter-runner.service\n",
            ),
        ])
        // The runner's own cgroup holds a process (the runner) until it moves out.
        .failing(&format!("write {own}/cgroup.subtree_control"), Errno::EBUSY);
    assert_eq!(
        Hierarchy::probe(&sys, Path::new("/cg")).unwrap(),
        Hierarchy::PureV2
    );
    let (layout, notes) = CgroupLayout::detect_at(&sys, Path::new("/cg"), true);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(
        layout.v2_jobs,
        Some(PathBuf::from(format!("{own}/outfitter")))
    );
    assert!(
        sys.calls()
            .contains(&format!("write {own}/supervisor/cgroup.procs {RUNNER}"))
    );
    // EBUSY persists in the double, so the controllers are not passed down: no limits there.
    assert!(!layout.v2_controllers);
    // `exec` (not delegated) leaves its caller's cgroup alone.
    let sys = FakeSys::default().with_files(&[
        ("/cg/cgroup.controllers", "memory pids"),
        ("/proc/self/cgroup", "0::/user.slice\n"),
    ]);
    let (layout, _) = CgroupLayout::detect_at(&sys, Path::new("/cg"), false);
    assert!(layout.v2_controllers);
    assert!(sys.calls_of("write /cg/user.slice/supervisor").is_empty());
}

#[test]
fn job_cgroups_get_the_limits_of_each_hierarchy() {
    let sys = FakeSys::default();
    let (cg, notes) = hybrid_layout().create(&sys, "j.1", &limited());
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(
        cg.procs_files(),
        [
            PathBuf::from("/cg/unified/outfitter/j.1/cgroup.procs"),
            PathBuf::from("/cg/memory/outfitter/j.1/cgroup.procs"),
            PathBuf::from("/cg/pids/outfitter/j.1/cgroup.procs"),
        ]
    );
    assert_eq!(
        sys.file("/cg/memory/outfitter/j.1/memory.limit_in_bytes")
            .as_deref(),
        Some("67108864")
    );
    assert_eq!(
        sys.file("/cg/pids/outfitter/j.1/pids.max").as_deref(),
        Some("50")
    );
    // No controllers in the unified tree: nothing written there.
    assert!(sys.calls_of("write /cg/unified").is_empty());
    let v2 = CgroupLayout {
        v2_controllers: true,
        ..CgroupLayout::none()
    };
    let v2 = CgroupLayout {
        v2_jobs: Some("/cg/jobs".into()),
        ..v2
    };
    v2.create(&sys, "j.2", &limited());
    assert_eq!(
        sys.file("/cg/jobs/j.2/memory.max").as_deref(),
        Some("67108864")
    );
    assert_eq!(sys.file("/cg/jobs/j.2/pids.max").as_deref(), Some("50"));
}

#[test]
fn a_limit_that_cannot_be_set_or_a_cgroup_not_created_is_a_note() {
    let sys = FakeSys::default()
        .failing("mkdir /cg/unified", Errno::ENOSPC)
        .failing("write /cg/pids/outfitter/j.1/pids.max", Errno::EINVAL);
    let (cg, notes) = hybrid_layout().create(&sys, "j.1", &limited());
    assert_eq!(cg.procs_files().len(), 2, "the v1 cgroups are still joined");
    assert_eq!(
        notes,
        [
            "cannot create a cgroup: mkdir /cg/unified/outfitter/j.1: No space left on device (os error 28)",
            "cannot set pids.max: write /cg/pids/outfitter/j.1/pids.max 50: Invalid argument (os error 22)",
        ]
    );
    // Without a limit configured there is no v1 cgroup to make.
    let sys = FakeSys::default();
    let (cg, _) = hybrid_layout().create(
        &sys,
        "j.3",
        &Limits {
            memory_max_bytes: None,
            pids_max: None,
            ..Limits::default()
        },
    );
    assert_eq!(cg.procs_files().len(), 1);
}

#[test]
fn cgroup_kill_needs_the_v2_file_and_a_failed_write_is_an_error() {
    let sys = FakeSys::default();
    let v1_only = JobCgroup {
        v2: None,
        v1: vec!["/cg/pids/outfitter/j.1".into()],
    };
    assert!(!v1_only.kill(&sys).unwrap());
    let no_kill_file = JobCgroup {
        v2: Some("/cg/unified/outfitter/old".into()),
        v1: Vec::new(),
    };
    assert!(!no_kill_file.kill(&sys).unwrap(), "kernel before 5.14");
    assert!(sys.calls().is_empty(), "{:?}", sys.calls());
    assert!(job_cgroup().kill(&sys).unwrap());
    let sys = FakeSys::default().failing(&format!("write {JOB_CG}/cgroup.kill"), Errno::EACCES);
    assert_eq!(
        job_cgroup().kill(&sys).unwrap_err().errno(),
        Some(Errno::EACCES)
    );
}

#[test]
fn cgroup_pids_are_read_from_every_hierarchy_and_a_read_failure_is_an_error() {
    let sys = FakeSys::default().with_files(&[
        ("/cg/unified/outfitter/j.2/cgroup.procs", "7\n5\n"),
        ("/cg/pids/outfitter/j.1/cgroup.procs", "5\n9\n"),
    ]);
    let cg = JobCgroup {
        v2: Some("/cg/unified/outfitter/j.2".into()),
        // Removed meanwhile: holds nothing.
        v1: vec![
            "/cg/memory/outfitter/j.1".into(),
            "/cg/pids/outfitter/j.1".into(),
        ],
    };
    assert_eq!(cg.pids(&sys).unwrap(), [5, 7, 9]);
    let sys = sys.failing("read /cg/pids", Errno::EIO);
    assert_eq!(cg.pids(&sys).unwrap_err().errno(), Some(Errno::EIO));
}

#[tokio::test]
async fn an_empty_job_cgroup_is_removed_and_a_busy_one_kept() {
    let sys = FakeSys::default().with_files(&[("/cg/unified/outfitter/j.1/x", "")]);
    assert!(job_cgroup().remove(&sys).await);
    assert!(!sys.has_dir(JOB_CG));
    let sys = FakeSys {
        cgroup: std::sync::Mutex::new(vec![700]),
        ..FakeSys::default()
    };
    assert!(!job_cgroup().remove(&sys).await, "a survivor keeps it");
    assert!(sys.calls_of("rmdir").is_empty());
}

#[test]
fn stale_job_cgroups_are_removed_and_failures_other_than_busy_returned() {
    let sys = FakeSys::default()
        .with_files(&[
            ("/cg/unified/outfitter/old.1/cgroup.procs", ""),
            ("/cg/unified/outfitter/kept.1/cgroup.procs", "42\n"),
            ("/cg/pids/outfitter/ro.1/cgroup.procs", ""),
        ])
        .failing("rmdir /cg/unified/outfitter/kept.1", Errno::EBUSY)
        .failing("rmdir /cg/pids/outfitter/ro.1", Errno::EPERM);
    let errors = hybrid_layout().remove_stale(&sys);
    assert!(!sys.has_dir("/cg/unified/outfitter/old.1"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].call, "rmdir /cg/pids/outfitter/ro.1");
}
