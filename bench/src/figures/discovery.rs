//! Figure 12: catalog discovery (issue 13 goal 5). `Catalog::scan` of 10,000 generated
//! bundles (2,000 in quick mode), then `Catalog::rescan` with nothing changed and after
//! changing 1% of the scripts; beside the file-system floor of the same work: listing the
//! directories and reading (or, for a rescan, `lstat`ing) every file the scan reads, one
//! thread per core. Each measurement runs in a child process (this program again, hidden
//! subcommand `discover-child`), so its CPU and peak RSS are the scan's own.

use std::fs;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use nix::sys::resource::{UsageWho, getrusage};
use outfitter_contract::catalog::{Catalog, SETTLE, parallel_map};
use serde_json::{Value, json};

use super::Ctx;
use crate::report::{Figure, Goal, Row};
use crate::stats::{factor, thousands};

/// The hidden subcommand a child runs.
pub(crate) const CHILD: &str = "discover-child";
/// The goals of issue 13 (goal 5): 10,000 bundles in under a second, under 200 MB.
const GOAL_BUNDLES: usize = 10_000;
const GOAL_WALL_S: f64 = 1.0;
const GOAL_PEAK_MB: f64 = 200.0;
/// Every hundredth bundle's script is changed before the second rescan.
const CHANGE_EVERY: usize = 100;

/// What a `discover-child` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ChildMode {
    /// Cold scan, rescan unchanged, change 1% of the scripts, rescan.
    Scan,
    /// The file-system floor: list + `lstat`, then list + read every file.
    Floor,
}

impl ChildMode {
    fn arg(self) -> &'static str {
        match self {
            Self::Scan => "scan",
            Self::Floor => "floor",
        }
    }
}

