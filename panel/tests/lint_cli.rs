//! `outfitter-panel lint` end to end: exit codes 0/1/2, human and JSON output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nginx() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contract/tests/fixtures/nginx")
}

fn lint(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outfitter-panel"))
        .arg("lint")
        .args(args)
        .output()
        .expect("run outfitter-panel")
}

fn broken_bundle() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tmp");
    let dir = root.path().join("broken");
    std::fs::create_dir(&dir).expect("dir");
    std::fs::write(dir.join("manifest.yml"), "id: broken\nname: B\n").expect("manifest");
    root
}

#[test]
fn clean_bundle_exits_zero() {
    let out = lint(&[nginx().to_str().expect("utf-8 path")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 error(s)"));
}

#[test]
fn bundle_with_an_error_exits_one_and_names_path_and_rule() {
    let root = broken_bundle();
    let dir = root.path().join("broken");
    let out = lint(&[nginx().to_str().expect("path"), dir.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("timeout_seconds"))
        .expect("an M007 line for timeout_seconds");
    assert!(
        line.starts_with(&format!(
            "{}: timeout_seconds: M007: error: ",
            dir.join("manifest.yml").display()
        )),
        "{line}"
    );
}

#[test]
fn usage_error_exits_two() {
    assert_eq!(lint(&[]).status.code(), Some(2));
    assert_eq!(lint(&["--format", "xml", "x"]).status.code(), Some(2));
}

#[test]
fn json_format_is_one_document_for_tools() {
    let root = broken_bundle();
    let dir = root.path().join("broken");
    let out = lint(&["--format", "json", dir.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["bundles"][0]["ok"], serde_json::json!(false));
    assert_eq!(report["bundles"][0]["id"], serde_json::json!("broken"));
    let finding = &report["bundles"][0]["findings"][0];
    assert_eq!(finding["severity"], serde_json::json!("error"));
    assert!(finding["rule"].as_str().is_some_and(|r| r.starts_with('M')));
    assert!(report["errors"].as_u64().is_some_and(|n| n >= 1));
}
