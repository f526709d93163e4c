//! `outfitter-runner exec`: the same validation and sandbox without Redis, for authors.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::bundles_dir;

fn exec(bundle: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outfitter-runner"))
        .arg("exec")
        .arg(bundles_dir().join(bundle))
        .args(args)
        .env("OUTFITTER_CANARY", "exec-canary-77")
        .output()
        .expect("runner binary starts")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn exec_streams_output_prints_a_summary_and_exits_with_the_scripts_status() {
    let out = exec("exit-code", &["--set", "code=3"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stdout).contains("exiting 3 on attempt 1"),
        "{}",
        text(&out.stdout)
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("exit-code 1.0.0: exit 3 (needs_attention)"),
        "{err}"
    );

    let ok = exec("happy", &["--set", "greeting=Hello"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("greeting=Hello attempt=1 agent=local"));
    assert!(text(&ok.stderr).contains("to stderr"));
}

#[test]
fn exec_with_invalid_inputs_prints_each_field_error_and_runs_nothing() {
    let out = exec(
        "exit-code",
        &["--set", "code=not-a-number", "--set", "bogus=1"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("input code:") && err.contains("input bogus:"),
        "{err}"
    );
    assert!(err.contains("nothing was run"));
    assert!(out.stdout.is_empty(), "the script did not run");

    let missing = exec("exit-code", &[]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("input code:"));
}

#[test]
fn exec_of_a_broken_bundle_explains_why() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.yml"), "id: [broken\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_outfitter-runner"))
        .arg("exec")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains("does not load"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn exec_times_out_with_124_and_kills_the_tree() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_outfitter-runner"))
        .arg("exec")
        .arg(bundles_dir().join("escapees"))
        .args(["--kill-grace-seconds", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("children started") {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the script started"
        );
    }
    // exec is the subreaper: every escapee is its descendant now, and carries the job id.
    let job_id = job_id_below(child.id()).expect("a process of the job below exec");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("(timed_out)"));
    // Killed processes may take a moment to leave /proc; survivors would stay for 50 min.
    support::wait_for(Duration::from_secs(30), "the escapees to be gone", || {
        support::processes_of_job(&job_id).is_empty().then_some(())
    });
}

/// The JOB_ID of a process descended from `ancestor`.
fn job_id_below(ancestor: u32) -> Option<String> {
    let parent = |pid: u32| -> Option<u32> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse().ok())
    };
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let mut up = parent(pid);
        while let Some(p) = up.filter(|&p| p > 1) {
            if p == ancestor {
                let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                let id = env
                    .split(|&b| b == 0)
                    .find_map(|e| e.strip_prefix(b"JOB_ID="))
                    .map(text);
                if id.is_some() {
                    return id;
                }
                break;
            }
            up = parent(p);
        }
    }
    None
}

#[test]
fn exec_masks_sensitive_values_and_keeps_its_own_environment_away() {
    let out = exec("secret-echo", &["--set", "api_token=exec s3cret value"]);
    assert_eq!(out.status.code(), Some(0));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!all.contains("s3cret"), "{all}");
    assert!(all.contains("token=********"));

    let env = exec("hygiene", &[]);
    let all = text(&env.stdout);
    // The runner's own settings stay away; the contract's OUTFITTER_ACTION is the script's.
    let leaked = all
        .lines()
        .any(|l| l.contains("OUTFITTER_") && !l.starts_with("env: OUTFITTER_ACTION=install"));
    assert!(!all.contains("exec-canary-77") && !leaked, "{all}");
    assert!(all.contains("env: OUTFITTER_ACTION=install"), "{all}");
    assert!(all.contains("fds: 0 1 2 "), "{all}");
}

#[test]
fn exec_peak_memory_stays_bounded_on_a_200_mb_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_outfitter-runner"))
        .arg("exec")
        .arg(bundles_dir().join("long-line"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = support::vm_hwm_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    assert!(peak > 0 && peak < 64 * 1024, "exec peak {peak} KiB");
}