pub(crate) async fn measure(ctx: &mut Ctx) -> Result<Figure> {
    let count = if ctx.plan.quick { 2_000 } else { GOAL_BUNDLES };
    let runs = if ctx.plan.quick { 1 } else { 3 };
    let root = ctx.work_dir.join("discovery");
    let generating = Instant::now();
    generate(&root, count)?;
    let generated_in = generating.elapsed();
    let mut floor = Vec::new();
    let mut scan = Vec::new();
    for _ in 0..runs {
        floor.push(run_child(&root, ChildMode::Floor).await?);
        // Files younger than the settle window are checked again by design; the rescan
        // figures are of a catalog that was not just written.
        tokio::time::sleep(SETTLE + Duration::from_millis(200)).await;
        let s = run_child(&root, ChildMode::Scan).await?;
        ensure!(
            s["cold"]["valid"].as_u64() == Some(count as u64),
            "the cold scan found {} valid bundles of {count}: {s}",
            s["cold"]["valid"]
        );
        scan.push(s);
    }
    let median = |runs: &[Value], path: &[&str]| -> f64 {
        let mut v: Vec<f64> = runs
            .iter()
            .filter_map(|r| path.iter().try_fold(r, |r, k| r.get(k)))
            .filter_map(Value::as_f64)
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let cold_wall = median(&scan, &["cold", "wall_s"]);
    let cold_cpu = median(&scan, &["cold", "cpu_s"]);
    let cold_peak = median(&scan, &["cold", "peak_kib"]);
    let same_wall = median(&scan, &["unchanged", "wall_s"]);
    let same_checked = median(&scan, &["unchanged", "checked"]);
    let changed_wall = median(&scan, &["changed", "wall_s"]);
    let changed_checked = median(&scan, &["changed", "checked"]);
    let changed_files = median(&scan, &["changed", "files_changed"]);
    let end_peak = median(&scan, &["peak_kib"]);
    let read_wall = median(&floor, &["read", "wall_s"]);
    let read_cpu = median(&floor, &["read", "cpu_s"]);
    let read_peak = median(&floor, &["peak_kib"]);
    let stat_wall = median(&floor, &["stat", "wall_s"]);
    let files = median(&floor, &["read", "files"]);
    let bytes = median(&floor, &["read", "bytes"]);
    let cores = workers();
    let mb = |kib: f64| kib * 1024.0 / 1e6;
    let n = thousands(count as u64);
    let read_floor = format!(
        "list + read {} files ({:.1} MB), {cores} threads: {}",
        thousands(files as u64),
        bytes / 1e6,
        secs(read_wall)
    );
    let stat_floor = format!(
        "list + `lstat` the same files, {cores} threads: {}",
        secs(stat_wall)
    );
    let rows = vec![
        Row::new(
            format!("cold scan of {n} bundles: wall"),
            format!(
                "{} ({:.0} µs of CPU per bundle)",
                secs(cold_wall),
                cold_cpu * 1e6 / count as f64
            ),
        )
        .against(read_floor, factor(cold_wall, read_wall)),
        Row::new(
            "cold scan: user + system CPU",
            format!(
                "{} ({:.1} cores busy)",
                secs(cold_cpu),
                cold_cpu / cold_wall
            ),
        )
        .against(
            format!("the same floor: {}", secs(read_cpu)),
            factor(cold_cpu, read_cpu),
        ),
        Row::new(
            "cold scan: peak RSS",
            format!(
                "{:.0} MB ({:.1} KB per bundle)",
                mb(cold_peak),
                mb(cold_peak) * 1000.0 / count as f64
            ),
        )
        .against(
            format!("the floor's process: {:.0} MB", mb(read_peak)),
            String::new(),
        ),
        Row::new(
            "rescan, nothing changed: wall",
            format!(
                "{} ({} of {n} bundles checked again)",
                secs(same_wall),
                same_checked
            ),
        )
        .against(stat_floor.clone(), factor(same_wall, stat_wall)),
        Row::new(
            format!("rescan after changing {changed_files} scripts (1%): wall"),
            format!(
                "{} ({} bundles checked again)",
                secs(changed_wall),
                changed_checked
            ),
        )
        .against(stat_floor, factor(changed_wall, stat_wall)),
        Row::new(
            "peak RSS after the cold scan and both rescans",
            format!("{:.0} MB", mb(end_peak)),
        ),
    ];
    // The goal is for 10,000 bundles; the quick run's 2,000 are scaled linearly.
    let scale = GOAL_BUNDLES as f64 / count as f64;
    let quick_note = if count == GOAL_BUNDLES {
        String::new()
    } else {
        format!(" ({n} bundles in quick mode, ×{scale:.0})")
    };
    let goals = vec![
        Goal {
            text: format!(
                "{} bundles discovered and validated in < {GOAL_WALL_S:.0} s wall on {cores} cores",
                thousands(GOAL_BUNDLES as u64)
            ),
            measured: format!(
                "cold scan {}{quick_note}; rescan with nothing changed {}",
                secs(cold_wall * scale),
                secs(same_wall * scale)
            ),
            met: cold_wall * scale < GOAL_WALL_S,
        },
        Goal {
            text: format!("< {GOAL_PEAK_MB:.0} MB peak"),
            measured: format!("{:.0} MB{quick_note}", mb(cold_peak) * scale),
            met: mb(cold_peak) * scale < GOAL_PEAK_MB,
        },
    ];
    Ok(Figure {
        number: 12,
        title: "Discovery".into(),
        method: format!(
            "{n} generated bundles (each a 1.2 KB manifest with seven inputs of every type — \
             pattern, port, bounds, boolean, select with `visible_if`, e-mail, password — and an \
             8-line script; written in {:.1} s) in the run's temporary directory, page cache \
             warm. A child process (`outfitter-bench {CHILD}`) scans them with \
             `Catalog::scan`: list, read each manifest under the size cap, parse the YAML \
             under its budget, check the schema and every rule, check and read the script, \
             digest, build the input schema; one worker per core taking the next bundle from \
             a shared counter. In the same process it then calls `Catalog::rescan` with \
             nothing changed (every bundle's files `lstat`ed, none read), changes every \
             {CHANGE_EVERY}th script and rescans again. Wall time is taken around each call, \
             CPU from `getrusage(RUSAGE_SELF)` before and after, peak RSS from `ru_maxrss`. \
             The scan waits {} s after the last write, as files that changed within the \
             settle window are checked again by design. Baseline: another child doing only \
             the file-system part — list the directories and read every manifest and script \
             (for the rescan: `lstat` them) on one thread per core. Median of {runs} run{}.",
            generated_in.as_secs_f64(),
            SETTLE.as_secs(),
            if runs == 1 { "" } else { "s" }
        ),
        rows,
        goals,
        tables: vec![],
        summary: format!(
            "12. Discovery ({n} bundles, {cores} cores): cold scan {} wall, {} CPU, {:.0} MB peak; \
             rescan unchanged {}, after 1% changed {} ({changed_checked} checked); file-system \
             floor {}",
            secs(cold_wall),
            secs(cold_cpu),
            mb(cold_peak),
            secs(same_wall),
            secs(changed_wall),
            secs(read_wall)
        ),
    })
}

/// Runs one child and returns what it printed.
async fn run_child(root: &Path, mode: ChildMode) -> Result<Value> {
    let exe = std::env::current_exe().context("finding this program")?;
    let out = tokio::process::Command::new(exe)
        .arg(CHILD)
        .arg(root)
        .arg(mode.arg())
        .output()
        .await
        .context("starting the discovery child")?;
    ensure!(
        out.status.success(),
        "{CHILD} {} failed ({}): {}",
        mode.arg(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{CHILD} printed {}", String::from_utf8_lossy(&out.stdout)))
}

/// The child: measures, prints one JSON object on stdout.
pub(crate) fn child(root: &Path, mode: ChildMode) -> Result<()> {
    let result = match mode {
        ChildMode::Scan => child_scan(root)?,
        ChildMode::Floor => child_floor(root)?,
    };
    println!("{result}");
    Ok(())
}

fn child_scan(root: &Path) -> Result<Value> {
    let (cold, catalog) = timed(|| Catalog::scan(root));
    let cold_peak = peak_kib();
    let (unchanged, same) = timed(|| catalog.rescan());
    let mut files_changed = 0;
    for (i, bundle) in catalog.apps().enumerate() {
        if i % CHANGE_EVERY == 0 {
            let mut script = fs::read(&bundle.script_path)?;
            script.extend_from_slice(b"echo \"::progress 100 changed\"\n");
            fs::write(&bundle.script_path, script)?;
            files_changed += 1;
        }
    }
    let (changed, after) = timed(|| same.rescan());
    Ok(json!({
        "cold": {
            "wall_s": cold.wall, "cpu_s": cold.cpu, "peak_kib": cold_peak,
            "valid": catalog.len(), "invalid": catalog.invalid().len(),
        },
        "unchanged": {
            "wall_s": unchanged.wall, "cpu_s": unchanged.cpu,
            "checked": same.stats().checked, "reused": same.stats().reused,
        },
        "changed": {
            "wall_s": changed.wall, "cpu_s": changed.cpu, "files_changed": files_changed,
            "checked": after.stats().checked, "reused": after.stats().reused,
            "valid": after.len(),
        },
        "peak_kib": peak_kib(),
    }))
}

fn child_floor(root: &Path) -> Result<Value> {
    let (stat, stats) = timed(|| {
        let files = files_of(root)?;
        let ok = parallel_map(&files, |path| fs::symlink_metadata(path).is_ok());
        anyhow::Ok(ok.iter().filter(|&&ok| ok).count())
    });
    let stats = stats?;
    let (read, read_bytes) = timed(|| {
        let files = files_of(root)?;
        let sizes = parallel_map(&files, |path| fs::read(path).map_or(0, |b| b.len()));
        anyhow::Ok((files.len(), sizes.iter().sum::<usize>()))
    });
    let (files, bytes) = read_bytes?;
    Ok(json!({
        "stat": { "wall_s": stat.wall, "cpu_s": stat.cpu, "files": stats },
        "read": { "wall_s": read.wall, "cpu_s": read.cpu, "files": files, "bytes": bytes },
        "peak_kib": peak_kib(),
    }))
}

/// Every file a scan reads: each bundle directory's manifest and script.
fn files_of(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let dir = entry.path();
            files.push(dir.join("manifest.yml"));
            files.push(dir.join("install.sh"));
        }
    }
    Ok(files)
}

fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Wall and CPU seconds of one call.
struct Timing {
    wall: f64,
    cpu: f64,
}

fn timed<T>(f: impl FnOnce() -> T) -> (Timing, T) {
    let cpu_before = cpu_s();
    let started = Instant::now();
    let out = f();
    let wall = started.elapsed().as_secs_f64();
    (
        Timing {
            wall,
            cpu: cpu_s() - cpu_before,
        },
        out,
    )
}

/// User + system CPU of this process (every thread), in seconds.
fn cpu_s() -> f64 {
    getrusage(UsageWho::RUSAGE_SELF).map_or(f64::NAN, |u| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    })
}

