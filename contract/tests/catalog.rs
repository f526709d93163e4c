//! The catalog: discovery, invalid bundles, search, categories and reload.

mod common;

use std::fs;
use std::path::Path;

use common::{CLEAN_SCRIPT, base, yaml};
use outfitter_contract::catalog::Catalog;
use serde_json::json;

fn write_bundle(root: &Path, id: &str, category: &str, description: &str, tags: &[&str]) {
    let mut manifest = base();
    manifest["id"] = json!(id);
    manifest["name"] = json!(format!("App {id}"));
    manifest["category"] = json!(category);
    manifest["description"] = json!(description);
    manifest["tags"] = json!(tags);
    let dir = root.join(id);
    fs::create_dir_all(&dir).expect("dir");
    fs::write(dir.join("manifest.yml"), yaml(&manifest)).expect("manifest");
    fs::write(dir.join("install.sh"), CLEAN_SCRIPT).expect("script");
}

fn sample_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tmp");
    write_bundle(
        root.path(),
        "nginx",
        "web",
        "Fast HTTP server and reverse proxy.",
        &["http"],
    );
    write_bundle(
        root.path(),
        "postgresql",
        "database",
        "Relational database.",
        &["sql"],
    );
    write_bundle(
        root.path(),
        "caddy",
        "web",
        "HTTP server with automatic TLS.",
        &["http", "tls"],
    );
    root
}

fn ids<'a>(
    bundles: impl IntoIterator<Item = &'a outfitter_contract::manifest::Bundle>,
) -> Vec<&'a str> {
    bundles
        .into_iter()
        .map(|b| b.manifest.id.as_str())
        .collect()
}

#[test]
fn scan_finds_every_valid_bundle_sorted_by_id() {
    let root = sample_root();
    let catalog = Catalog::scan(root.path());
    assert_eq!(ids(catalog.apps()), vec!["caddy", "nginx", "postgresql"]);
    assert!(catalog.invalid().is_empty());
    assert_eq!(
        catalog.get("nginx").expect("nginx").manifest.category,
        "web"
    );
    assert!(catalog.get("missing").is_none());
}

#[test]
fn invalid_bundle_is_left_out_and_reported_without_taking_the_catalog_down() {
    let root = sample_root();
    write_bundle(root.path(), "broken", "web", "x", &[]);
    fs::write(
        root.path().join("broken/manifest.yml"),
        "id: broken\ntimeout_seconds: 0\n",
    )
    .expect("write");
    let catalog = Catalog::scan(root.path());
    assert_eq!(catalog.len(), 3);
    let invalid = &catalog.invalid()[0];
    assert_eq!(invalid.id_hint.as_deref(), Some("broken"));
    assert!(invalid.diagnostics.iter().any(|d| d.rule == "M007"));
}

#[test]
fn unreadable_root_gives_an_empty_catalog_and_a_problem() {
    let catalog = Catalog::scan(Path::new("/nonexistent/installers"));
    assert!(catalog.is_empty());
    assert_eq!(catalog.invalid().len(), 1);
    assert_eq!(catalog.invalid()[0].diagnostics[0].rule, "M001");
}

#[test]
fn hidden_directories_and_plain_files_are_not_bundles() {
    let root = sample_root();
    fs::create_dir(root.path().join(".git")).expect("dir");
    fs::write(root.path().join("README.md"), "hello").expect("file");
    let catalog = Catalog::scan(root.path());
    assert_eq!(catalog.len(), 3);
    assert!(catalog.invalid().is_empty());
}

#[test]
fn search_matches_every_word_case_insensitively() {
    let root = sample_root();
    let catalog = Catalog::scan(root.path());
    assert_eq!(
        ids(catalog.search(Some("HTTP"), None)),
        vec!["caddy", "nginx"]
    );
    assert_eq!(ids(catalog.search(Some("http tls"), None)), vec!["caddy"]);
    assert_eq!(ids(catalog.search(Some("sql"), None)), vec!["postgresql"]);
    assert!(catalog.search(Some("nothing-like-this"), None).is_empty());
    assert_eq!(catalog.search(None, None).len(), 3);
    assert_eq!(catalog.search(Some("   "), None).len(), 3);
}

