//! The installer bundles the bench generates: a few measuring scripts that touch nothing on
//! the machine, and a catalog of generated apps with realistic forms for the panel figures.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Prints one line and exits 0 (the throughput job).
pub(crate) const NOOP: &str = "bench-noop";
/// Records the time of its first instruction, prints one line, exits 0 (the dispatch job).
pub(crate) const MARK: &str = "bench-mark";
/// Prints many lines as fast as bash can (the progress job).
pub(crate) const LINES: &str = "bench-lines";
/// Prints lines carrying the time they were written, 20 ms apart (the line delay job).
pub(crate) const TICK: &str = "bench-tick";

/// Prefix of the generated catalog apps (`app-0001`…).
pub(crate) const APP_PREFIX: &str = "app-";

/// Where the generated bundles are.
#[derive(Debug, Clone)]
pub(crate) struct Bundles {
    /// The measuring bundles only (what the runners serve).
    pub runner_catalog: PathBuf,
    /// The measuring bundles plus the generated apps (what the panel serves).
    pub panel_catalog: PathBuf,
    /// File the `bench-mark` script writes `$EPOCHREALTIME` into as its first instruction.
    pub mark_file: PathBuf,
}

/// Sizes of the generated jobs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    pub lines: u64,
    pub ticks: u64,
    pub apps: usize,
}

impl Bundles {
    /// Writes every bundle under `dir`.
    pub(crate) fn generate(dir: &Path, sizes: Sizes) -> Result<Self> {
        let runner_catalog = dir.join("runner-installers");
        let panel_catalog = dir.join("panel-installers");
        let mark_file = dir.join("first-instruction");
        let measuring = [
            (
                NOOP,
                "Prints one line and exits 0.",
                "echo \"installed\"\n".to_owned(),
            ),
            (
                MARK,
                "Records when its first instruction ran, prints one line and exits 0.",
                // `$EPOCHREALTIME` and printf are bash builtins: no process is started
                // before the time is taken.
                format!(
                    "printf '%s\\n' \"$EPOCHREALTIME\" > '{}'\necho \"installed\"\n",
                    mark_file.display()
                ),
            ),
            (
                LINES,
                "Prints numbered lines as fast as bash can.",
                format!(
                    "for ((i = 1; i <= {n}; i++)); do\n  echo \"line $i of {n}\"\ndone\n",
                    n = sizes.lines
                ),
            ),
            (
                TICK,
                "Prints lines carrying the time they were written, 20 ms apart.",
                format!(
                    "for ((i = 1; i <= {n}; i++)); do\n  echo \"tick $EPOCHREALTIME\"\n  sleep 0.02\ndone\n",
                    n = sizes.ticks
                ),
            ),
        ];
        for root in [&runner_catalog, &panel_catalog] {
            for (id, description, body) in &measuring {
                let mut manifest = measuring_manifest(id, description);
                if [LINES, TICK].contains(id) {
                    // The progress jobs carry a password, as real jobs do, so every line they
                    // print goes through the runner's masker.
                    manifest.push_str(PASSWORD_INPUT);
                }
                write_bundle(root, &manifest, body)?;
            }
        }
        for i in 1..=sizes.apps {
            let id = app_id(i);
            write_bundle(
                &panel_catalog,
                &app_manifest(&id, i),
                "echo \"installing $SITE_NAME\"\n",
            )?;
        }
        Ok(Self {
            runner_catalog,
            panel_catalog,
            mark_file,
        })
    }

    /// The script of a measuring bundle (for the raw-spawn baselines).
    pub(crate) fn script(&self, id: &str) -> PathBuf {
        self.runner_catalog.join(id).join("install.sh")
    }
}

/// The id of the `i`-th generated app.
pub(crate) fn app_id(i: usize) -> String {
    format!("{APP_PREFIX}{i:04}")
}

fn write_bundle(root: &Path, manifest: &str, body: &str) -> Result<()> {
    let id = manifest
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .context("a generated manifest has an id")?;
    let dir = root.join(id);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("manifest.yml"), manifest)?;
    std::fs::write(dir.join("install.sh"), format!("#!/bin/bash\n{body}"))?;
    Ok(())
}

/// The password input of the progress jobs (never printed by their scripts).
const PASSWORD_INPUT: &str = "inputs:\n  - name: bench_secret\n    type: password\n    \
                              label: A password the script never prints\n    required: false\n";

/// The value the progress figure sends for it: 24 characters, like a generated password.
pub(crate) const PROGRESS_SECRET: &str = "bench-S3cret/pa$$+word!?";

fn measuring_manifest(id: &str, description: &str) -> String {
    format!(
        "id: {id}\nname: Bench {id}\nversion: 1.0.0\ndescription: {description}\ncategory: benchmark\n\
         author: outfitter-bench\nos_requirements:\n  family: [debian, ubuntu]\n\
         timeout_seconds: 300\nidempotent: true\n"
    )
}

/// A manifest like a real web app's: several inputs, validation, a secret and `visible_if`.
fn app_manifest(id: &str, i: usize) -> String {
    const CATEGORIES: [&str; 10] = [
        "web",
        "database",
        "mail",
        "monitoring",
        "security",
        "storage",
        "devtools",
        "chat",
        "media",
        "network",
    ];
    let category = CATEGORIES[i % CATEGORIES.len()];
    format!(
        r#"id: {id}
name: Generated app {i}
version: 1.{minor}.0
description: >-
  A generated {category} application number {i}, with a form of six inputs, used to measure
  the panel with a catalog of realistic size.
category: {category}
author: outfitter-bench
tags: [{category}, generated, bench]
os_requirements:
  family: [debian, ubuntu]
  min_version: "11"
resource_requirements:
  min_ram_mb: 128
  min_disk_mb: 100
timeout_seconds: 600
idempotent: true
inputs:
  - name: site_name
    type: string
    label: Site name
    description: Lowercase letters, digits and dashes.
    required: true
    validation:
      pattern: '^[a-z][a-z0-9-]{{2,29}}$'
  - name: http_port
    type: port
    label: HTTP port
    required: true
    default: 8080
    validation:
      min: 1024
      max: 65535
  - name: edition
    type: select
    label: Edition
    default: community
    validation:
      allowed_values: [community, enterprise]
  - name: enable_tls
    type: boolean
    label: Enable HTTPS
    default: false
  - name: tls_email
    type: email
    label: Email for certificates
    required: true
    visible_if:
      enable_tls: true
  - name: admin_password
    type: password
    label: Admin password
    required: true
    validation:
      min_length: 12
"#,
        minor = i % 7
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use outfitter_contract::catalog::Catalog;

    #[test]
    fn every_generated_bundle_loads_without_errors() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = Sizes {
            lines: 10,
            ticks: 2,
            apps: 12,
        };
        let b = Bundles::generate(dir.path(), sizes).unwrap();
        let panel = Catalog::scan(&b.panel_catalog);
        assert!(
            panel.invalid().is_empty(),
            "invalid bundles: {:?}",
            panel.invalid()
        );
        assert_eq!(panel.apps().count(), 12 + 4);
        let runner = Catalog::scan(&b.runner_catalog);
        assert!(
            runner.invalid().is_empty(),
            "invalid bundles: {:?}",
            runner.invalid()
        );
        for id in [NOOP, MARK, LINES, TICK] {
            assert_eq!(
                panel.get(id).unwrap().digest,
                runner.get(id).unwrap().digest,
                "{id} differs between the panel's and the runners' catalogs"
            );
        }
    }
}
