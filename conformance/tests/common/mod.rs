//! What the container tests share: whether this machine can boot containers, and the cached
//! Debian 12 base they boot from.

use std::path::{Path, PathBuf};

use outfitter_conformance::base::{self, Mirrors};

/// The harness's cache: the base system, the containers' work directories.
pub(crate) const CACHE: &str = "/var/cache/outfitter-conformance";

/// Set to `1` to skip these tests on a machine that cannot boot containers.
pub(crate) const SKIP_VAR: &str = "OUTFITTER_SKIP_CONTAINER_TESTS";

/// Whether `tool` is a file on PATH.
pub(crate) fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Whether to run: true when this machine can boot containers and has `extra_tools`; a
/// missing capability fails the test unless the skip is asked for.
pub(crate) fn can_boot(extra_tools: &[&str]) -> bool {
    let mut missing: Vec<&str> = ["systemd-nspawn", "debootstrap", "nsenter", "ip"]
        .iter()
        .chain(extra_tools)
        .copied()
        .filter(|t| !on_path(t))
        .collect();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root");
    }
    if missing.is_empty() {
        return true;
    }
    if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
        eprintln!("skipped ({SKIP_VAR}=1): missing {}", missing.join(", "));
        return false;
    }
    panic!(
        "cannot boot containers: missing {} (scripts/test installs the tools; run it as root), \
         or set {SKIP_VAR}=1 to skip these tests knowingly",
        missing.join(", ")
    );
}

/// The base system, built on first use and cached.
pub(crate) fn base() -> PathBuf {
    base::ensure(Path::new(CACHE), &Mirrors::from_host(), &mut |m| {
        eprintln!("{m}")
    })
    .expect("base system")
}
