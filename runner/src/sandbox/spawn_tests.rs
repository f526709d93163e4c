//! The child's set-up between clone and exec, seen from inside a real script: every step the
//! sandbox promises (docs/runner.md, "The sandbox") and the errors of a child that cannot
//! exec.

use std::path::PathBuf;

use tokio::io::AsyncReadExt;

use super::{Launch, Program, spawn};
use crate::config::Limits;

/// `bash -c <line>` from `/`, with nothing in its environment and no cgroup.
fn launch(line: &str) -> Launch {
    Launch {
        program: Program::Command(line.to_owned()),
        cwd: PathBuf::from("/"),
        env: Vec::new(),
        cgroup_procs: Vec::new(),
    }
}

/// Runs `line` under bash through [`spawn`]; returns stdout, stderr and the exit status.
async fn run(
    line: &str,
    adjust: impl FnOnce(&mut Launch),
    limits: &Limits,
) -> (String, String, i32) {
    let mut l = Launch {
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        ..launch(line)
    };
    adjust(&mut l);
    let mut script = spawn(&l, limits).expect("spawn");
    let (mut out, mut err) = (String::new(), String::new());
    let mut stdout = script.stdout.take().unwrap();
    let mut stderr = script.stderr.take().unwrap();
    let (a, b) = tokio::join!(
        stdout.read_to_string(&mut out),
        stderr.read_to_string(&mut err)
    );
    a.unwrap();
    b.unwrap();
    let status = script.wait().await.expect("wait");
    let code = status
        .code()
        .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap());
    (out, err, code)
}

fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("{name} missing from {status}"))
        .trim()
        .to_owned()
}

#[tokio::test]
async fn the_script_runs_with_every_restriction_and_nothing_of_the_runner() {
    // The runner's own state the child must not carry: a blocked signal, an installed
    // handler (tokio's), SIGPIPE ignored (the Rust runtime), an open fd.
    let _term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    let held = std::fs::File::open("/proc/self/status").unwrap();
    let limits = Limits {
        file_size_max_bytes: 1 << 20,
        open_files_max: 77,
        ..Limits::default()
    };
    let line = "cat /proc/self/status; echo \"pgid=$(ps -o pgid= $$) pid=$$\"; \
                echo \"cwd=$PWD\"; echo \"core=$(ulimit -c) fsize=$(ulimit -f) nofile=$(ulimit -n)\"; \
                echo \"fds=$(ls /proc/self/fd | tr '\\n' ' ')\"; env | sort | tr '\\n' ' '; echo; \
                read -r x; echo \"stdin=$?\"; yes | head -c1 >/dev/null; echo \"yes=${PIPESTATUS[0]}\"; \
                echo to-stderr >&2; exit 3";
    let (out, err, code) = run(
        line,
        |l| {
            l.cwd = PathBuf::from("/tmp");
            l.env.push(("ONLY".into(), "this".into()));
        },
        &limits,
    )
    .await;
    drop(held);
    assert_eq!(code, 3, "{out}\n{err}");
    assert_eq!(err, "to-stderr\n");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    // `cat` of the script: nothing blocked; ignored only what this process was started with
    // ignored (exec keeps that), except SIGPIPE, which the Rust runtime ignores.
    assert_eq!(status_field(&out, "SigBlk"), "0000000000000000");
    let ignored = |status: &str| u64::from_str_radix(&status_field(status, "SigIgn"), 16).unwrap();
    let sigpipe = 1 << (libc::SIGPIPE - 1);
    let ours = ignored(&std::fs::read_to_string("/proc/self/status").unwrap());
    assert_ne!(ours & sigpipe, 0, "the test process ignores SIGPIPE");
    assert_eq!(ignored(&out), ours & !sigpipe);
    let pid_line = out.lines().find(|l| l.starts_with("pgid=")).unwrap();
    let (pgid, pid) = pid_line.split_once(" pid=").unwrap();
    assert_eq!(
        pgid.trim_start_matches("pgid=").trim(),
        pid,
        "own process group"
    );
    assert!(out.contains("cwd=/tmp\n"), "{out}");
    // ulimit -f counts 1 KiB blocks.
    assert!(out.contains("core=0 fsize=1024 nofile=77\n"), "{out}");
    // ls's own fd on /proc/self/fd is the only one above 2.
    let fds = out.lines().find_map(|l| l.strip_prefix("fds=")).unwrap();
    assert_eq!(fds.split_whitespace().count(), 4, "fds: {fds}");
    let env = out.lines().find(|l| l.contains("ONLY=this")).unwrap();
    for entry in env.split_whitespace() {
        let name = entry.split('=').next().unwrap();
        assert!(
            ["ONLY", "PATH", "PWD", "SHLVL", "_"].contains(&name),
            "unexpected variable {entry}"
        );
    }
    assert!(
        out.contains("stdin=1\n"),
        "read from /dev/null gets EOF: {out}"
    );
    assert!(out.contains("yes=141\n"), "SIGPIPE at its default: {out}");
}

#[tokio::test]
async fn a_signal_ends_the_script_with_its_number_and_the_status_is_kept() {
    let mut script = spawn(&launch("kill -KILL $$"), &Limits::default()).unwrap();
    let status = script.wait().await.unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    // Reaped once; asking again gives the same status, not ECHILD.
    assert_eq!(script.wait().await.unwrap(), status);
}

#[tokio::test]
async fn a_child_that_cannot_start_names_the_step_and_leaves_no_zombie() {
    let l = Launch {
        cwd: PathBuf::from("/nonexistent/outfitter-cwd"),
        ..launch("true")
    };
    let e = spawn(&l, &Limits::default()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(
        e.to_string()
            .starts_with("chdir to the working directory: "),
        "{e}"
    );
    let e = spawn(&launch("nul\0byte"), &Limits::default()).unwrap_err();
    assert!(e.to_string().contains("NUL"), "{e}");
    // The failed child was reaped by spawn: no child of this process is a zombie.
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
            && let Some(info) = super::super::sys::parse_stat(&stat)
        {
            assert!(
                !(info.ppid == me as i32 && info.is_dead()),
                "zombie child {}",
                info.pid
            );
        }
    }
}

#[tokio::test]
async fn many_scripts_at_once_each_get_their_own_output_and_status() {
    let limits = Limits::default();
    let lines: Vec<String> = (0..32)
        .map(|i| format!("echo out-{i}; echo err-{i} >&2; exit {}", i % 5))
        .collect();
    let runs = lines.iter().map(|line| run(line, |_| {}, &limits));
    for (i, (out, err, code)) in futures_util::future::join_all(runs)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(out, format!("out-{i}\n"));
        assert_eq!(err, format!("err-{i}\n"));
        assert_eq!(code, (i % 5) as i32);
    }
}