/// The peak resident size of this process so far, in KiB.
fn peak_kib() -> i64 {
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |u| u.max_rss())
}

fn secs(s: f64) -> String {
    if s < 0.1 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// Writes `count` bundles `app-00000`… under `root`.
fn generate(root: &Path, count: usize) -> Result<()> {
    fs::create_dir_all(root)?;
    for i in 0..count {
        let id = format!("app-{i:05}");
        let dir = root.join(&id);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("manifest.yml"), manifest(&id, i))?;
        fs::write(dir.join("install.sh"), SCRIPT)?;
    }
    Ok(())
}

const SCRIPT: &str = r#"#!/usr/bin/env bash
set -euo pipefail
echo "::progress 10 Installing packages"
apt-get update -q
apt-get install -y -q nginx
echo "::progress 60 Configuring ${SERVER_NAME}"
install -d /var/www/app
echo "::progress 100 Done"
"#;

/// A manifest like the seed nginx example, with more inputs of each kind so the validation
/// work is representative (pattern, bounds, select, `visible_if`, password).
fn manifest(id: &str, i: usize) -> String {
    let category = ["web", "database", "monitoring", "cache", "mail"][i % 5];
    format!(
        r#"id: {id}
name: Generated app {i}
version: "1.{minor}.0"
description: A generated installer number {i} for the discovery benchmark.
category: {category}
author: Benchmark
os_requirements:
  family: [debian, ubuntu]
  min_version: "11"
resource_requirements:
  min_ram_mb: 256
  min_disk_mb: 200
timeout_seconds: 600
idempotent: true
retry:
  max_attempts: 3
  backoff_seconds: 10
tags: [bench, generated]
inputs:
  - name: server_name
    type: string
    label: Server name
    required: true
    default: example.com
    validation:
      pattern: '[a-z0-9]([a-z0-9.-]*[a-z0-9])?'
      max_length: 253
  - name: http_port
    type: port
    label: HTTP port
    default: 80
  - name: workers
    type: integer
    label: Workers
    default: 2
    validation: {{ min: 1, max: 64 }}
  - name: tls
    type: boolean
    label: Enable TLS
  - name: tls_mode
    type: select
    label: TLS mode
    default: auto
    validation: {{ allowed_values: [auto, manual] }}
    visible_if: {{ tls: true }}
  - name: admin_email
    type: email
    label: Admin e-mail
    visible_if: {{ tls: true, tls_mode: auto }}
  - name: admin_password
    type: password
    label: Admin password
    required: true
    validation: {{ min_length: 12 }}
"#,
        minor = i % 10
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_bundles_are_valid_and_every_file_is_listed() {
        let tmp = tempfile::tempdir().expect("tmp");
        generate(tmp.path(), 70).expect("generate");
        let catalog = Catalog::scan(tmp.path());
        assert_eq!(catalog.len(), 70, "{:?}", catalog.invalid().first());
        assert_eq!(catalog.categories().len(), 5);
        let files = files_of(tmp.path()).expect("files");
        assert_eq!(files.len(), 140);
        assert!(parallel_map(&files, |p| p.is_file()).iter().all(|&ok| ok));
    }
}