#[test]
fn search_filters_by_exact_category() {
    let root = sample_root();
    let catalog = Catalog::scan(root.path());
    assert_eq!(
        ids(catalog.search(None, Some("database"))),
        vec!["postgresql"]
    );
    assert_eq!(
        ids(catalog.search(Some("proxy"), Some("web"))),
        vec!["nginx"]
    );
    assert!(catalog.search(None, Some("we")).is_empty());
}

#[test]
fn categories_are_sorted_and_unique() {
    let catalog = Catalog::scan(sample_root().path());
    assert_eq!(catalog.categories(), vec!["database", "web"]);
}

#[test]
fn scanning_again_picks_up_changes_without_a_restart() {
    let root = sample_root();
    let before = Catalog::scan(root.path());
    let old_digest = before.get("nginx").expect("nginx").digest.clone();
    fs::write(
        root.path().join("nginx/install.sh"),
        format!("{CLEAN_SCRIPT}echo changed\n"),
    )
    .expect("edit");
    write_bundle(root.path(), "redis", "database", "Key-value store.", &[]);
    fs::remove_dir_all(root.path().join("caddy")).expect("remove");
    let after = Catalog::scan(root.path());
    assert_eq!(ids(after.apps()), vec!["nginx", "postgresql", "redis"]);
    assert_ne!(after.get("nginx").expect("nginx").digest, old_digest);
    // The old catalog is an independent value: holders of it are unaffected.
    assert_eq!(before.len(), 3);
}

#[test]
fn large_catalog_is_scanned_in_parallel_with_the_same_result() {
    let root = tempfile::tempdir().expect("tmp");
    for i in 0..150 {
        write_bundle(root.path(), &format!("app-{i:03}"), "web", "x", &[]);
    }
    fs::write(root.path().join("app-007/manifest.yml"), "garbage: [").expect("break one");
    let catalog = Catalog::scan(root.path());
    assert_eq!(catalog.len(), 149);
    assert_eq!(catalog.invalid().len(), 1);
    assert!(catalog.invalid()[0].dir.ends_with("app-007"));
    let listed = ids(catalog.apps());
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    assert_eq!(listed, sorted);
}

/// A bundle that `requires` the given ids.
fn write_requiring(root: &Path, id: &str, requires: &[&str]) {
    write_bundle(root, id, "web", "Stands on others.", &[]);
    let mut manifest = base();
    manifest["id"] = json!(id);
    manifest["name"] = json!(format!("App {id}"));
    manifest["requires"] = json!(requires);
    fs::write(root.join(id).join("manifest.yml"), yaml(&manifest)).expect("manifest");
}

#[test]
fn bundles_whose_requirements_cannot_be_met_are_not_offered_and_say_why() {
    let root = sample_root();
    write_requiring(root.path(), "nginx-site", &["nginx"]);
    write_requiring(root.path(), "orphan", &["no-such-app"]);
    write_requiring(root.path(), "ping", &["pong"]);
    write_requiring(root.path(), "pong", &["ping"]);
    write_requiring(root.path(), "selfish", &["selfish"]);
    write_requiring(root.path(), "twice", &["nginx", "nginx"]);
    let c = Catalog::scan(root.path());
    assert!(c.get("nginx-site").is_some(), "met requirements load");
    let why = |id: &str| -> (String, String) {
        let bad = c
            .invalid()
            .iter()
            .find(|b| b.id_hint.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("{id} is reported invalid"));
        let d = &bad.diagnostics[0];
        (d.rule.to_owned(), d.message.clone())
    };
    let (rule, message) = why("orphan");
    assert_eq!(rule, "M049");
    assert!(message.contains("'no-such-app'"), "{message}");
    let (rule, message) = why("ping");
    assert_eq!(rule, "M049");
    assert!(message.contains("ping → pong → ping"), "{message}");
    assert_eq!(why("selfish").0, "M048");
    assert_eq!(why("twice").0, "M048");
}
