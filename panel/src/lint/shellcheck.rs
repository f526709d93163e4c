//! Rule S005: shellcheck findings as warnings, when `shellcheck` is installed.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outfitter_contract::manifest::{Diagnostic, rules};
use serde::Deserialize;

/// How long one shellcheck run may take before the linter gives up on it.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Checks shellcheck already covers or that do not apply to installers:
/// SC1091 (cannot follow a sourced file such as /etc/os-release).
const EXCLUDED: &str = "SC1091";

#[derive(Deserialize)]
struct Output {
    comments: Vec<Comment>,
}

#[derive(Deserialize)]
struct Comment {
    line: usize,
    code: u32,
    level: String,
    message: String,
}

/// Whether shellcheck is on the PATH.
pub(super) fn available() -> bool {
    Command::new("shellcheck")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs shellcheck on `script` and returns its findings as S005 warnings, located as
/// `<file>:<line>`. A shellcheck that fails to run yields one S005 finding saying so.
pub(super) fn check(script: &Path, file: &str) -> Vec<Diagnostic> {
    let child = Command::new("shellcheck")
        .args([
            "--format=json1",
            "--shell=bash",
            "--exclude",
            EXCLUDED,
            "--",
        ])
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => return vec![failed(file, &format!("cannot start shellcheck: {error}"))],
    };
    // Read stdout on a thread so a large report cannot block shellcheck while we wait.
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(out) = stdout.as_mut() {
            let _ = out.take(16 * 1024 * 1024).read_to_string(&mut text);
        }
        text
    });
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return vec![failed(file, "shellcheck took too long and was stopped")];
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => return vec![failed(file, &format!("shellcheck failed: {error}"))],
        }
    }
    let text = reader.join().unwrap_or_default();
    match serde_json::from_str::<Output>(&text) {
        Ok(output) => output
            .comments
            .into_iter()
            .map(|c| {
                Diagnostic::new(
                    &rules::S005_SHELLCHECK,
                    format!("{file}:{}", c.line),
                    format!("SC{} ({}): {}", c.code, c.level, c.message),
                )
            })
            .collect(),
        Err(_) => vec![failed(file, "shellcheck produced no readable report")],
    }
}

fn failed(file: &str, message: &str) -> Diagnostic {
    Diagnostic::new(
        &rules::S005_SHELLCHECK,
        format!("{file}:1"),
        message.to_owned(),
    )
}
