//! Where the real `outfitter-panel` and `outfitter-runner` binaries are, built fresh.
//!
//! Cargo builds only a package's own binaries for its integration tests (and artifact
//! dependencies are not stable), so the first test that needs them runs
//! `cargo build -p outfitter-panel -p outfitter-runner` into the same target directory and
//! profile as the running test binary. It is a no-op when they are up to date, and cargo's
//! own lock serialises concurrent test processes. `OUTFITTER_PANEL_BIN` and
//! `OUTFITTER_RUNNER_BIN` point at prebuilt binaries instead (nothing is built then).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The two programs under test.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub panel: PathBuf,
    pub runner: PathBuf,
}

/// The binaries, built once per test process. Panics with cargo's output if the build fails:
/// no test can run without them.
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        match (
            std::env::var_os("OUTFITTER_PANEL_BIN"),
            std::env::var_os("OUTFITTER_RUNNER_BIN"),
        ) {
            (Some(panel), Some(runner)) => Binaries {
                panel: panel.into(),
                runner: runner.into(),
            },
            _ => {
                build().unwrap_or_else(|e| panic!("building the panel and runner binaries: {e:#}"))
            }
        }
    })
}

fn build() -> anyhow::Result<Binaries> {
    let profile_dir = profile_dir()?;
    let target_dir = profile_dir.parent().expect("profile dir has a parent");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace");
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
        None => anyhow::bail!(
            "cannot tell the cargo profile from {}",
            profile_dir.display()
        ),
    }
    let out = cmd.output()?;
    if !out.status.success() {
        anyhow::bail!(
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
        anyhow::ensure!(b.is_file(), "{} is missing after the build", b.display());
    }
    Ok(bins)
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
