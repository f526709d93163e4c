//! Where the real `outfitter-panel` and `outfitter-runner` binaries are, built fresh.
//!
//! Cargo builds only a package's own binaries for its integration tests (and artifact
//! dependencies are not stable), so the first test that needs them runs
//! `cargo build -p outfitter-panel -p outfitter-runner` into the same target directory and
//! profile as the running test binary. It is a no-op when they are up to date, and cargo's
//! own lock serialises concurrent test processes. `OUTFITTER_PANEL_BIN` and
//! `OUTFITTER_RUNNER_BIN` point at prebuilt binaries instead (nothing is built then).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use outfitter_test_support::Binaries;

/// The binaries, built once per test process. Panics with cargo's output if the build fails:
/// no test can run without them.
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        Binaries::from_env().unwrap_or_else(|| {
            build().unwrap_or_else(|e| panic!("building the panel and runner binaries: {e:#}"))
        })
    })
}

fn build() -> anyhow::Result<Binaries> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace");
    Binaries::build(workspace, &profile_dir()?)
}

/// `target/<profile>/`: the test binary lives in `target/<profile>/deps/`.
fn profile_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let deps = exe
        .parent()
        .ok_or_else(|| anyhow::anyhow!("test binary has no directory"))?;
    anyhow::ensure!(
        deps.file_name().is_some_and(|n| n == "deps"),
        "test binary {} is not in a cargo deps directory; set OUTFITTER_PANEL_BIN and OUTFITTER_RUNNER_BIN",
        exe.display()
    );
    Ok(deps.parent().expect("deps has a parent").to_owned())
}
