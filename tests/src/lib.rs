//! Support for the end-to-end suites: a private redis-server, the real panel and runner
//! binaries as processes on free ports, an API and SSE client, and a headless browser.
//! Tests reach the programs only through their public surfaces (HTTP API, SSE, CLI).

pub mod api;
pub mod binaries;
pub mod browser;
pub mod panel;
pub mod paths;
pub mod ports;
pub mod process;
pub mod receiver;
pub mod redis;
pub mod runner;
pub use outfitter_test_support::sse;
pub mod stack;

pub use api::Api;
pub use stack::Stack;
