use std::path::Path;

use serde_json::json;

use super::*;

const DIGEST: &str = "1a7b1572d8a45cd7ffc8f7a411443dd90af3c4a74fbf1880b721a293ebc87a27";

fn summary(status: Outcome, digest: &str) -> ConformanceSummary {
    ConformanceSummary {
        schema: RESULT_SCHEMA.into(),
        digest: digest.into(),
        status,
        tested_at: "2026-11-22T10:51:10Z".into(),
        install_ms: Some(16_607),
        reinstall_ms: Some(2_269),
        smoke_passed: Some(true),
        reinstall_smoke_passed: Some(true),
    }
}

fn valid() -> serde_json::Value {
    serde_json::to_value(summary(Outcome::Passed, DIGEST)).unwrap()
}

fn write(dir: &Path, bytes: &[u8]) {
    std::fs::write(dir.join(RESULT_FILE), bytes).unwrap();
}

#[test]
fn passed_result_for_the_current_digest_is_passed() {
    let s = summary(Outcome::Passed, DIGEST);
    assert_eq!(catalog_status(Some(&s), DIGEST), CatalogStatus::Passed);
    assert!(CatalogStatus::Passed.is_proven());
}

#[test]
fn failed_result_for_the_current_digest_is_failed() {
    let s = summary(Outcome::Failed, DIGEST);
    assert_eq!(catalog_status(Some(&s), DIGEST), CatalogStatus::Failed);
    assert!(!CatalogStatus::Failed.is_proven());
}

#[test]
fn result_for_another_digest_is_stale_whatever_it_says() {
    let other = "ab".repeat(32);
    for outcome in [Outcome::Passed, Outcome::Failed] {
        let s = summary(outcome, DIGEST);
        assert_eq!(catalog_status(Some(&s), &other), CatalogStatus::Stale);
    }
    assert!(!CatalogStatus::Stale.is_proven());
}

#[test]
fn no_result_or_a_skipped_run_is_untested() {
    assert_eq!(catalog_status(None, DIGEST), CatalogStatus::Untested);
    let s = summary(Outcome::Skipped, DIGEST);
    assert_eq!(catalog_status(Some(&s), DIGEST), CatalogStatus::Untested);
    assert!(!CatalogStatus::Untested.is_proven());
}

#[test]
fn statuses_serialize_as_their_names() {
    for status in CatalogStatus::ALL {
        assert_eq!(
            serde_json::to_value(status).unwrap(),
            json!(status.as_str())
        );
    }
}

#[test]
fn bundle_without_a_result_file_reads_as_none() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(read_summary(dir.path()).unwrap(), None);
}

#[test]
fn summary_round_trips_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), valid().to_string().as_bytes());
    assert_eq!(
        read_summary(dir.path()).unwrap(),
        Some(summary(Outcome::Passed, DIGEST))
    );
}

#[test]
fn fields_outside_the_summary_are_ignored_and_missing_times_are_none() {
    let mut v = valid();
    v["steps"] = json!([{"name": "lint", "status": "passed"}]);
    v["bundle"] = json!("nginx");
    v.as_object_mut().unwrap().remove("install_ms");
    v["reinstall_ms"] = json!(null);
    let s = parse_summary(v.to_string().as_bytes()).unwrap();
    assert_eq!((s.install_ms, s.reinstall_ms), (None, None));
}

#[test]
fn every_committed_result_parses() {
    let installers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../installers");
    let mut read = 0;
    for entry in std::fs::read_dir(&installers).unwrap() {
        let dir = entry.unwrap().path();
        if dir.join(RESULT_FILE).exists() {
            let s = read_summary(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .unwrap();
            assert!(
                s.install_ms.is_some() || s.status != Outcome::Passed,
                "{}",
                dir.display()
            );
            read += 1;
        }
    }
    assert!(
        read > 0,
        "no committed conformance.json under {}",
        installers.display()
    );
}

fn error_for(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), bytes);
    read_summary(dir.path()).unwrap_err().to_string()
}

fn error_for_value(v: &serde_json::Value) -> String {
    error_for(v.to_string().as_bytes())
}

#[test]
fn wrong_schema_is_refused_naming_the_field() {
    let mut v = valid();
    v["schema"] = json!("outfitter-conformance-result/2");
    let e = error_for_value(&v);
    assert!(e.contains("`schema`") && e.contains(RESULT_SCHEMA), "{e}");
}

