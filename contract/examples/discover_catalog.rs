//! Catalog discovery benchmark: generate N realistic bundles, then scan and validate them.
//!
//! ```text
//! cargo build --release -p outfitter-contract --example discover_catalog
//! target/release/examples/discover_catalog generate /tmp/outfitter-bench 10000
//! /usr/bin/time -v target/release/examples/discover_catalog scan /tmp/outfitter-bench
//! ```
//! Results are recorded in docs/benchmarks.md ("Catalog discovery").

use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use outfitter_contract::catalog::Catalog;

const SCRIPT: &str = r#"#!/usr/bin/env bash
set -euo pipefail
echo "::progress 10 Installing packages"
apt-get update -q
apt-get install -y -q nginx
echo "::progress 60 Configuring ${SERVER_NAME}"
install -d /var/www/app
echo "::progress 100 Done"
"#;

/// A manifest like the seed nginx example, with a few more inputs of each kind so the
/// validation work is representative (patterns, select, visible_if, password).
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

fn generate(root: &Path, count: usize) -> std::io::Result<()> {
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

fn scan(root: &Path) -> ExitCode {
    let started = Instant::now();
    let catalog = Catalog::scan(root);
    let took = started.elapsed();
    println!(
        "scanned {} valid and {} invalid bundles in {:.3} s ({} categories)",
        catalog.len(),
        catalog.invalid().len(),
        took.as_secs_f64(),
        catalog.categories().len()
    );
    if let Some(first) = catalog.invalid().first() {
        eprintln!(
            "first invalid bundle: {} {:?}",
            first.dir.display(),
            first.diagnostics
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [command, root, count] if command == "generate" => {
            let Ok(count) = count.parse::<usize>() else {
                eprintln!("count must be a number");
                return ExitCode::from(2);
            };
            match generate(Path::new(root), count) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("cannot generate: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        [command, root] if command == "scan" => scan(Path::new(root)),
        _ => {
            eprintln!("usage: discover_catalog generate <dir> <count> | scan <dir>");
            ExitCode::from(2)
        }
    }
}
