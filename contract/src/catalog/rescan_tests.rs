//! `Catalog::rescan`: unchanged bundles are taken over, anything else is checked again, and
//! the result is what a fresh scan would give. Real directories and files; `settle` is zero
//! except where the settle window itself is tested, since these files are milliseconds old.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{Catalog, SETTLE, ScanStats};

const SCRIPT: &str = "#!/usr/bin/env bash\nset -euo pipefail\necho \"::progress 100 done\"\n";

fn manifest(id: &str, requires: &[&str]) -> String {
    format!(
        "id: {id}\nname: App {id}\nversion: \"1.0.0\"\ndescription: An app for tests.\n\
         category: web\nauthor: Tests\nos_requirements:\n  family: [debian]\n  \
         min_version: \"11\"\ntimeout_seconds: 600\nidempotent: true\nrequires: [{}]\n\
         inputs:\n  - name: server_name\n    type: string\n    label: Server name\n    \
         default: example.com\n    validation:\n      pattern: '[a-z0-9.-]+'\n",
        requires.join(", ")
    )
}

fn write_bundle(root: &Path, id: &str, requires: &[&str]) {
    let dir = root.join(id);
    fs::create_dir_all(&dir).expect("bundle dir");
    fs::write(dir.join("manifest.yml"), manifest(id, requires)).expect("manifest");
    fs::write(dir.join("install.sh"), SCRIPT).expect("script");
}

fn sample() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tmp");
    for id in ["caddy", "nginx", "redis"] {
        write_bundle(root.path(), id, &[]);
    }
    root
}

fn scan(root: &Path) -> Catalog {
    Catalog::scan_with(root, None, Duration::ZERO)
}

fn rescan(previous: &Catalog) -> Catalog {
    Catalog::scan_with(&previous.root, Some(previous), Duration::ZERO)
}

fn stats(checked: usize, reused: usize) -> ScanStats {
    ScanStats { checked, reused }
}

fn ids(catalog: &Catalog) -> Vec<&str> {
    catalog.apps().map(|b| b.id()).collect()
}

fn digest(catalog: &Catalog, id: &str) -> String {
    catalog.get(id).expect("bundle").digest.clone()
}

/// Past the coarse tick of file times, so that a later write gets a later change time.
fn next_tick() {
    std::thread::sleep(Duration::from_millis(30));
}

#[test]
fn unchanged_bundles_are_taken_over_not_checked_again() {
    let root = sample();
    let first = scan(root.path());
    assert_eq!(first.stats(), stats(3, 0));
    let second = rescan(&first);
    assert_eq!(second.stats(), stats(0, 3));
    assert_eq!(ids(&second), ["caddy", "nginx", "redis"]);
    // The very same bundle, not an equal copy built again.
    assert!(Arc::ptr_eq(&first.apps["nginx"], &second.apps["nginx"]));
    assert_eq!(rescan(&second).stats(), stats(0, 3));
}

#[test]
fn a_plain_scan_reuses_nothing() {
    let root = sample();
    let _first = scan(root.path());
    assert_eq!(scan(root.path()).stats(), stats(3, 0));
}

#[test]
fn changed_content_and_length_is_checked_again() {
    let root = sample();
    let first = scan(root.path());
    fs::write(
        root.path().join("nginx/install.sh"),
        format!("{SCRIPT}echo changed\n"),
    )
    .expect("edit");
    let second = rescan(&first);
    assert_eq!(second.stats(), stats(1, 2));
    assert_ne!(digest(&second, "nginx"), digest(&first, "nginx"));
    assert_eq!(
        digest(&second, "nginx"),
        digest(&scan(root.path()), "nginx")
    );
}

#[test]
fn same_length_rewrite_in_place_with_restored_mtime_is_checked_again() {
    let root = sample();
    let path = root.path().join("nginx/install.sh");
    let before = fs::metadata(&path).expect("stat");
    let first = scan(root.path());
    next_tick();
    let same_length = SCRIPT.replace("done", "DONE");
    assert_eq!(same_length.len(), SCRIPT.len());
    let mut file = OpenOptions::new().write(true).open(&path).expect("open");
    file.write_all(same_length.as_bytes()).expect("rewrite");
    file.set_modified(before.modified().expect("mtime"))
        .expect("restore mtime");
    drop(file);
    let after = fs::metadata(&path).expect("stat");
    // Only the change time tells: same inode, length and modification time.
    assert_eq!(
        (after.ino(), after.len(), after.mtime(), after.mtime_nsec()),
        (
            before.ino(),
            before.len(),
            before.mtime(),
            before.mtime_nsec()
        )
    );
    let second = rescan(&first);
    assert_eq!(second.stats(), stats(1, 2));
    assert_ne!(digest(&second, "nginx"), digest(&first, "nginx"));
}

#[test]
fn file_replaced_by_rename_with_same_length_and_mtime_is_checked_again() {
    let root = sample();
    let path = root.path().join("nginx/manifest.yml");
    let before = fs::metadata(&path).expect("stat");
    let first = scan(root.path());
    let replacement = root.path().join("nginx/manifest.yml.new");
    let text = manifest("nginx", &[]).replace("App nginx", "App NGINX");
    fs::write(&replacement, text).expect("write");
    File::options()
        .write(true)
        .open(&replacement)
        .expect("open")
        .set_modified(before.modified().expect("mtime"))
        .expect("mtime");
    fs::rename(&replacement, &path).expect("rename");
    assert_ne!(fs::metadata(&path).expect("stat").ino(), before.ino());
    let second = rescan(&first);
    assert_eq!(second.stats(), stats(1, 2));
    assert_eq!(
        second.get("nginx").expect("nginx").manifest.name,
        "App NGINX"
    );
}

