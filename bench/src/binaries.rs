//! The release `outfitter-panel` and `outfitter-runner` the bench measures.
//!
//! `cargo run --release -p outfitter-bench` builds only the bench, so it runs
//! `cargo build --release -p outfitter-panel -p outfitter-runner` into its own target
//! directory first (a no-op when they are fresh). `OUTFITTER_PANEL_BIN` and
//! `OUTFITTER_RUNNER_BIN` point at prebuilt binaries instead.

use std::path::Path;

use anyhow::{Context, Result, ensure};

pub(crate) use outfitter_test_support::Binaries;

/// Finds or builds the release binaries.
pub(crate) fn release_binaries() -> Result<Binaries> {
    if let Some(bins) = Binaries::from_env() {
        return Ok(bins);
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().context("the bench binary has no directory")?;
    ensure!(
        profile_dir.file_name().is_some_and(|n| n == "release"),
        "the bench must run from target/release (use `cargo run --release -p outfitter-bench`), \
         or set OUTFITTER_PANEL_BIN and OUTFITTER_RUNNER_BIN; it is at {}",
        exe.display()
    );
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("bench/ is inside the workspace")?;
    eprintln!("outfitter-bench: building the release panel and runner (no-op when fresh)");
    Binaries::build(workspace, profile_dir)
}
