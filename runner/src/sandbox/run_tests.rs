//! The spawn decisions of one attempt (which cgroups the script joins, what happens to them
//! when it cannot start, exits, or leaves a survivor), against the recording double; the
//! script itself is a real `sh -c`.

use std::sync::Mutex;

use nix::errno::Errno;

use super::sys_double::{FakeSys, JOB_CG, proc};
use super::*;

fn attempt() -> Attempt {
    Attempt {
        program: Program::Script("/bundles/x/install.sh".into()),
        cwd: "/".into(),
        env: vec![("JOB_ID".into(), "j".into())],
        job_id: "j".into(),
        cgroup_name: "j.1".into(),
        timeout: Duration::from_secs(30),
        masker: Masker::none(),
    }
}

fn sandbox(sys: FakeSys, cgroups: bool) -> (Sandbox, &'static FakeSys) {
    let sys: &'static FakeSys = Box::leak(Box::new(sys));
    let sandbox = Sandbox {
        limits: Limits {
            cgroups,
            memory_max_bytes: Some(64 << 20),
            pids_max: Some(50),
            ..Limits::default()
        },
        layout: CgroupLayout {
            v2_jobs: Some("/cg/unified/outfitter".into()),
            v2_controllers: false,
            v1_memory_jobs: Some("/cg/memory/outfitter".into()),
            v1_pids_jobs: Some("/cg/pids/outfitter".into()),
        },
        sys,
    };
    (sandbox, sys)
}

async fn run(sandbox: &Sandbox) -> Result<Outcome, SandboxError> {
    let (tx, mut rx) = mpsc::channel(16);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let (_abort_tx, abort_rx) = watch::channel(None);
    let r = sandbox.run(&attempt(), tx, abort_rx).await;
    drain.await.unwrap();
    r
}

const JOB_DIRS: [&str; 3] = [JOB_CG, "/cg/memory/outfitter/j.1", "/cg/pids/outfitter/j.1"];

#[tokio::test]
async fn a_script_that_cannot_start_leaves_no_cgroup_and_says_why() {
    let (sandbox, sys) = sandbox(FakeSys::default().failing("spawn", Errno::EACCES), true);
    let Err(SandboxError::Spawn { source }) = run(&sandbox).await else {
        panic!("the start failure is returned");
    };
    assert_eq!(source.errno(), Some(Errno::EACCES));
    let launches = sys.launches.lock().unwrap();
    assert_eq!(
        launches[0].cgroup_procs,
        JOB_DIRS.map(|d| PathBuf::from(d).join("cgroup.procs"))
    );
    let calls = sys.calls();
    let spawn = calls.iter().position(|c| c == "spawn").unwrap();
    assert_eq!(
        calls[spawn + 1..],
        JOB_DIRS.map(|d| format!("rmdir {d}")),
        "{calls:?}"
    );
    assert!(JOB_DIRS.iter().all(|d| !sys.has_dir(d)));
}

#[tokio::test]
async fn a_failed_script_reports_its_status_and_its_cgroups_are_removed() {
    let (sandbox, sys) = sandbox(
        FakeSys {
            script: Some("echo out; exit 3".into()),
            ..FakeSys::default()
        },
        true,
    );
    let outcome = run(&sandbox).await.unwrap();
    assert_eq!(outcome.finish, Finish::Exited(3));
    assert!(outcome.notes.is_empty(), "{:?}", outcome.notes);
    assert_eq!(outcome.output_bytes, 4);
    assert_eq!(sys.calls_of("rmdir").len(), 3, "{:?}", sys.calls());
    // Limits were written before the start, into the v1 hierarchies only (no v2 controllers).
    let calls = sys.calls();
    let spawn = calls.iter().position(|c| c == "spawn").unwrap();
    assert!(calls[..spawn].contains(&"write /cg/pids/outfitter/j.1/pids.max 50".to_owned()));
    assert!(
        calls[..spawn]
            .iter()
            .all(|c| !c.starts_with("write /cg/unified"))
    );
}

#[tokio::test]
async fn without_cgroups_the_script_joins_none() {
    let (sandbox, sys) = sandbox(FakeSys::default(), false);
    let outcome = run(&sandbox).await.unwrap();
    assert_eq!(outcome.finish, Finish::Exited(0));
    assert!(sys.launches.lock().unwrap()[0].cgroup_procs.is_empty());
    assert!(sys.calls_of("mkdir").is_empty() && sys.calls_of("rmdir").is_empty());
}

#[tokio::test]
async fn a_cgroup_that_cannot_be_made_is_a_note_and_the_script_joins_the_others() {
    let (sandbox, sys) = sandbox(
        FakeSys::default().failing("mkdir /cg/memory", Errno::ENOSPC),
        true,
    );
    let outcome = run(&sandbox).await.unwrap();
    assert_eq!(outcome.finish, Finish::Exited(0));
    assert_eq!(outcome.notes.len(), 1, "{:?}", outcome.notes);
    assert!(outcome.notes[0].contains("mkdir /cg/memory/outfitter/j.1"));
    assert_eq!(sys.launches.lock().unwrap()[0].cgroup_procs.len(), 2);
}

#[tokio::test]
async fn a_survivor_of_a_successful_script_is_reported_and_keeps_its_cgroup() {
    // 650 lives on in the job's cgroup after the script exited 0 (a daemon it started).
    let (sandbox, sys) = sandbox(
        FakeSys {
            cgroup: Mutex::new(vec![650]),
            ..FakeSys::with(vec![proc(650, 1, 650)])
        },
        true,
    );
    let outcome = run(&sandbox).await.unwrap();
    assert_eq!(outcome.finish, Finish::Exited(0));
    assert_eq!(outcome.survivors, ["650 p650"]);
    assert!(sys.calls_of("rmdir").is_empty(), "{:?}", sys.calls());
    assert!(sys.calls_of("kill").is_empty(), "a survivor is left alone");
}

#[tokio::test]
async fn survivors_that_cannot_be_listed_are_a_note_not_silence() {
    let (sandbox, _sys) = sandbox(
        FakeSys {
            cgroup: Mutex::new(vec![650]),
            ..FakeSys::with(vec![proc(650, 1, 650)])
        }
        .failing("scan", Errno::EMFILE),
        true,
    );
    let outcome = run(&sandbox).await.unwrap();
    assert_eq!(outcome.finish, Finish::Exited(0));
    assert!(
        outcome
            .notes
            .iter()
            .any(|n| n.starts_with("cannot list the processes left running: scan:")),
        "{:?}",
        outcome.notes
    );
}
