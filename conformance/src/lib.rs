//! The conformance harness: proves installer bundles by installing them for real, twice, on
//! throwaway Debian systems with systemd, and records the results the catalog shows.

pub mod base;
pub mod bundle;
pub mod cgroup;
pub mod checks;
pub mod container;
pub mod harness;
pub mod helpers;
pub mod network;
pub mod proxy;
pub mod report;
pub mod spec;
pub mod timestamp;
mod tutorial;

/// The one documented command that runs the whole catalog (recorded in docs/catalog.md).
pub const FULL_RUN_COMMAND: &str = "cargo build -p outfitter-panel -p outfitter-runner -p outfitter-conformance && \
     sudo target/debug/outfitter-conformance run --all --jobs 2";
