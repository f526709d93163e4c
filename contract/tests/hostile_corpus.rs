//! The hostile-manifest corpus: every file under `tests/hostile-manifests/` and a few
//! generated giants must be rejected with their rule id, each in under a second, with
//! bounded memory.

mod common;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{CLEAN_SCRIPT, TestBundle};
use outfitter_contract::manifest::{Diagnostic, check_bundle};

const TIME_LIMIT: Duration = Duration::from_secs(1);
/// Peak resident memory the whole corpus may add to the test process.
const MEMORY_LIMIT_KIB: u64 = 64 * 1024;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/hostile-manifests")
}

/// Peak resident set size of this process (Linux `VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Deterministic pseudo-random bytes (xorshift), so the garbage case is reproducible.
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn generated_cases() -> Vec<(String, &'static str, Vec<u8>)> {
    let mut twenty_mb = b"id: app\ndescription: \"".to_vec();
    twenty_mb.resize(20 * 1024 * 1024, b'a');
    let mut utf8_garbage: Vec<u8> = garbage(4096, 7).into_iter().map(|b| b | 0x80).collect();
    utf8_garbage.insert(0, b'x');
    vec![
        ("M002-twenty-megabytes".into(), "M002", twenty_mb),
        (
            "M002-100000-nested-brackets".into(),
            "M002",
            format!("id: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        ),
        (
            "M005-30000-nested-brackets".into(),
            "M005",
            format!("id: {}{}\n", "[".repeat(30_000), "]".repeat(30_000)).into_bytes(),
        ),
        (
            "M005-30000-nested-braces".into(),
            "M005",
            format!("id: {}{}\n", "{a: ".repeat(10_000), "}".repeat(10_000)).into_bytes(),
        ),
        ("M003-binary-garbage".into(), "M003", garbage(60_000, 42)),
        ("M003-high-bit-garbage".into(), "M003", utf8_garbage),
        (
            "M003-nul-in-the-middle".into(),
            "M003",
            b"id: app\nname: a\0b\n".to_vec(),
        ),
        (
            "M005-many-small-keys".into(),
            "M005",
            (0..6000)
                .map(|i| format!("k{i}: v\n"))
                .collect::<String>()
                .into_bytes(),
        ),
    ]
}

fn file_cases() -> Vec<(String, &'static str, Vec<u8>)> {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("tests/hostile-manifests exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            let rule = outfitter_contract::manifest::rules::ALL
                .iter()
                .find(|r| name.starts_with(&format!("{}-", r.id)))
                .unwrap_or_else(|| panic!("{name}: the file name must start with a rule id"))
                .id;
            (name, rule, fs::read(&path).expect("read case"))
        })
        .collect()
}

#[test]
fn every_hostile_manifest_is_rejected_with_its_rule_quickly_and_in_bounded_memory() {
    let cases: Vec<_> = file_cases().into_iter().chain(generated_cases()).collect();
    assert!(cases.len() >= 50, "the corpus shrank to {}", cases.len());
    let before = peak_rss_kib();
    let mut failures = Vec::new();
    for (name, rule, bytes) in &cases {
        let bundle = TestBundle::raw(bytes, CLEAN_SCRIPT);
        let started = Instant::now();
        let report = check_bundle(bundle.path());
        let took = started.elapsed();
        let errors: Vec<&Diagnostic> = report.diagnostics.iter().filter(|d| d.is_error()).collect();
        if report.bundle.is_some() || !errors.iter().any(|d| d.rule == *rule) {
            failures.push(format!(
                "{name}: expected {rule}, got {:?}",
                report.diagnostics
            ));
        }
        if took > TIME_LIMIT {
            failures.push(format!("{name}: took {took:?}"));
        }
    }
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(grown < MEMORY_LIMIT_KIB, "peak memory grew by {grown} KiB");
}

#[test]
fn a_twenty_megabyte_manifest_is_refused_without_reading_it() {
    let mut huge = vec![b'#'; 20 * 1024 * 1024];
    huge[0] = b'i';
    let bundle = TestBundle::raw(&huge, CLEAN_SCRIPT);
    let before = peak_rss_kib();
    let started = Instant::now();
    let report = check_bundle(bundle.path());
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(report.diagnostics[0].rule, "M002");
    // Writing the file above already allocated 20 MB; loading must not add another copy.
    assert!(peak_rss_kib().saturating_sub(before) < 8 * 1024);
}
