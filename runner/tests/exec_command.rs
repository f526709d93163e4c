//! `outfitter-runner exec`: the same validation and sandbox without Redis, for authors.

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

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
    let started = Instant::now();
    let out = exec("escapees", &["--kill-grace-seconds", "1"]);
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(2 + 1 + 3),
        "{:?}",
        started.elapsed()
    );
    assert!(text(&out.stderr).contains("(timed_out)"));
    std::thread::sleep(Duration::from_millis(200));
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmd = text(&cmd).replace('\0', " ");
        assert!(!cmd.starts_with("sleep 300"), "survivor: {cmd}");
    }
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
    assert!(
        !all.contains("exec-canary-77") && !all.contains("OUTFITTER_"),
        "{all}"
    );
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
