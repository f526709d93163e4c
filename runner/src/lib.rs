//! The runner: takes signed jobs from Redis and runs their install scripts in a sandbox
//! (`run`), or runs one bundle for its author (`exec`).

pub mod attempt;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod exec;
pub mod host_metrics;
pub mod joblog;
pub mod lifecycle;
pub mod mask;
pub mod metrics;
pub mod output;
pub mod sandbox;
