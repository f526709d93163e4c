//! The contract that the panel and the runner share.
//!
//! Pure logic and file reading only: no Redis client, no HTTP. Everything both programs must
//! agree on lives here exactly once: the manifest model and its validation, input validation
//! and the environment mapping, the job envelope and its signature, key derivation, Redis key
//! names, progress events, job states and the exit-code policy; and the two small things both
//! programs read the same way: the wall clock in unix milliseconds and a settings file; and how both write their logs.

// The contract is the shared vocabulary of panel and runner: every public item says what it means.
#![deny(missing_docs)]

// Installer bundles: manifest, catalog, inputs.
pub mod catalog;
pub mod conformance;
pub mod inputs;
pub mod limits;
pub mod manifest;

// The job protocol between panel and runner.
pub mod clock;
pub mod control;
pub mod dependencies;
pub mod envelope;
pub mod event;
pub mod exit_policy;
pub mod file_stamp;
pub mod host;
pub mod host_metrics;
pub mod ids;
pub mod installation;
pub mod job;
pub mod keys;
pub mod labels;
pub mod lifecycle;
pub mod logs;
pub mod metrics_history;
pub mod process_stats;
pub mod redis_keys;
pub mod redis_tls;
pub mod requirements;
pub mod scripts;
pub mod seal;
pub mod settings_file;
