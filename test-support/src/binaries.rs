//! The real `outfitter-panel` and `outfitter-runner` binaries, built on demand.
//!
//! Cargo builds only a package's own binaries for its tests (and artifact dependencies are not
//! stable), so the end-to-end suite and the bench run `cargo build -p outfitter-panel -p
//! outfitter-runner` into their own target directory and profile first: a no-op when fresh,
//! and cargo's lock serialises concurrent callers. `OUTFITTER_PANEL_BIN` and
//! `OUTFITTER_RUNNER_BIN` point at prebuilt binaries instead (nothing is built then).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// The two programs under test.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `outfitter-panel`.
    pub panel: PathBuf,
    /// `outfitter-runner`.
    pub runner: PathBuf,
}

impl Binaries {
    /// The prebuilt binaries named by `OUTFITTER_PANEL_BIN` and `OUTFITTER_RUNNER_BIN`, when
    /// both are set.
    pub fn from_env() -> Option<Self> {
        Some(Binaries {
            panel: std::env::var_os("OUTFITTER_PANEL_BIN")?.into(),
            runner: std::env::var_os("OUTFITTER_RUNNER_BIN")?.into(),
        })
    }

    /// Builds both into `profile_dir` (`<target>/<profile>`, the profile taken from its name)
    /// from the workspace at `workspace`.
    pub fn build(workspace: &Path, profile_dir: &Path) -> Result<Self> {
        let target_dir = profile_dir
            .parent()
            .with_context(|| format!("{} has no parent", profile_dir.display()))?;
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace)
            .args([
                "build",
                "--quiet",
                "-p",
                "outfitter-panel",
                "-p",
                "outfitter-runner",
            ])
            .arg("--target-dir")
            .arg(target_dir);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                cmd.arg("--release");
            }
            Some(other) => {
                cmd.args(["--profile", other]);
            }
            None => bail!(
                "cannot tell the cargo profile from {}",
                profile_dir.display()
            ),
        }
        let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
        if !out.status.success() {
            bail!(
                "{cmd:?} failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let bins = Binaries {
            panel: profile_dir.join("outfitter-panel"),
            runner: profile_dir.join("outfitter-runner"),
        };
        for b in [&bins.panel, &bins.runner] {
            ensure!(b.is_file(), "{} is missing after the build", b.display());
        }
        Ok(bins)
    }
}
