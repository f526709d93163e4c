//! The lifecycle keys of a manifest: each script is checked like `install_script` (rules
//! M015–M018 under its own field), the backup/restore pair (M026), the health check (M027),
//! one file per purpose (M028), and the digest covers every script.

mod common;

use std::fs;

use common::{CLEAN_SCRIPT, TestBundle, base, expect_rule, load_err};
use outfitter_contract::manifest::{bundle_digest, load_bundle};
use serde_json::json;

fn with_lifecycle() -> serde_json::Value {
    let mut m = base();
    m["uninstall_script"] = json!("uninstall.sh");
    m["backup_script"] = json!("backup.sh");
    m["restore_script"] = json!("restore.sh");
    m["health_check"] = json!({"command": "true"});
    m
}

fn bundle_with_scripts(manifest: &serde_json::Value) -> TestBundle {
    let bundle = TestBundle::from_value(manifest);
    for name in ["uninstall.sh", "backup.sh", "restore.sh"] {
        fs::write(bundle.path().join(name), CLEAN_SCRIPT).expect("script");
    }
    bundle
}

#[test]
fn a_bundle_with_every_lifecycle_script_loads_and_its_digest_covers_them() {
    let bundle = bundle_with_scripts(&with_lifecycle());
    let loaded = load_bundle(bundle.path()).expect("valid");
    assert_eq!(loaded.lifecycle_paths.len(), 3);
    assert_eq!(
        loaded.script_for("uninstall_script"),
        Some(bundle.path().join("uninstall.sh").as_path())
    );
    assert_eq!(
        loaded
            .manifest
            .health_check
            .as_ref()
            .map(|h| h.timeout_seconds),
        Some(30)
    );
    let manifest = fs::read(bundle.path().join("manifest.yml")).expect("manifest");
    assert_ne!(
        loaded.digest,
        bundle_digest(&manifest, CLEAN_SCRIPT.as_bytes()),
        "the lifecycle scripts are part of the digest"
    );
    assert_eq!(loaded.digest_on_disk().expect("readable"), loaded.digest);
    fs::write(
        bundle.path().join("uninstall.sh"),
        format!("{CLEAN_SCRIPT}rm -rf /\n"),
    )
    .expect("edit");
    assert_ne!(
        loaded.digest_on_disk().expect("readable"),
        loaded.digest,
        "an edited uninstall script changes the digest"
    );
}

#[test]
fn a_missing_lifecycle_script_is_named_by_its_field() {
    let bundle = bundle_with_scripts(&with_lifecycle());
    fs::remove_file(bundle.path().join("restore.sh")).expect("remove");
    let diagnostics = load_bundle(bundle.path()).expect_err("missing restore script");
    expect_rule(&diagnostics, "M016", "restore_script");
}

#[test]
fn a_lifecycle_script_outside_the_bundle_is_refused() {
    let mut m = with_lifecycle();
    m["uninstall_script"] = json!("../uninstall.sh");
    expect_rule(&load_err(&m), "M015", "uninstall_script");
    let bundle = bundle_with_scripts(&with_lifecycle());
    let outside = bundle.path().parent().expect("tmp").join("evil.sh");
    fs::write(&outside, CLEAN_SCRIPT).expect("outside");
    fs::remove_file(bundle.path().join("backup.sh")).expect("remove");
    std::os::unix::fs::symlink(&outside, bundle.path().join("backup.sh")).expect("symlink");
    let diagnostics = load_bundle(bundle.path()).expect_err("escaping symlink");
    expect_rule(&diagnostics, "M017", "backup_script");
}

#[test]
fn backup_and_restore_come_together() {
    let mut m = base();
    m["backup_script"] = json!("backup.sh");
    let bundle = TestBundle::from_value(&m);
    fs::write(bundle.path().join("backup.sh"), CLEAN_SCRIPT).expect("script");
    let diagnostics = load_bundle(bundle.path()).expect_err("no restore");
    expect_rule(&diagnostics, "M026", "backup_script");
}

#[test]
fn a_health_check_is_one_bounded_line() {
    // The schema bounds the timeout (M009), the checks the command (M027); either way the
    // finding names the health check's field.
    for (check, field) in [
        (json!({"command": "  "}), "health_check.command"),
        (json!({"command": "true\nreboot"}), "health_check.command"),
        (
            json!({"command": "true", "timeout_seconds": 601}),
            "health_check.timeout_seconds",
        ),
    ] {
        let mut m = with_lifecycle();
        m["health_check"] = check;
        let bundle = bundle_with_scripts(&m);
        let diagnostics = load_bundle(bundle.path()).expect_err("bad health check");
        assert!(
            diagnostics.iter().any(|d| d.path == field),
            "{field}: {diagnostics:?}"
        );
    }
}

#[test]
fn one_file_may_not_serve_two_purposes() {
    let mut m = with_lifecycle();
    m["uninstall_script"] = json!("install.sh");
    let bundle = bundle_with_scripts(&m);
    let diagnostics = load_bundle(bundle.path()).expect_err("reused script");
    expect_rule(&diagnostics, "M028", "uninstall_script");
}

#[test]
fn lifecycle_variable_names_are_reserved_for_inputs() {
    for name in ["instance", "purge", "backup_dir", "previous_version"] {
        let mut m = base();
        m["inputs"] = json!([{"name": name, "type": "string", "label": "X"}]);
        expect_rule(&load_err(&m), "M032", "inputs[0].name");
    }
}