#[test]
fn touched_file_is_checked_again() {
    let root = sample();
    let first = scan(root.path());
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    File::options()
        .write(true)
        .open(root.path().join("redis/manifest.yml"))
        .expect("open")
        .set_modified(later)
        .expect("touch");
    assert_eq!(rescan(&first).stats(), stats(1, 2));
}

#[test]
fn removed_bundle_disappears_and_new_bundle_appears() {
    let root = sample();
    let first = scan(root.path());
    fs::remove_dir_all(root.path().join("caddy")).expect("remove");
    write_bundle(root.path(), "postgresql", &[]);
    let second = rescan(&first);
    assert_eq!(ids(&second), ["nginx", "postgresql", "redis"]);
    assert_eq!(second.stats(), stats(1, 2));
}

#[test]
fn bundle_that_became_invalid_is_reported_invalid() {
    let root = sample();
    let first = scan(root.path());
    fs::write(root.path().join("nginx/manifest.yml"), "garbage: [").expect("break");
    let second = rescan(&first);
    assert_eq!(ids(&second), ["caddy", "redis"]);
    assert_eq!(second.invalid().len(), 1);
    assert!(second.invalid()[0].dir.ends_with("nginx"));
}

#[test]
fn missing_script_is_noticed() {
    let root = sample();
    let first = scan(root.path());
    fs::remove_file(root.path().join("redis/install.sh")).expect("remove");
    let second = rescan(&first);
    assert_eq!(second.stats(), stats(1, 2));
    assert!(second.get("redis").is_none());
    assert!(second.invalid()[0].dir.ends_with("redis"));
}

#[test]
fn invalid_bundle_is_checked_on_every_rescan() {
    let root = sample();
    fs::write(root.path().join("nginx/manifest.yml"), "garbage: [").expect("break");
    let first = scan(root.path());
    assert_eq!(first.invalid().len(), 1);
    let second = rescan(&first);
    assert_eq!(second.stats(), stats(1, 2));
    assert_eq!(second.invalid().len(), 1);
    // Repaired without touching anything else: found at once.
    fs::write(
        root.path().join("nginx/manifest.yml"),
        manifest("nginx", &[]),
    )
    .expect("fix");
    let third = rescan(&second);
    assert_eq!(ids(&third), ["caddy", "nginx", "redis"]);
    assert!(third.invalid().is_empty());
}

#[test]
fn requirements_are_decided_over_the_new_set() {
    let root = sample();
    write_bundle(root.path(), "site", &["nginx"]);
    let first = scan(root.path());
    assert!(first.get("site").is_some());
    fs::remove_dir_all(root.path().join("nginx")).expect("remove");
    let second = rescan(&first);
    // `site` itself is unchanged and taken over, but what it needs is gone.
    assert_eq!(second.stats(), stats(0, 3));
    assert!(second.get("site").is_none());
    let why = &second.invalid()[0];
    assert_eq!(why.id_hint.as_deref(), Some("site"));
    assert_eq!(why.diagnostics[0].rule, "M049");
    write_bundle(root.path(), "nginx", &[]);
    let third = rescan(&second);
    assert_eq!(third.stats(), stats(1, 3));
    assert!(third.get("site").is_some());
    assert!(third.invalid().is_empty());
}

#[test]
fn bundle_with_a_symlinked_script_is_always_checked_again() {
    let root = sample();
    let dir = root.path().join("nginx");
    fs::rename(dir.join("install.sh"), dir.join("real.sh")).expect("move");
    std::os::unix::fs::symlink("real.sh", dir.join("install.sh")).expect("link");
    let first = scan(root.path());
    assert!(first.get("nginx").is_some());
    assert_eq!(rescan(&first).stats(), stats(1, 2));
}

#[test]
fn files_changed_within_the_settle_window_are_checked_again() {
    let root = sample();
    let first = Catalog::scan_with(root.path(), None, SETTLE);
    let second = Catalog::scan_with(root.path(), Some(&first), SETTLE);
    assert_eq!(second.stats(), stats(3, 0));
}

#[test]
fn a_large_rescan_keeps_the_order_and_finds_the_one_change() {
    let root = tempfile::tempdir().expect("tmp");
    for i in 0..150 {
        write_bundle(root.path(), &format!("app-{i:03}"), &[]);
    }
    let first = scan(root.path());
    assert_eq!(first.len(), 150);
    fs::write(root.path().join("app-077/manifest.yml"), "garbage: [").expect("break");
    let second = rescan(&first);
    assert_eq!(second.stats(), stats(1, 149));
    assert_eq!(second.len(), 149);
    assert!(second.invalid()[0].dir.ends_with("app-077"));
    let listed = ids(&second);
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    assert_eq!(listed, sorted);
}

#[test]
fn rescan_of_another_root_reuses_nothing() {
    let a = sample();
    let b = sample();
    let first = scan(a.path());
    let other = Catalog::scan_with(b.path(), Some(&first), Duration::ZERO);
    assert_eq!(other.stats(), stats(3, 0));
}