#[test]
fn tested_at_must_be_rfc3339() {
    for bad in [
        "yesterday",
        "<script>alert(1)</script>",
        "2026-13-01T00:00:00Z",
        "2026-02-31T00:00:00Z",
        "2025-02-29T00:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22 10:51:10",
    ] {
        let mut v = valid();
        v["tested_at"] = json!(bad);
        let e = error_for_value(&v);
        assert!(
            e.contains("`tested_at`") && e.contains("RFC 3339"),
            "{bad}: {e}"
        );
    }
    for good in [
        "2026-11-22T10:51:10Z",
        "2026-11-22T10:51:10.123+01:00",
        "2016-12-31T23:59:60Z",
        "2024-02-29T00:00:00Z",
    ] {
        assert!(is_rfc3339(good), "{good}");
    }
}

#[test]
fn digest_must_be_hex_or_empty() {
    let mut v = valid();
    v["digest"] = json!("0000-an-older-bundle");
    assert!(error_for_value(&v).contains("`digest`"));
    v["digest"] = json!("");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), v.to_string().as_bytes());
    let s = read_summary(dir.path()).unwrap().unwrap();
    assert_eq!(catalog_status(Some(&s), DIGEST), CatalogStatus::Stale);
}

#[test]
fn unknown_status_or_missing_field_is_refused_naming_it() {
    let mut v = valid();
    v["status"] = json!("totally-passed");
    let e = error_for_value(&v);
    assert!(e.contains("totally-passed") && e.contains("passed"), "{e}");
    let mut v = valid();
    v.as_object_mut().unwrap().remove("tested_at");
    let e = error_for_value(&v);
    assert!(e.contains("missing field `tested_at`"), "{e}");
}

#[test]
fn times_must_be_whole_non_negative_milliseconds() {
    for bad in [json!(-1), json!(1.5), json!("12"), json!(1e30)] {
        let mut v = valid();
        v["install_ms"] = bad.clone();
        let e = error_for_value(&v);
        assert!(e.contains("not a conformance result"), "{bad}: {e}");
    }
}

#[test]
fn hostile_bytes_give_an_error_not_a_panic() {
    let deep = "[".repeat(100_000);
    let long_value = format!("{{\"status\": \"{}\"}}", "x".repeat(100_000));
    for bytes in [
        &b""[..],
        b"\0\0\0",
        b"\xff\xfe{}",
        b"null",
        b"[]",
        b"{\"schema\": ",
        deep.as_bytes(),
        long_value.as_bytes(),
    ] {
        let e = error_for(bytes);
        assert!(e.contains("not a conformance result"), "{e}");
        assert!(e.len() < 400, "the message stays short: {} bytes", e.len());
    }
}

#[test]
fn oversized_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let size = MAX_CONFORMANCE_RESULT_BYTES + 1;
    let file = File::create(dir.path().join(RESULT_FILE)).unwrap();
    file.set_len(size).unwrap();
    let e = read_summary(dir.path()).unwrap_err();
    assert!(
        matches!(e, ResultFileError::TooLarge { size: s, .. } if s == size),
        "{e}"
    );
}

#[test]
fn directory_in_place_of_the_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(RESULT_FILE)).unwrap();
    assert!(matches!(
        read_summary(dir.path()),
        Err(ResultFileError::NotAFile { .. })
    ));
}

#[test]
fn fifo_in_place_of_the_file_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join(RESULT_FILE);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo unavailable; skipped");
        return;
    }
    // Opening a FIFO for reading would wait forever for a writer: read on another thread
    // so that a regression fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let path = dir.path().to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(matches!(
            read_summary(&path),
            Err(ResultFileError::NotAFile { .. })
        ));
    });
    let refused = rx.recv_timeout(std::time::Duration::from_secs(10));
    assert_eq!(refused, Ok(true), "a FIFO must be refused at once");
}

#[test]
fn symlink_to_a_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join(RESULT_FILE)).unwrap();
    assert!(matches!(
        read_summary(dir.path()),
        Err(ResultFileError::NotAFile { .. })
    ));
}

#[test]
fn tested_at_on_a_day_that_does_not_exist_is_refused() {
    assert!(!is_rfc3339("2026-02-31T00:00:00Z"));
    assert!(!is_rfc3339("2026-04-31T12:00:00+02:00"));
    assert!(is_rfc3339("2026-02-28T00:00:00Z"));
}
