//! The release `outfitter-panel` and `outfitter-runner` the bench measures.
//!
//! `cargo run --release -p outfitter-bench` builds only the bench, so it runs
//! `cargo build --release -p outfitter-panel -p outfitter-runner` into its own target
//! directory first (a no-op when they are fresh). `OUTFITTER_PANEL_BIN` and
//! `OUTFITTER_RUNNER_BIN` point at prebuilt binaries instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// The two programs under test.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    pub panel: PathBuf,
    pub runner: PathBuf,
}

/// Finds or builds the release binaries.
pub(crate) fn release_binaries() -> Result<Binaries> {
    if let (Some(panel), Some(runner)) = (
        std::env::var_os("OUTFITTER_PANEL_BIN"),
        std::env::var_os("OUTFITTER_RUNNER_BIN"),
    ) {
        return Ok(Binaries {
            panel: panel.into(),
            runner: runner.into(),
        });
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().context("the bench binary has no directory")?;
    ensure!(
        profile_dir.file_name().is_some_and(|n| n == "release"),
        "the bench must run from target/release (use `cargo run --release -p outfitter-bench`), \
         or set OUTFITTER_PANEL_BIN and OUTFITTER_RUNNER_BIN; it is at {}",
        exe.display()
    );
    let target_dir = profile_dir
        .parent()
        .context("target/release has no parent")?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("bench/ is inside the workspace")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "outfitter-panel",
            "-p",
            "outfitter-runner",
        ])
        .arg("--target-dir")
        .arg(target_dir);
    eprintln!("outfitter-bench: building the release panel and runner (no-op when fresh)");
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
